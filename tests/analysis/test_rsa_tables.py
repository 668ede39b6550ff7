"""RSA tables: bootstrap intervals, model comparisons and variant relations."""

from __future__ import annotations

import numpy as np
import pytest
from rdm_fixtures import noisy_subjects, rdm_of

from analysis.rsa_tables import bootstrap_rsa, compare_models, rsa_table
from stimuli.contracts.errors import InputError


def test_bootstrap_intervals_cover_and_compare_models():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(16, 3))
    truth = rdm_of(points)
    subjects = noisy_subjects(truth, 6, 0.8, rng)
    blurred = rdm_of(points + rng.normal(scale=1.2, size=points.shape))
    models = {"truth": truth, "blurred": blurred, "random": rdm_of(rng.normal(size=(16, 3)))}
    table, draws = rsa_table(models, subjects, permutations=200, bootstraps=300, seed=1)
    assert list(table.model) == ["truth", "blurred", "random"]
    assert draws["group"].shape == draws["subjects"].shape == (300, 3)
    for _, row in table.iterrows():
        assert row.group_ci_low <= row.rsa_group + 0.05 and row.rsa_group - 0.05 <= row.group_ci_high
        assert row.subjects_ci_low <= row.rsa_subjects <= row.subjects_ci_high
    truth_row = table.set_index("model").loc["truth"]
    assert truth_row.p_perm < 0.01 and truth_row.rsa_group > truth_row.rsa_subjects
    assert table.set_index("model").loc["random"].p_perm > 0.05
    assert (table.ceiling_lower <= truth_row.rsa_subjects).all() and (truth_row.rsa_subjects <= table.ceiling_upper).all()
    pairs = compare_models(table, draws)
    first = pairs.set_index(["model_a", "model_b"]).loc[("truth", "random")]
    assert first.difference > 0.3 and first.ci_low > 0 and first.p_boot < 0.05
    assert list(pairs.relation) == ["other model"] * 3
    for over in ("stimuli", "subjects"):
        single = bootstrap_rsa(models, subjects, n=50, over=over, seed=2)
        assert np.isfinite(single["subjects"]).all()
    with pytest.raises(InputError, match="bootstrap over 'pixels'"):
        bootstrap_rsa(models, subjects, n=5, over="pixels")


def test_variant_relations_in_comparisons():
    rng = np.random.default_rng(6)
    truth = rdm_of(rng.normal(size=(8, 2)))
    subjects = noisy_subjects(truth, 4, 0.5, rng)
    models = {f"{v}:penultimate": rdm_of(rng.normal(size=(8, 2))) for v in
              ("vgg16-imagenet-gender-s0", "vgg16-imagenet-gender-s1", "vgg16-imagenet-identity-s0")}
    table, draws = rsa_table(models, subjects, permutations=0, bootstraps=20)
    assert table.p_perm.isna().all()
    relations = compare_models(table, draws, statistic="group").set_index(["model_a", "model_b"]).relation
    assert relations[("vgg16-imagenet-gender-s0:penultimate", "vgg16-imagenet-gender-s1:penultimate")] == "seed"
    assert relations[("vgg16-imagenet-gender-s0:penultimate", "vgg16-imagenet-identity-s0:penultimate")] == "task"
