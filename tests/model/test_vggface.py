"""VGG-Face importers: ``vgg_face_dag.pth`` and the keras-vggface VGG16 ``.h5``, converted to
torchvision's layout with the file's preprocessing folded into conv1, compute what the source
network computes on its own input; ``convert-weights`` writes the same conversion.

Every file here is synthetic but of the real layout (the real key names and shapes, random
weights, written by the test): nothing downloads. The reference forwards are written directly
in the source layout: the dag one in torch with the file's own keys (RGB, 0-255, its mean), the
Keras one in numpy channels-last (BGR, 0-255, its mean, Keras's (H, W, C) flatten before FC6).
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from model import build_vgg16
from model.__main__ import main as model_main
from model.config import load_grid, pretrain_token
from model.convert_weights import provenance_path
from model.preprocess import IMAGENET_MEAN, IMAGENET_STD
from model.trainer import initial_network
from model.vggface import (
    CONV_NAMES,
    DAG_MEAN_RGB,
    KERAS_MEAN_BGR,
    read_keras_vggface,
    vggface_state_dict,
)
from stimuli.contracts.errors import InputError

h5py = pytest.importorskip("h5py")

CHANNELS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
            (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
POOL_AFTER = {"conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3"}
FC = [("fc6", 25088, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 2622)]
TOLERANCE = 5e-3  # of the largest FC7 activation


def he(rng, shape, fan_in) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in)))


def small_bias(rng, n) -> np.ndarray:
    return rng.standard_normal(n, dtype=np.float32) * np.float32(0.1)


# ---------------------------------------------------------------------------- synthetic files

def dag_state(seed: int = 0) -> OrderedDict:
    """A state_dict with the keys and shapes of the real ``vgg_face_dag.pth``, random weights."""
    rng = np.random.default_rng(seed)
    state = OrderedDict()
    for name, (cin, cout) in zip(CONV_NAMES, CHANNELS):
        state[f"{name}.weight"] = torch.from_numpy(he(rng, (cout, cin, 3, 3), 9 * cin))
        state[f"{name}.bias"] = torch.from_numpy(small_bias(rng, cout))
    for name, fin, fout in FC:
        state[f"{name}.weight"] = torch.from_numpy(he(rng, (fout, fin), fin))
        state[f"{name}.bias"] = torch.from_numpy(small_bias(rng, fout))
    return state


def keras_layers(seed: int = 1) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Kernels and biases of the real keras-vggface VGG16 (kH, kW, in, out; dense in, out)."""
    rng = np.random.default_rng(seed)
    layers = {name: (he(rng, (3, 3, cin, cout), 9 * cin), small_bias(rng, cout))
              for name, (cin, cout) in zip(CONV_NAMES, CHANNELS)}
    layers.update({name: (he(rng, (fin, fout), fin), small_bias(rng, fout)) for name, fin, fout in FC})
    return layers


KERAS_LAYER_NAMES = ["input_1", *[n for c in CONV_NAMES for n in ((c, f"pool{c[4]}") if c in POOL_AFTER else (c,))],
                     "flatten", "fc6", "fc6/relu", "fc7", "fc7/relu", "fc8", "fc8/softmax"]


def write_keras_h5(path, layers, *, wrap: bool = False, names=KERAS_LAYER_NAMES) -> None:
    """Write ``layers`` as Keras 2's ``save_weights`` does (``model_weights`` with ``wrap``:
    a whole-model save): ``layer_names``, one group per layer with ``weight_names``, the
    arrays at ``<layer>/<layer>/kernel:0`` and ``bias:0``."""
    with h5py.File(path, "w") as handle:
        root = handle.create_group("model_weights") if wrap else handle
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.1.5"
        for name in names:
            group = root.require_group(name)  # "fc6/relu" nests inside "fc6", as in real files
            if name in layers:
                kernel, bias = layers[name]
                group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
                group.create_dataset(f"{name}/kernel:0", data=kernel)
                group.create_dataset(f"{name}/bias:0", data=bias)
            else:
                group.attrs["weight_names"] = np.array([], dtype="S1")


