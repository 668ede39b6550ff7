"""VGG-16 variants: torchvision's exact architecture at width 1, the topology at smaller widths,
and the prefix/suffix split training relies on."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from model import build_vgg16
from model.architecture import (
    TRAINABLE,
    first_trainable,
    flat_layers,
    freeze_prefix,
    replace_head,
    split_at,
)
from model.preprocess import to_model_input


@pytest.mark.parametrize("batch_norm", [False, True])
def test_width_one_is_torchvision_vgg16(batch_norm):
    with torch.device("meta"):  # shapes only: skip initialising 2 x 138M parameters
        ours = build_vgg16(1000, batch_norm=batch_norm)
        theirs = (torchvision.models.vgg16_bn if batch_norm else torchvision.models.vgg16)(weights=None)
    assert type(ours) is type(theirs)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert sum(p.numel() for p in ours.parameters()) == (138365992 if batch_norm else 138357544)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    assert all(ours_state[k].shape == theirs_state[k].shape for k in ours_state)
    ours.load_state_dict(theirs_state, assign=True)  # strict: torchvision weights load as they are
    with torch.device("meta"):
        assert build_vgg16(2, batch_norm=batch_norm).classifier[-1].out_features == 2


@pytest.mark.parametrize("batch_norm", [False, True])
def test_smaller_width_keeps_13_conv_and_3_fc(batch_norm):
    net = build_vgg16(5, width=0.125, batch_norm=batch_norm, dropout=0.3)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
    assert len(convs) == 13 and len(linears) == 3
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 32, 32, 32, 64, 64, 64, 64, 64, 64]
    assert [m.out_features for m in linears] == [512, 512, 5]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.features) == (13 if batch_norm else 0)
    assert all(m.p == 0.3 for m in net.classifier if isinstance(m, nn.Dropout))
    # torchvision's init: FC weights N(0, 0.01), zero biases
    assert all(float(m.bias.detach().abs().max()) == 0 for m in linears)
    assert abs(float(linears[0].weight.detach().std()) - 0.01) < 0.001
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_same_seed_same_init_and_other_seed_differs():
    torch.manual_seed(3)
    a = build_vgg16(4, width=0.0625)
    torch.manual_seed(3)
    b = build_vgg16(4, width=0.0625)
    torch.manual_seed(4)
    c = build_vgg16(4, width=0.0625)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.features[0].weight, c.features[0].weight)


def test_prefix_and_suffix_compose_to_the_network():
    torch.manual_seed(0)
    net = build_vgg16(3, width=0.0625).eval()
    x = torch.randn(2, 3, 32, 32)
    for trainable in TRAINABLE:
        prefix, suffix = split_at(net, first_trainable(net, trainable))
        assert torch.allclose(suffix(prefix(x)), net(x), atol=1e-6)
    names = [n for n, _ in flat_layers(net)]
    assert names[:2] == ["features.0", "features.1"] and names[-1] == "classifier.6"
    assert first_trainable(net, "block5") == "features.24" and first_trainable(net, "block2") == "features.5"
    with pytest.raises(ValueError, match="unknown trainable part 'block9'"):
        first_trainable(net, "block9")


def test_freeze_prefix_freezes_only_the_prefix_and_keeps_it_in_eval_mode():
    net = build_vgg16(3, width=0.0625, batch_norm=True)
    net.train()
    prefix, suffix = freeze_prefix(net, "block5")
    assert not any(p.requires_grad for p in prefix.parameters())
    assert all(p.requires_grad for p in suffix.parameters())
    assert not any(m.training for m in prefix.modules())
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert "features.0.weight" in frozen and "features.34.weight" not in frozen  # BN net: block5 at 34
    head = replace_head(net, 7)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 7) and head is net.classifier[-1]


def test_input_pipeline_resizes_repeats_and_normalises():
    import numpy as np

    grey = np.zeros((1, 64, 64), np.float32)
    grey[:, :, 32:] = 1.0
    x = to_model_input(grey, 32)
    assert x.shape == (1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(x[0, :, 0, 0], (0 - mean) / std) and torch.allclose(x[0, :, 0, -1], (1 - mean) / std)
    assert torch.allclose(to_model_input(grey, 64)[0, :, 5, 40], (1 - mean) / std)  # no resize at 64
