"""RSA statistics: tau-a, correlations with missing pairs, noise ceiling, permutation and bootstrap."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from analysis.rsa import (
    bootstrap_rsa,
    compare_models,
    kendall_tau_a,
    noise_ceiling,
    permutation_test,
    rdm_correlation,
    rsa_table,
    subject_correlations,
    upper,
)
from stimuli.contracts.errors import InputError
from stimuli.contracts.rdm import check_rdm


def rdm_of(points: np.ndarray) -> np.ndarray:
    return squareform(pdist(points))


def noisy_subjects(truth: np.ndarray, people: int, sd: float, rng) -> np.ndarray:
    out = []
    for _ in range(people):
        noise = rng.normal(scale=sd, size=truth.shape)
        rdm = truth + (noise + noise.T) / 2
        np.fill_diagonal(rdm, 0)
        out.append(rdm)
    return np.stack(out)


def brute_tau_a(x, y):
    score = 0
    for i, j in combinations(range(len(x)), 2):
        score += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    return score / (len(x) * (len(x) - 1) / 2)


def test_kendall_tau_a_counts_ties_as_neither():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 4, 15).astype(float)  # many ties, as in categorical model RDMs
        y = rng.integers(0, 6, 15).astype(float)
        assert kendall_tau_a(x, y) == pytest.approx(brute_tau_a(x, y))
    x = np.arange(10.0)
    assert kendall_tau_a(x, x) == 1.0 and kendall_tau_a(x, -x) == -1.0
    tied = np.array([0, 0, 0, 1, 1, 1.0])
    assert kendall_tau_a(tied, tied) < stats.kendalltau(tied, tied).statistic == 1.0  # tau-a penalises ties
    assert np.isnan(kendall_tau_a(np.ones(5), x[:5]))


def test_rdm_correlation_uses_the_upper_triangle_and_skips_missing_pairs():
    rng = np.random.default_rng(1)
    a = rdm_of(rng.normal(size=(8, 2)))
    b = a ** 2 + 0.0  # monotone: rank correlation 1
    assert rdm_correlation(a, b) == pytest.approx(1.0)
    assert rdm_correlation(a, b, "kendall_a") == pytest.approx(1.0)
    assert rdm_correlation(a, b, "pearson") < 1.0
    assert upper(a).shape == (28,) and upper(np.stack([a, b])).shape == (2, 28)
    c = b.copy()
    c[0, 1] = c[1, 0] = np.nan  # a pair without data
    c[2, 3] = c[3, 2] = 100.0
    d = b.copy()
    d[2, 3] = d[3, 2] = 100.0
    assert rdm_correlation(a, c) == pytest.approx(stats.spearmanr(np.delete(upper(a), 0), np.delete(upper(d), 0))[0])
    with pytest.raises(InputError, match="first RDM is not symmetric"):
        rdm_correlation(a + np.triu(np.ones_like(a), 1), b)
    with pytest.raises(InputError, match="cannot be compared"):
        rdm_correlation(a, b[:5, :5])
    with pytest.raises(InputError, match="unknown RSA correlation 'kendall'"):
        rdm_correlation(a, b, "kendall")


def test_check_rdm():
    good = rdm_of(np.arange(4.0)[:, None])
    assert check_rdm(good).shape == (4, 4)
    with pytest.raises(InputError, match="zero diagonal"):
        check_rdm(good + np.eye(4))
    with pytest.raises(InputError, match="square"):
        check_rdm(good[:3])
    bad = good.copy()
    bad[0, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        check_rdm(bad)
    with pytest.raises(InputError, match="not symmetric"):
        check_rdm(bad, allow_nan=True)


def test_noise_ceiling_brackets_the_true_model_and_tightens_with_less_noise():
    rng = np.random.default_rng(2)
    truth = rdm_of(rng.normal(size=(15, 3)))
    widths = []
    for sd in (1.5, 0.5):
        subjects = noisy_subjects(truth, 8, sd, rng)
        for method in ("spearman", "kendall_a", "pearson"):
            ceiling = noise_ceiling(subjects, method)
            true_r = subject_correlations(truth, subjects, method).mean()
            assert ceiling["lower"] <= true_r <= ceiling["upper"], (sd, method, ceiling, true_r)
        widths.append(ceiling["upper"] - ceiling["lower"])
    assert widths[1] < widths[0]
    with pytest.raises(InputError, match="at least 2 participants"):
        noise_ceiling(subjects[:1])


def test_permutation_test_finds_a_real_relation_and_not_a_fake_one():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(12, 2))
    human = noisy_subjects(rdm_of(points), 1, 0.3, rng)[0]
    related = permutation_test(rdm_of(points), human, n=500, seed=1)
    assert related["observed"] > 0.5 and related["p"] == pytest.approx(1 / 501)
    unrelated = permutation_test(rdm_of(rng.normal(size=(12, 2))), human, n=500, seed=1)
    assert unrelated["p"] > 0.05 and abs(unrelated["null_mean"]) < 0.05 and len(unrelated["null"]) == 500
    # same seed, same null; the p-value can never be 0
    again = permutation_test(rdm_of(points), human, n=500, seed=1)
    assert np.array_equal(again["null"], related["null"])


def test_permutation_p_values_are_uniform_under_the_null():
    rng = np.random.default_rng(4)
    p = []
    for _ in range(150):
        human, model = rdm_of(rng.normal(size=(10, 2))), rdm_of(rng.normal(size=(10, 2)))
        p.append(permutation_test(model, human, n=99, seed=int(rng.integers(1 << 30)))["p"])
    p = np.asarray(p)
    assert 0.0 <= np.mean(p < 0.05) <= 0.1 and stats.kstest(p, "uniform").pvalue > 0.01


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


def test_pearson_noise_ceiling_averages_z_scored_rdms():
    # participants who use very different ranges of dissimilarity: a raw mean would be led by the
    # widest one; Nili et al. (2014) average z-scored RDMs for Pearson
    rng = np.random.default_rng(11)
    truth = rdm_of(rng.normal(size=(10, 3)))
    subjects = []
    for scale, offset in ((1.0, 0.0), (25.0, 3.0), (0.2, 9.0), (4.0, 1.0)):
        noisy = truth + rng.normal(scale=0.6, size=truth.shape)
        noisy = (noisy + noisy.T) / 2
        np.fill_diagonal(noisy, 0)
        subjects.append(np.abs(noisy) * scale + offset * (1 - np.eye(10)))
    subjects = np.stack(subjects)
    vectors = np.stack([s[np.triu_indices(10, 1)] for s in subjects])
    z = stats.zscore(vectors, axis=1)  # independent of the module: scipy's z-score
    upper_expected = np.mean([np.corrcoef(v, z.mean(axis=0))[0, 1] for v in vectors])
    lower_expected = np.mean([np.corrcoef(v, np.delete(z, i, axis=0).mean(axis=0))[0, 1]
                              for i, v in enumerate(vectors)])
    ceiling = noise_ceiling(subjects, "pearson")
    assert ceiling["upper"] == pytest.approx(upper_expected, abs=1e-12)
    assert ceiling["lower"] == pytest.approx(lower_expected, abs=1e-12)
    raw_upper = np.mean([np.corrcoef(v, vectors.mean(axis=0))[0, 1] for v in vectors])
    assert abs(raw_upper - upper_expected) > 1e-3  # the raw mean would have given another number