@pytest.fixture(scope="module")
def dag_file(tmp_path_factory):
    state = dag_state()
    path = tmp_path_factory.mktemp("vggface") / "vgg_face_dag.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)  # the 2018 file's legacy format
    return path, state


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    layers = keras_layers()
    path = tmp_path_factory.mktemp("vggface") / "rcmalli_vggface_tf_vgg16.h5"
    write_keras_h5(path, layers)
    return path, layers


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Two face-like 224-px RGB images in [0, 1] (smooth random colour inside an ellipse on a
    constant grey border 32 px wide); the second is grey, as every variant's input is."""
    rng = np.random.default_rng(7)
    low = torch.from_numpy(rng.random((2, 3, 12, 12), dtype=np.float32))
    texture = F.interpolate(low, size=(160, 160), mode="bicubic", align_corners=False).numpy()
    yy, xx = np.mgrid[:160, :160] / 159.0 - 0.5
    ellipse = ((yy / 0.48) ** 2 + (xx / 0.38) ** 2 <= 1.0).astype(np.float32)
    skin = np.array([0.78, 0.58, 0.48], np.float32).reshape(3, 1, 1)
    face = np.clip(0.5 + ellipse * (skin - 0.5 + 0.6 * (texture - 0.5)), 0.0, 1.0)
    face[1] = face[1].mean(axis=0, keepdims=True)  # the grey one
    out = np.full((2, 3, 224, 224), 0.5, np.float32)
    out[:, :, 32:192, 32:192] = face
    return out


def platform_input(x01: np.ndarray) -> torch.Tensor:
    """What every variant takes: torchvision's ImageNet normalisation of RGB in [0, 1]."""
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    return torch.from_numpy((x01 - mean) / std)


# ---------------------------------------------------------------------------- reference forwards

# the platform's zero padding of conv1 (normalised 0 = the ImageNet mean) in each file's input space
DAG_PAD = 255.0 * np.asarray(IMAGENET_MEAN) - np.asarray(DAG_MEAN_RGB)
KERAS_PAD = 255.0 * np.asarray(IMAGENET_MEAN)[::-1] - np.asarray(KERAS_MEAN_BGR)


def dag_reference(state, x01: np.ndarray, pad: np.ndarray | None = None) -> np.ndarray:
    """``vgg_face_dag.py``'s forward up to FC7 (before its ReLU), from the file's own keys.

    ``pad``: conv1 pads with this per-channel value instead of 0 (the platform's padding)."""
    x = 255.0 * torch.from_numpy(x01) - torch.tensor(DAG_MEAN_RGB).view(1, 3, 1, 1)
    with torch.no_grad():
        for name in CONV_NAMES:
            if name == "conv1_1" and pad is not None:
                value = torch.tensor(pad, dtype=torch.float32).view(1, 3, 1, 1)
                x = F.pad(x - value, (1, 1, 1, 1)) + value
                x = F.relu(F.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"]))
            else:
                x = F.relu(F.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"], padding=1))
            if name in POOL_AFTER:
                x = F.max_pool2d(x, 2, 2)
        x = x.reshape(x.shape[0], -1)  # x31_preflatten.view(N, -1): (C, H, W) order
        x = F.relu(F.linear(x, state["fc6.weight"], state["fc6.bias"]))
        return F.linear(x, state["fc7.weight"], state["fc7.bias"]).numpy()


def keras_conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, pad: np.ndarray | None = None) -> np.ndarray:
    """Keras ``Conv2D(padding='same')`` on NHWC: cross-correlation with a (kH, kW, in, out) kernel
    (zero padding, or the per-channel value ``pad``)."""
    n, h, w, c = x.shape
    value = np.zeros(c, np.float32) if pad is None else np.asarray(pad, np.float32)
    padded = np.pad(x - value, ((0, 0), (1, 1), (1, 1), (0, 0))) + value
    out = np.zeros((n * h * w, kernel.shape[3]), np.float32)
    for i in range(3):
        for j in range(3):
            out += padded[:, i:i + h, j:j + w, :].reshape(-1, c) @ kernel[i, j]
    return (out + bias).reshape(n, h, w, -1)


def keras_pool5(layers, x01: np.ndarray, pad: np.ndarray | None = None) -> np.ndarray:
    """keras-vggface's VGG16 to pool5 in numpy, channels-last, on ``preprocess_input(version=1)``
    (``pad``: conv1's padding value, as in :func:`dag_reference`)."""
    x = 255.0 * x01.transpose(0, 2, 3, 1)[..., ::-1] - np.asarray(KERAS_MEAN_BGR, np.float32)
    x = x.astype(np.float32)
    for name in CONV_NAMES:
        x = np.maximum(keras_conv_same(x, *layers[name], pad=pad if name == "conv1_1" else None), 0.0)
        if name in POOL_AFTER:
            n, h, w, c = x.shape
            x = x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    return x


def keras_fc7(layers, pool5: np.ndarray) -> np.ndarray:
    """Flatten (channels-last: H, W, C), fc6, ReLU, fc7 (before its ReLU), as Keras does."""
    x = pool5.reshape(pool5.shape[0], -1)
    x = np.maximum(x @ layers["fc6"][0] + layers["fc6"][1], 0.0)
    return x @ layers["fc7"][0] + layers["fc7"][1]


# ---------------------------------------------------------------------------- the converted model

def converted_net(state) -> torch.nn.Module:
    net = build_vgg16(2622 if "classifier.6.weight" in state else 2)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"classifier.6.weight", "classifier.6.bias"}
    return net.eval()


