"""Relevance maps: conservation, the fast path against zennit, grids, errors, the model left alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from zennit.attribution import Gradient
from zennit.composites import COMPOSITES

from model.frozen import frozen_eval
from model.grid import input_bounds, to_stimulus_grid
from model.lrp import Explainer, explain_images, make_composite, methods
from model.lrp_fast import SERVED_COMPOSITES, FastLRP, Unsupported
from model.preprocess import to_model_input
from stimuli.contracts.errors import InputError


def to_input32(images):
    return to_model_input(images, 32)


def zennit_reference(net, x, target, name, low, high):
    """Straight zennit: composite from the registry, Gradient attributor, output one-hot x logit."""
    composite = make_composite(name, net, low=low, high=high)

    def attr_output(out):
        return torch.zeros_like(out).scatter_(1, target[:, None], out.detach().gather(1, target[:, None]))

    with frozen_eval(net), Gradient(net, composite, attr_output=attr_output) as attributor:
        return attributor(x.clone().requires_grad_(True))[1]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest per-map max |a - b| / max |b|."""
    dims = tuple(range(1, a.ndim))
    return float(((a - b).abs().amax(dims) / b.abs().amax(dims)).max())


@pytest.mark.parametrize("name", ["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_plus"])
@pytest.mark.parametrize("fast", [True, False])
def test_conservation_on_bias_free_vgg(name, fast, rng, make_vgg):
    net = make_vgg(bias=False)
    images = rng.random((4, 40, 40), dtype=np.float32)
    maps = explain_images(net, images, to_input32, method=name, fast=fast)
    assert maps.backend == ("fast" if fast else "zennit")
    ratio = maps.relevance.sum(axis=(1, 2), dtype=np.float64) / maps.logit
    assert np.all(np.abs(ratio - 1) < 1e-3), ratio
    assert maps.conservation["bias_free"] and maps.conservation["tolerance"] == 1e-3
    assert maps.flagged == []


def test_nonconservative_and_nonfinite_maps_are_flagged(rng, make_vgg):
    from model.lrp import conservation_check

    check = conservation_check(np.array([1.0, 0.2, np.nan, 2.0]), np.array([1.0, 1.0, 1.0, 2.0]),
                               applicable=True, tolerance=0.5)
    assert check["far_off"] == [1] and check["nonfinite"] == [2]
    assert check["ratio"][2] is None and check["ratio"][3] == 1.0
    # a biased network is not held to bias-free precision, but its maps are still checked
    maps = explain_images(make_vgg(bias=True), rng.random((3, 32, 32), dtype=np.float32), to_input32)
    assert maps.conservation["applicable"] and not maps.conservation["bias_free"]
    assert maps.conservation["tolerance"] == 0.5


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("name", SERVED_COMPOSITES)
def test_fast_path_matches_zennit(name, batch_norm, make_vgg):
    net = make_vgg(batch_norm=batch_norm)
    torch.manual_seed(1)
    x = to_input32(torch.rand(3, 40, 40))
    target = torch.tensor([0, 2, 1])
    low, high = input_bounds(to_input32, (40, 40))
    reference = zennit_reference(net, x, target, name, low, high)
    fast = FastLRP(net, name, low=low, high=high)
    logits, relevance = fast(x, target)
    assert relative_error(relevance, reference) < 1e-5
    with torch.no_grad():
        assert torch.allclose(logits, net(x), rtol=1e-4, atol=1e-6)


def test_fast_path_falls_back_to_zennit(make_vgg):
    net = make_vgg()
    x = to_input32(torch.rand(2, 32, 32))
    target = torch.tensor([0, 1])
    # a composite it does not serve
    explainer = Explainer(net, "excitation_backprop")
    assert explainer.backend == "zennit" and "does not serve" in explainer.fallback_reason
    with frozen_eval(net), Gradient(net, COMPOSITES["excitation_backprop"](), attr_output=lambda o: torch.zeros_like(
            o).scatter_(1, target[:, None], o.detach().gather(1, target[:, None]))) as attributor:
        expected = attributor(x.clone().requires_grad_(True))[1]
    assert torch.allclose(explainer(x, target)[1], expected)
    # a network it does not recognise (no features/avgpool/classifier): zennit, same numbers as zennit
    seq = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 32 * 32, 2))
    with pytest.raises(Unsupported):
        FastLRP(seq, "epsilon_plus_flat")
    explainer = Explainer(seq, "epsilon_plus_flat")
    assert explainer.backend == "zennit" and "not a VGG" in explainer.fallback_reason
    reference = zennit_reference(seq, x, target, "epsilon_plus_flat", None, None)
    assert torch.equal(explainer(x, target)[1], reference)


def test_fast_path_refuses_changed_parameters(make_vgg):
    net = make_vgg()
    fast = FastLRP(net)
    with torch.no_grad():
        net.features[0].weight.mul_(2)
    with pytest.raises(RuntimeError, match="changed"):
        fast(torch.randn(1, 3, 32, 32))


