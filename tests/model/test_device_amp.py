"""Mixed precision: float32 on the CPU (unchanged), LRP always float32 (conservation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.architecture import build_vgg16
from model.device import amp_dtype, autocast, full_precision, grad_scaler, precision_name, set_amp
from model.lrp import Explainer, explain_images
from model.preprocess import to_model_input


def _bias_free_net(seed: int = 0) -> torch.nn.Module:
    """A tiny VGG with zero biases: its LRP maps conserve the logit to float rounding.

    Weights doubled (16 layers: logits x 65536) so that the epsilon stabiliser absorbs nothing.
    """
    torch.manual_seed(seed)
    net = build_vgg16(3, width=0.0625).eval()
    with torch.no_grad():
        for module in net.modules():
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
                module.weight.mul_(2.0)
    return net


def _images(n: int = 4, size: int = 40) -> np.ndarray:
    return np.random.default_rng(0).random((n, size, size), dtype=np.float32)


def test_cpu_precision_is_float32_and_autocast_is_a_no_op():
    cpu = torch.device("cpu")
    assert amp_dtype(cpu) is None and precision_name(cpu) == "float32" and grad_scaler(cpu) is None
    with autocast(cpu):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(3, 3) @ torch.ones(3, 3)).dtype == torch.float32


def test_amp_switch_is_process_wide_and_exported(monkeypatch):
    monkeypatch.setenv("MODEL_AMP", "1")
    try:
        set_amp(False)
        assert amp_dtype("cuda") is None  # off: float32 even on a GPU
        import os

        assert os.environ["MODEL_AMP"] == "0"  # local jobs (child processes) follow
    finally:
        set_amp(True)
    if torch.cuda.is_available():
        assert amp_dtype("cuda") in (torch.bfloat16, torch.float16)


def test_full_precision_switches_an_enclosing_autocast_off():
    @full_precision
    def inner():
        return torch.is_autocast_enabled("cpu"), (torch.ones(4, 4) @ torch.ones(4, 4)).dtype

    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16  # the outer context acts
        assert inner() == (False, torch.float32)
        assert torch.is_autocast_enabled("cpu")  # and is restored afterwards


@pytest.mark.parametrize("fast", [True, False])
def test_lrp_inside_an_outer_bf16_autocast_stays_float32_and_conserves(fast):
    """explain must run outside autocast: inside a bf16 context its maps are the float32 maps."""
    net = _bias_free_net()
    x = to_model_input(_images(), 32)
    target = torch.tensor([0, 1, 2, 0])
    explainer = Explainer(net, fast=fast)
    logits32, relevance32 = explainer(x, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, relevance = explainer(x, target)
    assert relevance.dtype == torch.float32 and logits.dtype == torch.float32
    torch.testing.assert_close(relevance, relevance32, rtol=1e-5, atol=1e-7)
    explained = logits.gather(1, target[:, None])[:, 0]
    ratio = relevance.sum(dim=(1, 2, 3)) / explained
    assert torch.all((ratio - 1).abs() < 1e-4), ratio


def test_explain_images_inside_autocast_conserves_like_float32():
    net = _bias_free_net(1)
    images = _images(3)

    def to_input(im):
        return to_model_input(im, 32)

    reference = explain_images(net, images, to_input, target=[0, 1, 2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        maps = explain_images(net, images, to_input, target=[0, 1, 2])
    assert maps.relevance.dtype == np.float32
    assert maps.conservation["max_abs_error"] < 1e-4, maps.conservation["max_abs_error"]
    np.testing.assert_allclose(maps.relevance, reference.relevance, rtol=1e-5, atol=1e-8)
