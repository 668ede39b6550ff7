"""VGG-Face weights (Parkhi, Vedaldi & Zisserman, 2015) as a torchvision-layout VGG-16 state_dict.

Labs download one of two files (nothing downloads at run time):

``vgg_face_dag``
    ``vgg_face_dag.pth``, S. Albanie's PyTorch conversion of the MatConvNet model
    (https://www.robots.ox.ac.uk/~albanie/pytorch-models.html, ``vgg_face_dag.py``): a
    state_dict with keys ``conv1_1.weight`` ... ``conv5_3.bias`` (OIHW), ``fc6.weight``
    (4096, 25088), ``fc7.*`` and ``fc8.weight`` (2622, 4096). Its network takes RGB in 0-255
    minus the mean (129.186279, 104.762383, 93.593964), std 1, and flattens pool5 in torch's
    (C, H, W) order.
``keras_vggface``
    ``rcmalli_vggface_tf_vgg16.h5`` of ``rcmalli/keras-vggface`` (Keras 2, TensorFlow kernels,
    which are cross-correlations like torch's: no flip). One HDF5 group per layer
    (``conv1_1`` ... ``fc8``, under ``model_weights`` when the whole model was saved) listed in
    the ``layer_names`` attribute; each holds ``<layer>/kernel:0`` (kH, kW, in, out; dense:
    in, out) and ``<layer>/bias:0``, named by its ``weight_names`` attribute. Its network takes
    BGR in 0-255 minus (93.5940, 104.7624, 129.1863) and flattens pool5 channels-last
    (H, W, C), so FC6's input columns are permuted to torch's (C, H, W) order. The ``notop``
    file has no FC layers and is refused.

Both become ``features.N.*`` (the 13 convs), ``classifier.0.*`` (FC6), ``classifier.3.*`` (FC7)
and, only when asked for, ``classifier.6.*`` (FC8, the 2622-identity head), with the file's
preprocessing folded into ``features.0`` by :func:`model.weights.fold_preprocessing` (as for the
ONNX ImageNet weights), so the network takes what every variant takes: grey repeated to RGB,
normalised with torchvision's ImageNet mean and std. The fold is exact but at conv1's
zero-padded border, where a padded pixel is 0 in normalised space but ``255 * imagenet_mean -
vggface_mean`` (about -5, 12 and 10 of 255 in R, G, B) in the file's. Activations keep the
file's scale (0-255 pixel units).

Examples
--------
>>> state, info = vggface_state_dict("vgg_face_dag.pth")          # doctest: +SKIP
>>> info["format"], sorted(k for k in state if k.startswith("classifier"))  # doctest: +SKIP
('vgg_face_dag', ['classifier.0.bias', 'classifier.0.weight', 'classifier.3.bias', 'classifier.3.weight'])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import file_sha256

from .weights import VGG16_CONV_INDICES, fold_preprocessing, read_state_dict

__all__ = [
    "FORMATS",
    "DAG_MEAN_RGB",
    "KERAS_MEAN_BGR",
    "CONV_NAMES",
    "detect_format",
    "read_vgg_face_dag",
    "read_keras_vggface",
    "to_torchvision",
    "vggface_state_dict",
]

FORMATS = ("vgg_face_dag", "keras_vggface")
DAG_MEAN_RGB = (129.186279296875, 104.76238250732422, 93.59396362304688)
KERAS_MEAN_BGR = (93.5940, 104.7624, 129.1863)
CONV_NAMES = tuple(f"conv{block}_{i}" for block, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
                   for i in range(1, count + 1))
_CONV_CHANNELS = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                  (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512))
_FC_IN_OUT = {"fc6": (512 * 7 * 7, 4096), "fc7": (4096, 4096), "fc8": (4096, None)}  # None: any size
_TV_FC = {"fc6": 0, "fc7": 3, "fc8": 6}  # torchvision classifier index
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_EXTRA = "pip install 'face-relevance[vggface]'"

# one layer in torch layout: conv weight (out, in, kH, kW) or linear weight (out, in), and bias
Layers = dict[str, tuple[np.ndarray, np.ndarray]]


def detect_format(path: str | os.PathLike) -> str:
    """``keras_vggface`` for an HDF5 file (by its signature), else ``vgg_face_dag``.

    Parameters
    ----------
    path : str or os.PathLike
        The weights file.

    Returns
    -------
    str
        The format name.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    with open(path, "rb") as handle:
        return "keras_vggface" if handle.read(8) == _HDF5_SIGNATURE else "vgg_face_dag"


def _layer_names(keep_fc8: bool) -> tuple[str, ...]:
    return CONV_NAMES + (("fc6", "fc7", "fc8") if keep_fc8 else ("fc6", "fc7"))


