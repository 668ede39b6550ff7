"""The exact fast path: outputs of a frozen prefix, computed once and reused.

When every layer before the trainable part is frozen (eval mode, no gradient) and no
augmentation changes its input beyond a mirror, its output for each stimulus never changes
during training. It is computed once per run (both orientations when ``hflip`` is on) and the
conv part is memoised across the variants of one process, keyed by the SHA-256 of its weights
and of the input pixels, so variants sharing a trunk (all ``imagenet`` variants, all ``faces``
variants of one source) pay for it once.

Examples
--------
>>> import torch
>>> from model.architecture import build_vgg16, freeze_prefix
>>> prefix, suffix = freeze_prefix(build_vgg16(2, width=0.0625), "classifier")
>>> prefix_outputs(prefix, torch.rand(3, 32, 32)).shape
torch.Size([3, 1568])
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import torch
from torch import nn
from tqdm.auto import tqdm

from .preprocess import normalise_grey

__all__ = ["state_digest", "tensor_digest", "prefix_outputs", "clear_memo"]

_MEMO: OrderedDict[str, torch.Tensor] = OrderedDict()
_MEMO_ENTRIES = 6


def clear_memo() -> None:
    """Forget memoised trunk outputs (tests use it to compare with fresh computation)."""
    _MEMO.clear()


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's bytes.

    Parameters
    ----------
    tensor : torch.Tensor
        The tensor.

    Returns
    -------
    str
        Hex digest.
    """
    return hashlib.sha256(tensor.detach().contiguous().cpu().numpy().tobytes()).hexdigest()


def state_digest(module: nn.Module) -> str:
    """SHA-256 of a module's architecture and state (parameters and buffers).

    Parameters
    ----------
    module : torch.nn.Module
        The module.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256(repr(module).encode())
    for name, value in module.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def _run(layers: nn.Sequential, grey: torch.Tensor, batch_size: int, normalise: bool,
         desc: str | None) -> torch.Tensor:
    outputs = []
    starts = range(0, len(grey), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc=desc, leave=False, disable=desc is None or len(starts) < 2):
            x = grey[start:start + batch_size]
            outputs.append(layers(normalise_grey(x) if normalise else x))
    return torch.cat(outputs)


def _memoised(key: str | None, compute) -> torch.Tensor:
    if key is not None and key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    value = compute()
    if key is not None:
        _MEMO[key] = value
        while len(_MEMO) > _MEMO_ENTRIES:
            _MEMO.popitem(last=False)
    return value


def prefix_outputs(prefix: nn.Sequential, grey: torch.Tensor, *, batch_size: int = 64,
                   memo: bool = True, desc: str | None = None) -> torch.Tensor:
    """``prefix(normalise_grey(grey))`` in batches, without gradient.

    With ``memo`` the conv part (up to the flatten) and the whole prefix are memoised, each
    keyed by the digest of its weights and of the pixels: variants sharing a conv trunk but
    not its frozen FC layers (ONNX-sourced nets draw those from their seed) share the first,
    variants sharing everything (the faces arm) the second.

    Parameters
    ----------
    prefix : torch.nn.Sequential
        The frozen prefix.
    grey : torch.Tensor
        Grey images (N, S, S) at the model's input size (``model.preprocess.resize_grey``).
    batch_size : int
        Images per pass.
    memo : bool
        Memoise (and reuse) the outputs.
    desc : str, optional
        Progress bar label (None: no bar).

    Returns
    -------
    torch.Tensor
        The prefix's outputs (N, ...).
    """
    layers = list(prefix)
    cut = next((i + 1 for i, m in enumerate(layers) if isinstance(m, nn.Flatten)), len(layers))
    conv, fc = nn.Sequential(*layers[:cut]), nn.Sequential(*layers[cut:])
    pixels = f"{tensor_digest(grey)}:{grey.device}" if memo else ""
    conv_key = f"{state_digest(conv)}:{pixels}" if memo else None

    def trunk() -> torch.Tensor:
        return _memoised(conv_key, lambda: _run(conv, grey, batch_size, True, desc))

    if not len(fc):
        return trunk()
    full_key = f"{conv_key}:{state_digest(fc)}" if memo else None
    return _memoised(full_key, lambda: _run(fc, trunk(), max(batch_size, 256), False, None))
