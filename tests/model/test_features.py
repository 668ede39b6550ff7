"""The memo of frozen-prefix outputs: exact, shared when weights and pixels match, never stale."""

from __future__ import annotations

import torch

from model import build_vgg16
from model.architecture import freeze_prefix
from model.features import clear_memo, prefix_outputs
from model.preprocess import normalise_grey


def test_prefix_outputs_are_exact_shared_and_never_stale():
    clear_memo()
    torch.manual_seed(0)
    net = build_vgg16(3, width=0.0625)
    prefix, _ = freeze_prefix(net, "head")  # conv trunk + frozen FC1/FC2
    grey = torch.rand(5, 32, 32)
    first = prefix_outputs(prefix, grey, batch_size=2)
    with torch.no_grad():
        assert torch.allclose(first, prefix(normalise_grey(grey)), atol=1e-6)
    assert prefix_outputs(prefix, grey) is first  # memo hit: same weights, same pixels

    torch.manual_seed(1)  # another seed's FC layers on the same conv trunk
    other = build_vgg16(3, width=0.0625)
    other.features.load_state_dict(net.features.state_dict())
    other_prefix, _ = freeze_prefix(other, "head")
    changed = prefix_outputs(other_prefix, grey)
    with torch.no_grad():
        assert torch.allclose(changed, other_prefix(normalise_grey(grey)), atol=1e-6)
    assert not torch.allclose(changed, first)

    with torch.no_grad():
        net.features[0].weight.mul_(1.5)  # same module, new conv weights: recomputed
        expected = prefix(normalise_grey(grey))
    assert torch.allclose(prefix_outputs(prefix, grey), expected, atol=1e-6)
    assert not torch.allclose(prefix_outputs(prefix, torch.flip(grey, dims=(-1,))), expected)