def _check_shape(path: Path, key: str, shape: tuple[int, ...], expected: tuple[int | None, ...]) -> None:
    if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
        parts = ["n" if e is None else str(e) for e in expected]
        wanted = f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
        raise InputError(f"{path}: '{key}' has shape {tuple(shape)}, expected {wanted}")


# ---------------------------------------------------------------------------- vgg_face_dag.pth

def _dag_expected() -> dict[str, tuple[int | None, ...]]:
    """Key -> shape of the real file, in its order (fc8's output size is free)."""
    shapes: dict[str, tuple[int | None, ...]] = {}
    for name, (cin, cout) in zip(CONV_NAMES, _CONV_CHANNELS):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin, 3, 3), (cout,)
    for name, (fin, fout) in _FC_IN_OUT.items():
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (fout, fin), (fout,)
    return shapes


def read_vgg_face_dag(path: str | os.PathLike, *, keep_fc8: bool = False) -> Layers:
    """The layers of a ``vgg_face_dag.pth`` state_dict (read with ``weights_only=True``).

    A missing or unexpected key, or a wrong shape, is an InputError naming the first one.
    ``fc8`` may be absent unless ``keep_fc8``, and its number of identities is free.

    Parameters
    ----------
    path : str or os.PathLike
        The ``vgg_face_dag.pth`` file.
    keep_fc8 : bool
        Require and keep the identity head.

    Returns
    -------
    Layers
        Layer name -> (weight, bias) in torch layout.
    """
    path = Path(path)
    state = read_state_dict(path)
    expected = _dag_expected()
    needed = [k for k in expected if keep_fc8 or not k.startswith("fc8.")]
    missing = next((k for k in needed if k not in state), None)
    if missing is not None:
        hint = ("; it is a torchvision-layout file: use pretrain: file:PATH"
                if any(k.startswith("features.") for k in state) else "")
        raise InputError(f"{path}: not a vgg_face_dag state_dict: key '{missing}' is missing{hint}")
    extra = next((k for k in state if k not in expected), None)
    if extra is not None:
        raise InputError(f"{path}: not a vgg_face_dag state_dict: unexpected key '{extra}'")
    if "fc8.weight" in state:  # the head's size is free, but weight and bias must agree
        expected["fc8.bias"] = (state["fc8.weight"].shape[0],) if state["fc8.weight"].ndim == 2 else (None,)
    for key in needed:
        _check_shape(path, key, tuple(state[key].shape), expected[key])
    return {name: (state[f"{name}.weight"].float().numpy(), state[f"{name}.bias"].float().numpy())
            for name in _layer_names(keep_fc8)}


# ---------------------------------------------------------------------------- keras-vggface .h5

def _h5py():
    try:
        import h5py  # lazy: h5py is the optional 'vggface' extra
    except ImportError:
        return None
    return h5py


def _attr_strings(node, key: str) -> list[str] | None:
    if key not in node.attrs:
        return None
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(node.attrs[key])]


def _keras_expected(name: str) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
    """(kernel, bias) shapes of a keras-vggface layer in Keras layout."""
    if name in _FC_IN_OUT:
        fin, fout = _FC_IN_OUT[name]
        return (fin, fout), (fout,)
    cin, cout = _CONV_CHANNELS[CONV_NAMES.index(name)]
    return (3, 3, cin, cout), (cout,)


def _keras_to_torch(name: str, kernel: np.ndarray) -> np.ndarray:
    """A Keras kernel in torch layout; FC6's rows go from (H, W, C) to torch's (C, H, W) flatten."""
    if name == "fc6":
        return kernel.reshape(7, 7, 512, -1).transpose(3, 2, 0, 1).reshape(kernel.shape[1], -1)
    if name in _FC_IN_OUT:
        return kernel.T
    return kernel.transpose(3, 2, 0, 1)


