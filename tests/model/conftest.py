"""Fixtures of the model tests: a tiny synthetic prepared set and tiny grid configs; tiny VGG-16s
(13 conv + 3 FC, 1/16 width) with O(1) logits; two tiny variants trained on a synthetic set."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from model.architecture import build_vgg16
from model.config import expand_grid, load_grid
from model.train import train_grid
from stimuli.contracts.prepared import write_prepared_set
from stimuli.synthetic import synth_set

SIZE = 32


def synthetic_faces(identities: int = 12, per_identity: int = 5, seed: int = 0):
    """Grey (N, 32, 32) images whose identity and gender are visible, plus a manifest."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] / SIZE
    images, rows = [], []
    for person in range(identities):
        gender = "female" if person % 4 == 0 else "male"  # unbalanced, like ORL
        freq = 1 + person
        base = 0.5 + 0.2 * np.sin(2 * np.pi * freq * xx) * (0.5 if gender == "female" else 1.0)
        base += 0.15 * (yy > 0.5) * (1 if gender == "female" else -1)
        for shot in range(per_identity):
            image = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)
            images.append(image)
            rows.append({"stimulus_id": f"p{person}_{shot}", "identity": f"p{person}",
                         "gender": gender, "source": f"synthetic/{person}/{shot}"})
    return np.stack(images), pd.DataFrame(rows)


@pytest.fixture(scope="session")
def synth_results(tmp_path_factory) -> Path:
    """A results root holding prepared set 'synth' (12 people, 3 of them women, x 5 images, 32 px)."""
    root = tmp_path_factory.mktemp("results")
    images, manifest = synthetic_faces()
    write_prepared_set(root / "stimuli" / "synth", images, manifest, background=0.5)
    return root


def tiny_grid(**overrides) -> dict:
    """A grid config dict: width 1/16, 32 px input, random init, a few epochs."""
    config = {
        "stimuli": "synth",
        "input_size": SIZE,
        "split": {"seed": 0, "fractions": [0.6, 0.2, 0.2]},
        "grid": {"width": [0.0625], "pretrain": ["none"], "task": ["identity"], "seed": [0]},
        "train": {"trainable": "all", "epochs": 3, "batch_size": 8, "lr": 0.05, "dropout": 0.0,
                  "optimizer": "sgd", "schedule": "cosine"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture
def write_grid(tmp_path):
    """Factory: write ``tiny_grid(**overrides)`` to a YAML file and return its path."""
    counter = iter(range(1000))

    def write(**overrides) -> Path:
        path = tmp_path / f"grid{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(tiny_grid(**overrides)))
        return path

    return write


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread in these tests: tiny convs on a shared 2-core machine run ~8x faster
    without thread contention (the setting is restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def results(tmp_path, synth_results) -> Path:
    """A fresh results root of one test, holding a copy of prepared set 'synth'."""
    root = tmp_path / "results"
    shutil.copytree(synth_results / "stimuli", root / "stimuli")
    return root



def _variant_configs(path: Path):
    return expand_grid(load_grid(path), str(path))


def _state_of(folder: Path) -> dict:
    return torch.load(folder / "model.pt", weights_only=True)


@pytest.fixture
def variant_configs():
    """``variant_configs(path)``: the expanded variant configs of a grid file."""
    return _variant_configs


@pytest.fixture
def state_of():
    """``state_of(folder)``: a variant folder's model.pt (weights_only)."""
    return _state_of


def tiny_vgg(num_classes: int = 3, *, batch_norm: bool = False, bias: bool = True, seed: int = 0):
    """A random tiny VGG-16 scaled so its activations and logits are of order one.

    torchvision's init (FC std 0.01) gives logits near 1e-3, where zennit's 1e-6 stabiliser
    alone costs 1e-3 of conservation; trained networks are far from that regime.
    """
    torch.manual_seed(seed)
    net = build_vgg16(num_classes, width=0.0625, batch_norm=batch_norm)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if isinstance(m, torch.nn.Conv2d):
                m.weight *= 1.5
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                if bias:
                    m.bias.normal_(0, 0.05)
                else:
                    m.bias.zero_()
            if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial running statistics to merge
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return net.eval()


@pytest.fixture
def make_vgg():
    """Factory fixture: ``make_vgg(num_classes, batch_norm=..., bias=..., seed=...)``."""
    return tiny_vgg


@pytest.fixture
def rng():
    return np.random.default_rng(0)


GRID = {
    "input_size": 32,
    "split": {"seed": 0, "fractions": [0.6, 0.2, 0.2]},
    "grid": {"arch": ["vgg16-bn"], "width": [0.0625], "pretrain": ["none"], "task": ["gender"],
             "seed": [0, 1]},
    "train": {"trainable": "all", "optimizer": "adam", "lr": 0.001, "epochs": 12, "batch_size": 16,
              "dropout": 0.0, "select": "last"},
}
VARIANTS = ("vgg16-bn-w0.0625-none-gender-s0", "vgg16-bn-w0.0625-none-gender-s1")


def train_tiny(root, set_name: str, seeds=(0, 1), epochs: int = 12):
    """Train tiny VGG-16-bn gender variants on prepared set ``set_name`` with the model part's trainer."""
    config = {**GRID, "stimuli": set_name, "grid": {**GRID["grid"], "seed": list(seeds)},
              "train": {**GRID["train"], "epochs": epochs}}
    path = root / f"grid-{set_name}.yaml"
    path.write_text(yaml.safe_dump(config))
    with torch.random.fork_rng(devices=[]):
        train_grid(path, root, progress=False)
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A results root with synthetic set 'synth-eyes' (32 px; the class cue only in the eyes region)
    and two tiny trained variants on it (seeds 0 and 1): the shared ground for the command tests."""
    root = tmp_path_factory.mktemp("results")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        synth_set("eyes", 32, "synth-eyes", results=root, n_per_class=100, seed=1)
        train_tiny(root, "synth-eyes")
    finally:
        torch.set_num_threads(before)
    return root
