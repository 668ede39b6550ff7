"""Fixtures of the explain tests: tiny VGG-16s (13 conv + 3 FC, 1/16 width) with O(1) logits."""

from __future__ import annotations

import pytest
import torch

from model.architecture import build_vgg16


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
    import numpy as np

    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: tiny convs on a shared 2-core machine run faster without contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    import yaml

    from model.train import train_grid

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
    from stimuli.synthetic import synth_set

    root = tmp_path_factory.mktemp("results")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        synth_set("eyes", 32, "synth-eyes", results=root, n_per_class=100, seed=1)
        train_tiny(root, "synth-eyes")
    finally:
        torch.set_num_threads(before)
    return root
