"""The null of guided conditions with per-image maps: per-trial analytic moments (checked by
Monte Carlo), the family-wise error of the RFT tests when faces differ in accuracy (and the
pooled-density failure it fixes), Freedman-Lane permutations, and power in the same design.

Seeds are fixed and printed; rates are reported with their Clopper-Pearson interval."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from ci_simulation import guided_face_densities, simulate_guided_observer
from scipy import stats

from analysis.apertures import BubbleTrials, aperture_ci
from analysis.ci_null import CentreDensity, TrialNull, nuisance_design
from analysis.classification import centre_histogram, compute_ci, group_z
from analysis.error_rates import clopper_pearson
from analysis.metrics import region_auc
from analysis.permutation import max_statistic_test
from analysis.rft import fwhm_from_sigma
from analysis.stat4ci import cluster_test, pixel_test
from stimuli.contracts.errors import InputError

SHAPE, SIGMA, FACES = (32, 32), 2.0, 4
REGION = np.zeros(SHAPE, bool)
REGION[2:30, 4:28] = True  # the 'face aperture': centres fall only inside



@cache
def design():
    densities = guided_face_densities(SHAPE, FACES, sigma_px=SIGMA, seed=1, region=REGION)
    return densities, {f"face{s}": CentreDensity(densities[s]) for s in range(FACES)}


def test_analytic_moments_equal_a_monte_carlo_estimate_for_mixed_densities():
    # three strata with different densities, per-trial bubble counts and two aperture sizes
    rng = np.random.default_rng(11)
    shape = (12, 12)
    maps = [rng.random(shape) ** 4, np.pad(np.ones((6, 6)), 3), rng.random(shape)]
    strata = np.array(["a", "b", "c", "a", "b", "c", "a", "b", "c", "b"])
    n = np.array([1, 3, 2, 5, 4, 1, 2, 3, 6, 2])
    sigma = np.array([1.5, 2.5] * 5)
    weights = rng.normal(size=10)
    trial_of = np.repeat(np.arange(10), n)
    cdfs = {s: np.cumsum(m.ravel()) / m.sum() for s, m in zip("abc", maps)}
    reps = 4000
    maps_mc = np.empty((reps, *shape))
    for r in range(reps):
        flat = np.concatenate([np.searchsorted(cdfs[s], rng.random(k), side="right") for s, k in zip(strata, n)])
        centres = np.stack(np.divmod(flat, shape[1]), axis=1).astype(float)
        bt = BubbleTrials(shape, centres, trial_of, np.zeros(10), sigma, stratum=strata)
        maps_mc[r] = aperture_ci(bt, weights)
    null = TrialNull.build(bt, centre_density=dict(zip("abc", maps)))
    mean, sd = null.analytic_moments(bt, weights)
    se = maps_mc.std(axis=0) / np.sqrt(reps)
    assert np.abs(maps_mc.mean(axis=0) - mean).max() < 4.5 * se.max()
    ratio = maps_mc.var(axis=0) / sd**2
    assert np.abs(ratio - 1).max() < 5 * np.sqrt(2 / reps) * 1.5  # var of a variance: ~2 var^2 / reps
    # with one density for every stratum it is the one-density formula
    same = TrialNull.build(bt, centre_density={s: maps[0] for s in "abc"}).analytic_moments(bt, weights)
    one = TrialNull.build(bt.with_strata(None), centre_density=maps[0]).analytic_moments(bt, weights)
    np.testing.assert_allclose(same[0], one[0], atol=1e-12)
    np.testing.assert_allclose(same[1], one[1], atol=1e-12)


def test_weights_are_centred_within_strata_and_densities_must_cover_them():
    rng = np.random.default_rng(3)
    densities, per_face = design()
    bt = simulate_guided_observer(rng, densities, [0.6, 0.7, 0.8, 0.9], n_trials=200, n_range=(5, 20),
                                  sigma_px=SIGMA)
    ci = compute_ci(bt, centre_density=per_face)
    for label in np.unique(bt.stratum):
        assert abs(ci.weights[bt.stratum == label].sum()) < 1e-9
    assert abs((ci.weights * bt.n_bubbles).sum()) < 1e-7
    with pytest.raises(InputError, match="no centre density for stratum 'face3'"):
        compute_ci(bt, centre_density={k: v for k, v in per_face.items() if k != "face3"})
    with pytest.raises(InputError, match="come from 4 centre densities"):
        compute_ci(bt, centre_density=densities[0])


def test_freedman_lane_permutes_within_strata_and_residualises_again():
    rng = np.random.default_rng(5)
    strata = np.repeat(["x", "y", "z"], [7, 9, 4])
    n = rng.integers(3, 30, 20)
    bt = BubbleTrials((8, 8), np.zeros((int(n.sum()), 2)), np.repeat(np.arange(20), n),
                      (rng.random(20) < 0.7).astype(float), np.full(20, 2.0), stratum=strata)
    null = TrialNull.build(bt, analytic=False)
    weights = null.weights(bt.correct)
    permuted = null.permuted_weights(weights, 50, rng)
    design_matrix = nuisance_design(20, n, strata)
    np.testing.assert_allclose(permuted @ design_matrix, 0.0, atol=1e-9)  # residualised on the reduced model
    assert not np.allclose(permuted, weights[None])
    # the permutations behind them move each trial's residual only within its stratum
    perms = null.permutations(200, np.random.default_rng(6))
    assert (null.codes[perms] == null.codes[None]).all()
    assert (np.sort(perms, axis=1) == np.arange(20)).all()
    moved = perms != np.arange(20)
    assert moved[:, strata == "x"].mean() > 0.5 and moved[:, strata == "z"].mean() > 0.5
    # the same seed gives the same permuted weights
    again = [TrialNull.build(bt, analytic=False).permuted_weights(weights, 3, np.random.default_rng(1))
             for _ in range(2)]
    np.testing.assert_array_equal(again[0], again[1])


@cache
def fwer_study(groups: int, seed: int):
    """Group family-wise error of the pixel and cluster tests, new (per-trial densities) and old
    (one pooled density, unstratified weights), on the same simulated null data."""
    densities, per_face = design()
    rng = np.random.default_rng(seed)
    fwhm = fwhm_from_sigma(SIGMA)
    hits = {"new pixel": 0, "new cluster": 0, "old pixel": 0, "old cluster": 0}
    old_max = []
    for _ in range(groups):
        bts = [simulate_guided_observer(rng, densities, np.linspace(0.6, 0.9, FACES), n_trials=300,
                                        n_range=(5, 20), sigma_px=SIGMA, n_slope=0.01) for _ in range(4)]
        new = group_z([compute_ci(bt, centre_density=per_face).z for bt in bts])
        pooled = CentreDensity(centre_histogram(np.concatenate([bt.centres for bt in bts]), SHAPE))
        old = group_z([compute_ci(bt.with_strata(None), centre_density=pooled).z for bt in bts])
        for name, z in (("new", new), ("old", old)):
            hits[f"{name} pixel"] += bool(pixel_test(z, fwhm, region=REGION).significant.any())
            hits[f"{name} cluster"] += bool(cluster_test(z, fwhm, region=REGION).significant.any())
        old_max.append(float(old[REGION].max()))
    for name, k in hits.items():
        low, high = clopper_pearson(k, groups)
        print(f"seed {seed}: {name} test family-wise error {k}/{groups} = {k / groups:.3f} "
              f"(95% CI {low:.3f}-{high:.3f})")
    return hits, float(np.median(old_max))


@pytest.mark.slow
@pytest.mark.parametrize("test", ["pixel", "cluster"])
def test_per_image_guided_null_keeps_the_family_wise_error(test):
    # faces at accuracies .6-.9, bubble location irrelevant, 80 groups of 4 observers x 300 trials
    groups = 80
    hits, _ = fwer_study(groups, 2026)
    k = hits[f"new {test}"]
    low, _ = clopper_pearson(k, groups)
    assert low <= 0.05 and k / groups <= 0.12


@pytest.mark.slow
def test_pooled_density_reproduces_the_spurious_maps():
    # the old method on the same data: one density pooled over faces, weights not centred per face
    groups = 80
    hits, median_max = fwer_study(groups, 2026)
    low, _ = clopper_pearson(hits["old pixel"], groups)
    print(f"old method: median max Z {median_max:.1f}")
    assert low > 0.5 and median_max > 6


@pytest.mark.slow
def test_freedman_lane_p_values_are_uniform_under_the_null():
    densities, per_face = design()
    rng = np.random.default_rng(77)
    groups, k = 60, 99
    p_values, rejected = [], 0
    for g in range(groups):
        bts = [simulate_guided_observer(rng, densities, np.linspace(0.6, 0.9, FACES), n_trials=250,
                                        n_range=(5, 60), sigma_px=SIGMA) for _ in range(3)]
        cis = [compute_ci(bt, centre_density=per_face) for bt in bts]
        z = group_z([ci.z for ci in cis])
        result = max_statistic_test(bts, cis, region=REGION, n_permutations=k, seed=g)
        observed = z[REGION].max()
        p_values.append(float(result.pixel_pvalues(observed)))
        rejected += observed > result.pixel_threshold
    ks = stats.kstest(p_values, "uniform")
    low, high = clopper_pearson(rejected, groups)
    print(f"Freedman-Lane max-statistic: KS p {ks.pvalue:.3f}; family-wise error {rejected}/{groups} "
          f"(95% CI {low:.3f}-{high:.3f}); seed 77")
    assert ks.pvalue > 0.01
    assert low <= 0.05


@pytest.mark.slow
def test_a_diagnostic_region_is_still_found_in_the_per_image_guided_design():
    densities, per_face = design()
    eyes = np.zeros(SHAPE, bool)
    eyes[9:16, 6:26] = True
    rng = np.random.default_rng(9)
    bts = [simulate_guided_observer(rng, densities, np.linspace(0.6, 0.9, FACES), n_trials=600, n_range=(5, 20),
                                    sigma_px=SIGMA, region=eyes, gain=0.5) for _ in range(6)]
    z = group_z([compute_ci(bt, centre_density=per_face).z for bt in bts])
    auc = region_auc(z, eyes, region=REGION)
    significant = pixel_test(z, fwhm_from_sigma(SIGMA), region=REGION).significant
    print(f"diagnostic eyes in the per-image guided design: AUC {auc:.3f}, "
          f"{int((significant & eyes).sum())} of {int(eyes.sum())} eye pixels significant")
    assert auc >= 0.9 and (significant & eyes).any()


@pytest.mark.slow
def test_guided_null_at_the_issues_size_through_the_benchmark():
    """benchmarks/guided_null.py at full size: ORL relevance through the real reader, faces at
    accuracies .6-.9, 400 null groups for the RFT tests, 200 for the Freedman-Lane test, and a
    real eye region still found."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "guided_null.py"
    spec = importlib.util.spec_from_file_location("guided_null_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = bench.parse_args(["--seed", "7"])
    assert args.groups >= 400 and args.permutation_groups >= 200
    densities, per_face, aperture, _ = bench.design(args)
    rng = np.random.default_rng(args.seed)
    hits = bench.rft_study(rng, densities, per_face, aperture, args)
    for test in ("pixel", "cluster"):
        low, high = clopper_pearson(hits[f"{test} new"], args.groups)
        assert low <= 0.05 < clopper_pearson(hits[f"{test} old"], args.groups)[0], (test, hits)
    permuted, p_values = bench.permutation_study(rng, densities, per_face, aperture, args)
    for test in ("pixel", "cluster"):
        assert clopper_pearson(permuted[f"{test} new"], args.permutation_groups)[0] <= 0.05, (test, permuted)
    assert stats.kstest(p_values, "uniform").pvalue > 0.001
    aucs, _ = bench.power_study(rng, densities, per_face, aperture, args)
    assert np.median(aucs) >= 0.9, aucs
