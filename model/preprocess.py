"""The one input pipeline: grey stimuli in [0, 1] -> the tensor every VGG-16 variant takes.

Training, explaining and model observers all call :func:`to_model_input`, so a model sees
exactly the pixels of the stimulus grid: resized (bilinear, antialiased) to the variant's input
size, repeated to 3 channels and normalised with torchvision's ImageNet mean and std.

Examples
--------
>>> import numpy as np
>>> to_model_input(np.full((2, 64, 64), 0.5, np.float32), 32).shape
torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "resize_grey", "normalise_grey", "to_model_input"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_grey(
    images: np.ndarray | torch.Tensor,
    input_size: int,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Grey images (N, H, W) or (H, W) -> float32 (N, S, S), resized bilinear with antialias.

    The first half of :func:`to_model_input` (training augments between the two halves).

    Parameters
    ----------
    images : numpy.ndarray or torch.Tensor
        Grey images in [0, 1].
    input_size : int
        The side S.
    device : torch.device or str, optional
        Where the result lives.

    Returns
    -------
    torch.Tensor
        (N, S, S) float32.
    """
    x = images if torch.is_tensor(images) else torch.from_numpy(np.asarray(images, dtype=np.float32))
    x = x.to(dtype=torch.float32, device=device)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"expected grey images (N, H, W), got shape {tuple(x.shape)}")
    if tuple(x.shape[-2:]) != (input_size, input_size):
        x = F.interpolate(x[:, None], size=(input_size, input_size), mode="bilinear",
                          align_corners=False, antialias=True)[:, 0]
    return x


def normalise_grey(x: torch.Tensor) -> torch.Tensor:
    """Grey (N, S, S) in [0, 1] -> (N, 3, S, S), repeated to RGB and ImageNet-normalised.

    The second half of :func:`to_model_input`.

    Parameters
    ----------
    x : torch.Tensor
        Grey images at the input size.

    Returns
    -------
    torch.Tensor
        The model input.
    """
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x[:, None].expand(-1, 3, -1, -1) - mean) / std


def to_model_input(
    images: np.ndarray | torch.Tensor,
    input_size: int,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Grey images (N, H, W) or (H, W) in [0, 1] -> normalised float32 (N, 3, S, S).

    Parameters
    ----------
    images
        Grey stimuli on the stimulus grid, values in [0, 1].
    input_size
        Side of the square model input; the grid is resized to it (bilinear, antialias)
        unless it already has that size.
    device
        Where the returned tensor lives (default: where ``images`` is, CPU for numpy).

    Returns
    -------
    torch.Tensor
        The model input (N, 3, S, S), grey copied to the three channels and normalised with
        ImageNet's mean and standard deviation.
    """
    return normalise_grey(resize_grey(images, input_size, device=device))
