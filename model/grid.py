"""Between the stimulus grid (H x W grey) and the model's input (C x S x S): input bounds and the
adjoint of the preprocessing resize that brings relevance back to the stimulus grid.

Examples
--------
>>> from model.preprocess import to_model_input
>>> low, high = input_bounds(lambda im: to_model_input(im, 32), (40, 40))
>>> low.shape
torch.Size([1, 3, 1, 1])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["ToInput", "input_bounds", "to_stimulus_grid"]

ToInput = Callable[[torch.Tensor], torch.Tensor]


def input_bounds(to_input: ToInput, grid_shape: Sequence[int], device: torch.device | str = "cpu"):
    """Lowest and highest model-input values per channel, (1, C, 1, 1) each.

    They are the images of an all-black and an all-white stimulus under the model's own
    preprocessing, i.e. the range of the normalised pixel values (zennit's ZBox ``low``/``high``).

    Parameters
    ----------
    to_input : callable
        The model's preprocessing.
    grid_shape : sequence of int
        The stimulus grid (H, W).
    device : torch.device or str
        Where the bounds live.

    Returns
    -------
    low, high : torch.Tensor
        The bounds.
    """
    h, w = int(grid_shape[0]), int(grid_shape[1])
    with torch.no_grad():
        black = to_input(torch.zeros(1, h, w, device=device))
        white = to_input(torch.ones(1, h, w, device=device))
    low = black.amin(dim=(2, 3), keepdim=True)
    high = white.amax(dim=(2, 3), keepdim=True)
    return low, high


def to_stimulus_grid(relevance: torch.Tensor, to_input: ToInput, grid_shape: Sequence[int],
                     low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Model-input relevance (N, C, S, S) -> stimulus-grid relevance (N, H, W).

    Applies the adjoint (transpose) of the preprocessing's resize to the channel sum: the
    vector-Jacobian product of ``to_input`` with the relevance scaled by the per-channel std
    (``1 / (high - low)``), which cancels the normalisation and keeps the resize's transpose.

    Parameters
    ----------
    relevance : torch.Tensor
        Relevance on the model input.
    to_input : callable
        The model's preprocessing.
    grid_shape : sequence of int
        The stimulus grid (H, W).
    low, high : torch.Tensor
        :func:`input_bounds`.

    Returns
    -------
    torch.Tensor
        Relevance on the grid; each map's sum is kept when the resize reproduces a constant image.
    """
    n = relevance.shape[0]
    h, w = int(grid_shape[0]), int(grid_shape[1])
    with torch.inference_mode(False), torch.enable_grad():  # callable from inside inference mode too
        cotangent = relevance / (high - low)
        grid = torch.zeros(n, h, w, device=relevance.device, requires_grad=True)
        out = to_input(grid)
        if out.shape != relevance.shape:
            raise ValueError(f"preprocessing gives {tuple(out.shape)}, relevance is {tuple(relevance.shape)}")
        (back,) = torch.autograd.grad(out, grid, cotangent)
    return back.detach()