def hooks_of(net):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in net.modules())


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("fast", [True, False])
def test_model_left_unchanged(batch_norm, fast, make_vgg):
    net = make_vgg(batch_norm=batch_norm).train()
    net.features[0].weight.requires_grad_(False)  # a mixed state must come back as it was
    before = {k: v.clone() for k, v in net.state_dict().items()}
    params = {name: (p, p.requires_grad) for name, p in net.named_parameters()}
    hooks = hooks_of(net)
    low, high = input_bounds(to_input32, (32, 32))
    for name in ("epsilon_gamma_box", "epsilon_plus_flat", "gradient_x_input"):
        explainer = Explainer(net, name, low=low, high=high, fast=fast)
        explainer(to_input32(torch.rand(2, 32, 32)), torch.tensor([0, 1]))
    assert net.training and all(m.training for m in net.modules())
    assert hooks_of(net) == hooks
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    for name, p in net.named_parameters():
        assert p is params[name][0] and p.requires_grad == params[name][1] and p.grad is None


def test_unknown_composite_lists_valid_ones(make_vgg):
    with pytest.raises(InputError) as error:
        Explainer(make_vgg(), "epsilon_plus_flatt")
    message = str(error.value)
    assert "unknown composite 'epsilon_plus_flatt'" in message and "\n" not in message
    for name in list(COMPOSITES) + ["gradient", "gradient_x_input"]:
        assert name in message
    assert set(methods()) == set(COMPOSITES) | {"gradient", "gradient_x_input"}


def test_nan_image_refused(rng, make_vgg):
    images = rng.random((3, 32, 32), dtype=np.float32)
    images[1, 4, 5] = np.nan
    with pytest.raises(InputError, match="image b contains NaN"):
        explain_images(make_vgg(), images, to_input32, ids=["a", "b", "c"])
    images[1, 4, 5] = np.inf
    with pytest.raises(InputError, match="#1"):
        explain_images(make_vgg(), images, to_input32)


@pytest.mark.parametrize("grid", [(40, 40), (45, 37), (32, 32), (20, 24)])
def test_resampling_to_the_grid_preserves_each_map_sum(grid):
    torch.manual_seed(0)
    relevance = torch.randn(3, 3, 32, 32)
    low, high = input_bounds(to_input32, grid)
    back = to_stimulus_grid(relevance, to_input32, grid, low, high)
    assert back.shape == (3, *grid)
    assert torch.allclose(back.sum((1, 2)), relevance.sum((1, 2, 3)), rtol=1e-5, atol=1e-4)
    if grid == (32, 32):  # no resize: just the channel sum
        assert torch.allclose(back, relevance.sum(1), atol=1e-5)
    # it is the adjoint of the resize: <R, A g> == <A^T R, g> for any grid image g
    g = torch.rand(3, *grid)
    resized = (to_input32(g) - low) / (high - low)  # undo the normalisation: the resize alone
    assert torch.allclose((relevance * resized).sum(), (back * g).sum(), rtol=1e-4)


def test_maps_follow_their_images(rng, make_vgg):
    """Map i belongs to image i: explaining a permuted set permutes the maps."""
    net = make_vgg()
    images = rng.random((5, 40, 40), dtype=np.float32)
    target = np.array([0, 1, 2, 0, 1])
    maps = explain_images(net, images, to_input32, target=target, batch_size=2)
    order = np.array([3, 0, 4, 1, 2])
    permuted = explain_images(net, images[order], to_input32, target=target[order], batch_size=3)
    np.testing.assert_allclose(permuted.relevance, maps.relevance[order], rtol=1e-4, atol=1e-6)
    assert maps.relevance.shape == (5, 40, 40) and list(maps.target) == list(target)
    with torch.no_grad():
        expected = net(to_input32(images)).numpy()
    np.testing.assert_allclose(maps.logit, expected[np.arange(5), target], rtol=1e-4, atol=1e-6)
    assert list(maps.prediction) == list(expected.argmax(1))


def test_pred_target_explains_the_argmax(rng, make_vgg):
    net = make_vgg()
    images = rng.random((4, 32, 32), dtype=np.float32)
    maps = explain_images(net, images, to_input32, target=None)
    assert list(maps.target) == list(maps.prediction)


def test_preserved_undoes_reassigned_parameters(make_vgg):
    """zennit 1.0 swaps parameter objects (assign=True loads, object.__setattr__); they come back."""
    from model.frozen import preserved

    net = make_vgg(batch_norm=True)
    conv, bn = net.features[0], net.features[1]
    weight, bias, mean = conv.weight, conv.bias, bn.running_mean
    with preserved(net):
        object.__setattr__(conv, "weight", conv.weight * 2)  # an instance attribute shadowing the parameter
        conv.load_state_dict({"bias": torch.zeros_like(conv.bias)}, strict=False, assign=True)
        bn._buffers["running_mean"] = torch.ones_like(mean)
    assert conv.weight is weight and "weight" not in vars(conv) and bn.running_mean is mean
    assert conv.bias is bias and torch.equal(net.state_dict()["features.0.weight"], weight)