def read_keras_vggface(path: str | os.PathLike, *, keep_fc8: bool = False) -> Layers:
    """The layers of a keras-vggface VGG16 ``.h5`` weights file, in torch layout.

    Needs ``h5py`` (the ``vggface`` extra). A missing layer, an unexpected layer with weights or
    a wrong shape is an InputError naming the first one.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.h5`` file.
    keep_fc8 : bool
        Require and keep the 2622-identity head.

    Returns
    -------
    Layers
        Layer name -> (weight, bias), converted from Keras to torch layout.
    """
    path = Path(path)
    h5py = _h5py()
    if h5py is None:
        raise InputError(f"{path}: reading a Keras .h5 file needs h5py ({_EXTRA})")
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise InputError(f"{path}: not a readable HDF5 file ({str(error).splitlines()[0][:120]})") from None
    wanted = _layer_names(keep_fc8)
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        names = _attr_strings(root, "layer_names")
        if names is None:
            raise InputError(f"{path}: not a Keras 2 weights file (no 'layer_names' attribute)")
        found: dict[str, list[str]] = {}
        for name in names:
            weights = _attr_strings(root[name], "weight_names") if name in root else None
            if weights:
                found[name] = weights
        missing = next((n for n in wanted if n not in found), None)
        if missing is not None:
            hint = " (a 'notop' file? use rcmalli_vggface_tf_vgg16.h5, which has the FC layers)" \
                if missing in _FC_IN_OUT and not any(n in found for n in _FC_IN_OUT) else ""
            raise InputError(f"{path}: not a keras-vggface VGG16 weights file: no layer '{missing}'{hint}")
        extra = next((n for n in found if n not in CONV_NAMES and n not in _FC_IN_OUT), None)
        if extra is not None:
            raise InputError(f"{path}: not a keras-vggface VGG16 weights file: unexpected layer '{extra}'")
        layers: Layers = {}
        for name in wanted:
            if len(found[name]) != 2:
                raise InputError(f"{path}: layer '{name}' holds {len(found[name])} weight arrays "
                                 f"({', '.join(found[name])}), expected 2 (kernel, bias)")
            (kernel_key, bias_key), group = found[name], root[name]
            kernel_shape, bias_shape = _keras_expected(name)
            if name == "fc8":  # the head's size is free, but kernel and bias must agree
                out = group[kernel_key].shape[-1] if group[kernel_key].ndim == 2 else None
                kernel_shape, bias_shape = (4096, out), (out,)
            _check_shape(path, kernel_key, group[kernel_key].shape, kernel_shape)
            _check_shape(path, bias_key, group[bias_key].shape, bias_shape)
            kernel = np.asarray(group[kernel_key], dtype=np.float32)
            layers[name] = (_keras_to_torch(name, kernel), np.asarray(group[bias_key], dtype=np.float32))
    return layers


# ---------------------------------------------------------------------------- torchvision layout

def to_torchvision(layers: Layers, *, mean: tuple[float, float, float], channels: str) -> dict[str, torch.Tensor]:
    """torchvision ``vgg16`` keys for the layers, the file's preprocessing folded into conv1.

    Parameters
    ----------
    layers : Layers
        :func:`read_vgg_face_dag` or :func:`read_keras_vggface`'s layers.
    mean : tuple of float
        The file's mean pixel (0-255), in ``channels`` order.
    channels : {"rgb", "bgr"}
        The file's channel order.

    Returns
    -------
    dict of str to torch.Tensor
        The state_dict.
    """
    state: dict[str, torch.Tensor] = {}

    def put(key: str, weight: np.ndarray, bias: np.ndarray) -> None:
        state[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
        state[f"{key}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))

    for i, (name, index) in enumerate(zip(CONV_NAMES, VGG16_CONV_INDICES)):
        weight, bias = layers[name]
        if i == 0:
            weight, bias = fold_preprocessing(weight, bias, mean=mean, channels=channels)
        put(f"features.{index}", weight, bias)
    for name, index in _TV_FC.items():
        if name in layers:
            put(f"classifier.{index}", *layers[name])
    return state


def vggface_state_dict(path: str | os.PathLike, fmt: str = "auto", *,
                       keep_fc8: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A VGG-Face file as a torchvision-layout VGG-16 state_dict, and a provenance record.

    ``fmt`` is ``auto`` (an HDF5 file is ``keras_vggface``, anything else ``vgg_face_dag``)
    or one of :data:`FORMATS`. FC8 (``classifier.6``) is included only with ``keep_fc8``.

    Parameters
    ----------
    path : str or os.PathLike
        The VGG-Face file.
    fmt : str
        The format.
    keep_fc8 : bool
        Keep the identity head.

    Returns
    -------
    state : dict of str to torch.Tensor
        The state_dict.
    record : dict
        Where it came from (file, SHA-256, format).
    """
    path = Path(path)
    found = detect_format(path)
    if fmt == "auto":
        fmt = found
    elif fmt not in FORMATS:
        raise InputError(f"{path}: unknown VGG-Face format '{fmt}' (choose {' or '.join(FORMATS)})")
    elif fmt != found:
        what = "an HDF5 file" if found == "keras_vggface" else "not an HDF5 file"
        raise InputError(f"{path}: {what}, so not {fmt}: use --format {found}")
    if fmt == "vgg_face_dag":
        layers = read_vgg_face_dag(path, keep_fc8=keep_fc8)
        state = to_torchvision(layers, mean=DAG_MEAN_RGB, channels="rgb")
    else:
        layers = read_keras_vggface(path, keep_fc8=keep_fc8)
        state = to_torchvision(layers, mean=KERAS_MEAN_BGR, channels="bgr")
    info = {"source": "vggface", "format": fmt, "file": str(path), "sha256": file_sha256(path),
            "fc8": "kept (classifier.6)" if keep_fc8 else "dropped",
            "note": f"VGG-Face weights ({fmt}) converted to torchvision's VGG-16 layout; the file's "
                    "preprocessing folded into features.0; face FC6/FC7 in classifier.0/3"}
    return state, info
