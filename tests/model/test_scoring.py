"""Scores of a target on images (model.scoring): shared trunk passes give each head's own logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model.scoring import SharedTrunk


def test_shared_trunk_gives_each_heads_own_logits_with_one_trunk_pass(make_vgg, rng):
    """Variants that share the conv trunk share its passes, and those that also share the FC
    layers share those; a variant with its own trunk (or other images) never reuses anything;
    every logit equals the variant's own forward."""
    import copy

    from model.variants import LoadedVariant
    from stimuli.contracts.variants import parse_variant_name

    def variant(net, name):
        return LoadedVariant(net=net.eval(), spec=parse_variant_name(name), config={}, classes=["a", "b"], task="gender",
                             input_size=32, device=torch.device("cpu"), folder=Path("."))

    base = make_vgg(2, seed=0)
    other_head, other_fc = copy.deepcopy(base), copy.deepcopy(base)
    torch.nn.init.normal_(other_head.classifier[-1].weight)
    torch.nn.init.normal_(other_fc.classifier[0].weight, std=0.01)
    a, b = variant(base, "vgg16-faces-gender-s0"), variant(other_head, "vgg16-faces-gender-s1")
    c = variant(other_fc, "vgg16-imagenet-gender-s1")
    d = variant(make_vgg(2, seed=1), "vgg16-none-gender-s0")
    images = rng.random((5, 40, 40)).astype(np.float32)
    trunks = SharedTrunk()
    for v in (a, b, c, d):
        np.testing.assert_allclose(trunks.logits(v, images, batch_size=2), v.predict_logits(images, batch_size=2),
                                   rtol=1e-5, atol=1e-6)
    assert trunks.trunk_key(a) == trunks.trunk_key(b)
    assert trunks.trunk_key(a)[0] == trunks.trunk_key(c)[0] and trunks.trunk_key(a)[1] != trunks.trunk_key(c)[1]
    assert trunks.trunk_key(d)[0] != trunks.trunk_key(a)[0]
    # a: conv + FC passes; b: reuses a's FC features; c: a's conv features, its own FC; d: all its own
    assert (trunks.hits, trunks.misses) == (2, 5)
    trunks.logits(a, images[::-1].copy())
    assert trunks.misses == 7  # other pixels, other passes
