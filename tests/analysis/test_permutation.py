"""The max-statistic permutation test: exchangeable quantiles, agreement with RFT, recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ci_simulation import simulate_trials

from analysis.classification import centre_histogram, compute_ci, group_z, parse_bubble_trials
from analysis.permutation import max_statistic_test, permutation_quantile
from analysis.rft import pixel_test_threshold
from analysis.stat4ci import cluster_test
from stimuli.contracts.errors import InputError


def test_permutation_quantile_is_conservative():
    null = np.arange(1, 100)  # 99 values
    assert permutation_quantile(null, 0.05) == 95.0  # ceil(0.95 * 100) = 95th smallest
    assert permutation_quantile(null, 0.5) == 50.0
    assert permutation_quantile([1.0, 2.0], 0.05) == 2.0


@pytest.mark.slow
def test_max_statistic_agrees_with_rft_and_finds_the_region():
    shape = (32, 32)
    tables = [pd.DataFrame(simulate_trials(shape, "eyes", n_trials=400, sigma_px=2.5, n_bubbles=(5, 10),
                                           seed=40 + i)) for i in range(3)]
    bts = [parse_bubble_trials(t, shape) for t in tables]
    density = centre_histogram(np.concatenate([bt.centres for bt in bts]), shape)
    cis = [compute_ci(bt, centre_density=density) for bt in bts]
    z = group_z([ci.z for ci in cis])
    result = max_statistic_test(bts, cis, region=shape, n_permutations=200, seed=3)
    rft = pixel_test_threshold(shape, cis[0].fwhm_px)
    assert result.max_z.shape == (200,) and result.n_permutations == 200
    assert abs(result.pixel_threshold - rft) < 0.6  # two routes to the same family-wise threshold
    assert z.max() > result.pixel_threshold  # the signal survives
    p = result.pixel_pvalues(z)
    assert p.min() == pytest.approx(1 / 201) and p.max() <= 1.0
    clusters = cluster_test(z, cis[0].fwhm_px)
    assert (result.cluster_pvalues(clusters.table.size_px) <= 0.05).any()
    again = max_statistic_test(bts, cis, region=shape, n_permutations=200, seed=3)
    np.testing.assert_array_equal(result.max_z, again.max_z)
    with pytest.raises(InputError, match="one CI per participant"):
        max_statistic_test(bts, cis[:1], region=shape)
