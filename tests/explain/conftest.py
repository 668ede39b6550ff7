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