def converted_fc7(net, x: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """FC7 before its ReLU (classifier.3) and the pool5 features, of the torchvision net."""
    with torch.no_grad():
        pool5 = net.features(x)
        fc7 = net.classifier[:4](torch.flatten(net.avgpool(pool5), 1))
    return fc7.numpy(), pool5


def worst(ours: np.ndarray, reference: np.ndarray) -> float:
    """Largest absolute difference as a fraction of the largest reference activation."""
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


# ---------------------------------------------------------------------------- agreement

@pytest.mark.slow
def test_vgg_face_dag_agrees_with_its_own_forward(dag_file, images):
    """FC7 of the converted net on torchvision input equals vgg_face_dag's FC7 on its own input
    (RGB, 0-255, its mean) to 5e-3 of the largest activation. What differs is conv1's zero-padded
    border: a padded pixel is 0 in normalised space but 255 * imagenet_mean - dag_mean =
    (-5.5, 12.0, 10.3) in the file's; inside the border conv1 agrees to float precision."""
    path, state = dag_file
    converted, info = vggface_state_dict(path)
    assert info["format"] == "vgg_face_dag" and info["fc8"] == "dropped"
    assert not any(k.startswith("classifier.6") for k in converted)
    net = converted_net(converted)
    ours, _ = converted_fc7(net, platform_input(images))
    reference = dag_reference(state, images)
    error = worst(ours, reference)
    matched = worst(ours, dag_reference(state, images, pad=DAG_PAD))
    print(f"\nvgg_face_dag: FC7 worst relative difference {error:.2e} (tolerance {TOLERANCE:g}); "
          f"{matched:.1e} against the reference whose conv1 pads as the platform does")
    assert np.abs(reference).max() > 1.0 and reference.std() > 0.1 * np.abs(reference).max()
    assert error < TOLERANCE
    assert matched < 1e-4  # all of the difference is conv1's padded border

    # conv1 inside the border is exact; the same fold with the channels reversed is not
    x_src = 255.0 * torch.from_numpy(images) - torch.tensor(DAG_MEAN_RGB).view(1, 3, 1, 1)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    with torch.no_grad():
        source = F.conv2d(x_src, state["conv1_1.weight"], state["conv1_1.bias"], padding=1)
        folded = F.conv2d(platform_input(images), converted["features.0.weight"],
                          converted["features.0.bias"], padding=1)
        flipped = F.conv2d(platform_input(images), converted["features.0.weight"].flip(1),
                           converted["features.0.bias"], padding=1)
    scale = source.abs().max()
    assert (folded - source)[inner].abs().max() < 1e-5 * scale
    assert (flipped - source)[inner].abs().max() > 1e-2 * scale


@pytest.mark.slow
def test_keras_vggface_agrees_with_a_channels_last_reference(keras_file, images):
    """FC7 of the converted net equals a numpy Keras forward (BGR, 0-255, its mean, NHWC,
    (H, W, C) flatten) to 5e-3 of the largest activation; FC6 without the flatten permutation,
    or conv1 without the BGR flip, is far off."""
    path, layers = keras_file
    converted, info = vggface_state_dict(path)
    assert info["format"] == "keras_vggface"
    net = converted_net(converted)
    ours, pool5 = converted_fc7(net, platform_input(images))
    ref_pool5 = keras_pool5(layers, images)
    reference = keras_fc7(layers, ref_pool5)
    error = worst(ours, reference)
    matched = worst(ours, keras_fc7(layers, keras_pool5(layers, images, pad=KERAS_PAD)))
    print(f"\nkeras_vggface: FC7 worst relative difference {error:.2e} (tolerance {TOLERANCE:g}); "
          f"{matched:.1e} against the reference whose conv1 pads as the platform does")
    assert np.abs(reference).max() > 1.0 and reference.std() > 0.1 * np.abs(reference).max()
    assert error < TOLERANCE
    assert matched < 1e-4  # all of the difference is conv1's padded border
    assert worst(pool5.permute(0, 2, 3, 1).numpy(), ref_pool5) < TOLERANCE

    # sensitivity: FC6 read without permuting its rows from (H, W, C) to (C, H, W)
    kernel6, bias6 = layers["fc6"]
    with torch.no_grad():
        hidden = F.relu(F.linear(pool5.flatten(1), torch.from_numpy(kernel6.T.copy()), torch.from_numpy(bias6)))
        unpermuted = net.classifier[3](hidden).numpy()
    assert worst(unpermuted, reference) > 20 * TOLERANCE
    # sensitivity: conv1 folded as if the file took RGB (no BGR flip)
    from model.weights import fold_preprocessing

    kernel1, bias1 = layers["conv1_1"]
    w_rgb, b_rgb = fold_preprocessing(kernel1.transpose(3, 2, 0, 1), bias1, mean=KERAS_MEAN_BGR, channels="rgb")
    x_bgr = 255.0 * images.transpose(0, 2, 3, 1)[..., ::-1] - np.asarray(KERAS_MEAN_BGR, np.float32)
    source = keras_conv_same(x_bgr.astype(np.float32), kernel1, bias1)[:, 1:-1, 1:-1]
    with torch.no_grad():
        good = F.conv2d(platform_input(images), converted["features.0.weight"], converted["features.0.bias"], padding=1)
        bad = F.conv2d(platform_input(images), torch.from_numpy(w_rgb), torch.from_numpy(b_rgb), padding=1)
    good = good.permute(0, 2, 3, 1).numpy()[:, 1:-1, 1:-1]
    bad = bad.permute(0, 2, 3, 1).numpy()[:, 1:-1, 1:-1]
    assert worst(good, source) < 1e-5 and worst(bad, source) > 1e-2


def test_a_whole_model_h5_is_read_under_model_weights(tmp_path):
    """Keras's whole-model save keeps the layers under ``model_weights``: found there (the
    first check that needs a layer's arrays names this file's wrong conv1 kernel)."""
    layers = {name: (np.zeros((3, 3, 3, 32), np.float32), np.zeros(32, np.float32)) for name in CONV_NAMES}
    layers.update({name: (np.zeros((2, 2), np.float32), np.zeros(2, np.float32)) for name, _, _ in FC})
    path = tmp_path / "whole_model.h5"
    write_keras_h5(path, layers, wrap=True)
    with pytest.raises(InputError) as error:
        read_keras_vggface(path)
    assert str(error.value) == f"{path}: 'conv1_1/kernel:0' has shape (3, 3, 3, 32), expected (3, 3, 3, 64)"


# ---------------------------------------------------------------------------- the command

@pytest.mark.slow
def test_convert_weights_end_to_end_then_both_pretrain_forms_agree(
        dag_file, tmp_path, capsys, write_grid, results, variant_configs):
    path, state = dag_file
    out = tmp_path / "weights" / "vgg_face.pt"
    assert model_main(["convert-weights", "--format", "vgg_face_dag", str(path), str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    written = torch.load(out, weights_only=True)
    assert len(written) == 30 and "classifier.6.weight" not in written
    assert written["classifier.3.weight"].equal(state["fc7.weight"])  # FC7 kept as it is
    record = json.loads(provenance_path(out).read_text())
    assert record["tool"] == "model convert-weights" and record["config"]["format"] == "vgg_face_dag"
    assert record["inputs"][str(path)] == record["weights"]["sha256"]

    # pretrain: file:OUT.pt and pretrain: vggface:PATH start a variant from the same weights
    grid = write_grid(grid={"width": [1.0], "pretrain": [f"file:{out}", f"vggface:{path}"], "task": ["gender"]})
    by_token = {c.spec.pretrain: c for c in variant_configs(grid)}
    assert set(by_token) == {"vgg_face", "vggface"}
    from_file, _, _ = initial_network(by_token["vgg_face"], 2, results)
    from_vggface, info, files = initial_network(by_token["vggface"], 2, results)
    assert info["source"] == "vggface" and files == [path]
    a, b = from_file.state_dict(), from_vggface.state_dict()
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert a["features.0.weight"].equal(written["features.0.weight"])
    del from_file, from_vggface, a, b

    # an existing OUT is kept unless --force; --force replaces this command's own output
    with pytest.raises(SystemExit) as code:
        model_main(["convert-weights", str(path), str(out), "--keep-fc8"])
    assert code.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {out} exists already; add --force to replace it"
    assert model_main(["convert-weights", str(path), str(out), "--keep-fc8", "--force"]) == 0
    assert torch.load(out, weights_only=True)["classifier.6.weight"].shape == (2622, 4096)
    assert len(list(out.parent.glob("vgg_face.pt.old-*"))) == 1  # moved aside, never deleted


def test_force_never_replaces_a_file_this_command_did_not_make(dag_file, tmp_path, capsys):
    out = tmp_path / "model.pt"
    out.write_bytes(b"someone's weights")
    with pytest.raises(SystemExit):
        model_main(["convert-weights", str(dag_file[0]), str(out), "--force"])
    assert "refusing to replace it" in capsys.readouterr().err
    assert out.read_bytes() == b"someone's weights"


# ---------------------------------------------------------------------------- bad files

def tiny_dag(**change) -> OrderedDict:
    """The real key names with tiny tensors (key checks come before shape checks)."""
    state = OrderedDict((f"{name}.{p}", torch.zeros(1)) for name in (*CONV_NAMES, "fc6", "fc7", "fc8")
                        for p in ("weight", "bias"))
    for key, value in change.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    return state


@pytest.mark.parametrize(("state", "message"), [
    (tiny_dag(**{"conv3_2.weight": None}), "not a vgg_face_dag state_dict: key 'conv3_2.weight' is missing"),
    (tiny_dag(**{"conv6_1.weight": torch.zeros(1)}), "not a vgg_face_dag state_dict: unexpected key 'conv6_1.weight'"),
    (tiny_dag(**{"conv1_1.weight": torch.zeros(64, 3, 3, 3), "conv1_1.bias": torch.zeros(64),
                 "conv1_2.weight": torch.zeros(64, 32, 3, 3)}),
     "'conv1_2.weight' has shape (64, 32, 3, 3), expected (64, 64, 3, 3)"),
    (build_vgg16(2, width=0.0625).state_dict(),
     "not a vgg_face_dag state_dict: key 'conv1_1.weight' is missing; it is a torchvision-layout "
     "file: use pretrain: file:PATH"),
], ids=["missing", "extra", "shape", "torchvision"])
def test_a_wrong_dag_file_gets_one_line_and_exit_2(tmp_path, capsys, state, message):
    source, out = tmp_path / "vgg_face_dag.pth", tmp_path / "out.pt"
    torch.save(state, source)
    with pytest.raises(SystemExit) as code:
        model_main(["convert-weights", "--format", "vgg_face_dag", str(source), str(out)])
    assert code.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: {source}: {message}\n"
    assert not out.exists() and not provenance_path(out).exists()


def tiny_keras(drop=(), **change):
    layers = {name: (np.zeros((1,), np.float32), np.zeros(1, np.float32)) for name in (*CONV_NAMES, "fc6", "fc7", "fc8")}
    for name in drop:
        del layers[name]
    layers.update(change)
    return layers


@pytest.mark.parametrize(("layers", "names", "message"), [
    (tiny_keras(drop=("fc6", "fc7", "fc8")), KERAS_LAYER_NAMES[:-7],
     "not a keras-vggface VGG16 weights file: no layer 'fc6' (a 'notop' file? use "
     "rcmalli_vggface_tf_vgg16.h5, which has the FC layers)"),
    (tiny_keras(drop=("conv4_1",)), KERAS_LAYER_NAMES,
     "not a keras-vggface VGG16 weights file: no layer 'conv4_1'"),
    (tiny_keras(conv6_1=(np.zeros(1, np.float32), np.zeros(1, np.float32))), [*KERAS_LAYER_NAMES, "conv6_1"],
     "not a keras-vggface VGG16 weights file: unexpected layer 'conv6_1'"),
    (tiny_keras(conv1_1=(np.zeros((3, 3, 3, 64), np.float32), np.zeros(64, np.float32)),
                conv1_2=(np.zeros((3, 3, 64, 64), np.float32), np.zeros(32, np.float32))), KERAS_LAYER_NAMES,
     "'conv1_2/bias:0' has shape (32,), expected (64,)"),
], ids=["notop", "missing", "extra", "shape"])
def test_a_wrong_keras_file_gets_one_line_and_exit_2(tmp_path, capsys, layers, names, message):
    source, out = tmp_path / "vggface.h5", tmp_path / "out.pt"
    write_keras_h5(source, layers, names=names)
    with pytest.raises(SystemExit) as code:
        model_main(["convert-weights", str(source), str(out)])
    assert code.value.code == 2
    assert capsys.readouterr().err == f"error: {source}: {message}\n"
    assert not out.exists()


def test_format_mismatch_keras3_files_and_missing_h5py_get_one_line(tmp_path, monkeypatch):
    source = tmp_path / "vggface.h5"
    write_keras_h5(source, tiny_keras())
    with pytest.raises(InputError, match=r"vggface.h5: an HDF5 file, so not vgg_face_dag: use --format keras_vggface$"):
        vggface_state_dict(source, "vgg_face_dag")
    keras3 = tmp_path / "model.weights.h5"  # Keras 3's layout: no layer_names
    with h5py.File(keras3, "w") as handle:
        handle.create_group("layers/conv2d/vars").create_dataset("0", data=np.zeros((3, 3, 3, 64), np.float32))
    with pytest.raises(InputError, match=r"model.weights.h5: not a Keras 2 weights file \(no 'layer_names' attribute\)$"):
        vggface_state_dict(keras3)
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if the vggface extra were not installed
    with pytest.raises(InputError, match=r"needs h5py \(pip install 'face-relevance\[vggface\]'\)$"):
        vggface_state_dict(source)


# ---------------------------------------------------------------------------- the grid YAML

def test_vggface_pretrain_in_a_grid(write_grid):
    assert pretrain_token("vggface:/weights/vgg_face_dag.pth") == "vggface"
    assert load_grid(write_grid(grid={"width": [1.0], "pretrain": ["vggface:/w/x.h5"]})).grid.pretrain == ["vggface:/w/x.h5"]
    with pytest.raises(InputError, match="key 'grid.width': VGG-Face weights exist only for width 1.0"):
        load_grid(write_grid(grid={"pretrain": ["vggface:/w/x.h5"]}))  # the tiny grid's width 1/16
    with pytest.raises(InputError, match="key 'grid.arch': VGG-Face weights are plain vgg16"):
        load_grid(write_grid(grid={"width": [1.0], "arch": ["vgg16-bn"], "pretrain": ["vggface:/w/x.h5"]}))
    with pytest.raises(InputError, match="unknown pretraining 'vggface:'"):
        load_grid(write_grid(grid={"pretrain": ["vggface:"]}))
