"""Baseline networks and their maps: the nulls of the map-similarity findings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.explain import explain_images, image_subset
from model.preprocess import to_model_input
from model.sanity import baseline_network, baseline_seed, trained_layers
from stimuli.contracts.errors import InputError
from stimuli.contracts.relevance import baseline_set


def _same(a: torch.nn.Module, b: torch.nn.Module, layer: str) -> bool:
    return torch.equal(dict(a.named_modules())[layer].weight, dict(b.named_modules())[layer].weight)


@pytest.mark.parametrize("trainable, first", [("head", "classifier.6"), ("classifier", "classifier.0"),
                                              ("block5", "features.24")])
def test_untrained_baseline_reinitialises_only_the_trained_layers(make_vgg, trainable, first):
    net = make_vgg(2, seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    layers = trained_layers(net, trainable)
    assert layers[0] == first and layers[-1] == "classifier.6"
    base = baseline_network(net, "untrained", trainable=trainable, seed=5)
    weights = [n for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    for name in weights:
        assert _same(net, base, name) == (name not in layers), name
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the original is untouched
    # the same seed gives the same baseline; another seed another one
    again = baseline_network(net, "untrained", trainable=trainable, seed=5)
    other = baseline_network(net, "untrained", trainable=trainable, seed=6)
    assert _same(base, again, layers[0]) and not _same(base, other, layers[0])


def test_random_baseline_reinitialises_every_layer(make_vgg):
    net = make_vgg(2, seed=0)
    base = baseline_network(net, "random", seed=1)
    weights = [n for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert not any(_same(net, base, name) for name in weights)
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_network(net, "shuffled")


def test_baseline_seeds_differ_between_variants_and_are_stable():
    a, b = "vgg16-imagenet-gender-s0", "vgg16-imagenet-identity-s0"
    assert baseline_seed(a) == baseline_seed(a) and baseline_seed(a) != baseline_seed(b)
    assert baseline_seed(a, 1) != baseline_seed(a, 0)


def test_baseline_maps_differ_from_the_trained_ones(make_vgg, rng):
    images = rng.random((4, 40, 40), dtype=np.float32)
    net = make_vgg(2, seed=0)

    def maps(model):
        return explain_images(model, images, lambda im: to_model_input(im, 32), target=[0, 1, 0, 1]).relevance

    own = maps(net)
    for kind in ("untrained", "random"):
        base = maps(baseline_network(net, kind, trainable="block5", seed=3))
        assert base.shape == own.shape and np.isfinite(base).all()
        # a re-initialised part changes what is explained, though LRP maps of a random top on a
        # fixed trunk stay close to the trunk's: the reason the findings need this null at all
        scale = np.abs(own).max(axis=(1, 2), keepdims=True)
        assert np.abs(base / np.abs(base).max(axis=(1, 2), keepdims=True) - own / scale).max() > 0.01, kind


def test_image_subset_is_seeded_sorted_and_checked():
    rows = image_subset(50, 10, seed=2)
    assert len(rows) == 10 and len(set(rows)) == 10 and (np.diff(rows) > 0).all()
    assert rows.tolist() == image_subset(50, 10, seed=2).tolist() != image_subset(50, 10, seed=3).tolist()
    assert image_subset(5, None).tolist() == [0, 1, 2, 3, 4] == image_subset(5, 9).tolist()
    with pytest.raises(InputError, match="at least 1"):
        image_subset(5, 0)
    assert baseline_set("orl128", "random") == "orl128.baseline-random"
    with pytest.raises(InputError, match="unknown baseline"):
        baseline_set("orl128", "nope")


@pytest.mark.slow
def test_explain_command_writes_baseline_maps_next_to_the_variants(trained, capsys):
    from model.explain import main as explain_main
    from stimuli.contracts.relevance import load_relevance, relevance_path

    variant = "vgg16-bn-w0.0625-none-gender-s0"
    common = ["--variant", variant, "--stimuli", "synth-eyes", "--out", str(trained), "--device", "cpu"]
    assert explain_main(common + ["--images", "24", "--image-seed", "4"]) == 0
    own = load_relevance(variant, "synth-eyes", trained)
    assert explain_main(common + ["--baseline", "untrained", "random", "--images", "24", "--image-seed", "4"]) == 0
    for kind in ("untrained", "random"):
        path = relevance_path(variant, f"synth-eyes.baseline-{kind}", trained)
        assert path.is_file()
        base = load_relevance(path)
        assert base.meta["baseline"]["kind"] == kind and base.meta["images"] == {"n": 24, "of": 200, "seed": 4}
        assert base.meta["baseline"]["reinit_seed"] == baseline_seed(variant, 0)
        assert list(base.stimulus_id) == list(own.stimulus_id)  # the same subset: maps pair up
        r = [np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(own.relevance, base.relevance)]
        assert np.mean(r) < 0.9, kind
    capsys.readouterr()
