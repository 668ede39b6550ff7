"""Variant names and the relation of two variants (stimuli/contracts/variants.py)."""

from types import SimpleNamespace

import pytest

from stimuli.contracts.errors import InputError
from stimuli.contracts.variants import parse_variant_name, variant_relation


@pytest.mark.slow  # imports torch (through model) once
@pytest.mark.parametrize("name", ["vgg16-imagenet-gender-s0", "vgg16-bn-w0.25-faces-identity-s12",
                                  "vgg16-w0.5-none-gender-s3", "vgg16-imagenet-faces-s0", "vgg16-my_file-gender-s1"])
def test_names_round_trip_and_agree_with_model(name):
    spec = parse_variant_name(name)
    assert spec.name == name == str(spec)
    # the model part's configs must read names the same way
    from model.config import VariantConfig

    theirs = VariantConfig.spec.fget(SimpleNamespace(variant=name))
    assert (spec.batch_norm, spec.width, spec.pretrain, spec.task, spec.seed) == (
        theirs.batch_norm, theirs.width, theirs.pretrain, theirs.task, theirs.seed)
    assert spec.label_task == theirs.label_task


@pytest.mark.parametrize("name, message", [
    ("resnet-imagenet-gender-s0", "is not a variant name"),
    ("vgg16-imagenet-age-s0", "is not a variant name"),
    ("vgg16-w1.0-imagenet-gender-s0", "not written the canonical way; use 'vgg16-imagenet-gender-s0'"),
    ("vgg16-w2-imagenet-gender-s0", "width must lie in (0, 1]"),
    ("vgg16-imagenet-gender-s01", "not written the canonical way"),
])
def test_bad_names_are_refused_with_a_reason(name, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_variant_name(name)


@pytest.mark.parametrize("a, b, relation", [
    ("vgg16-imagenet-gender-s0", "vgg16-imagenet-gender-s0", "same"),
    ("vgg16-imagenet-gender-s0", "vgg16-imagenet-gender-s1", "seed"),
    ("vgg16-imagenet-gender-s0", "vgg16-imagenet-identity-s0", "task"),
    ("vgg16-imagenet-gender-s0", "vgg16-faces-gender-s0", "pretrain"),
    ("vgg16-imagenet-gender-s0", "vgg16-bn-imagenet-gender-s0", "arch"),
    ("vgg16-imagenet-gender-s0", "vgg16-w0.5-imagenet-gender-s0", "width"),
    ("vgg16-imagenet-gender-s0", "vgg16-faces-gender-s1", "other"),
])
def test_relation_is_the_one_differing_factor(a, b, relation):
    assert variant_relation(a, b) == relation == variant_relation(b, a)
