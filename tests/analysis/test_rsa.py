"""RSA statistics: tau-a, correlations with missing pairs, noise ceiling and the permutation test."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from rdm_fixtures import noisy_subjects, rdm_of
from scipy import stats

from analysis.rsa import (
    kendall_tau_a,
    noise_ceiling,
    permutation_test,
    rdm_correlation,
    subject_correlations,
    upper,
)
from stimuli.contracts.errors import InputError
from stimuli.contracts.rdm import check_rdm


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
