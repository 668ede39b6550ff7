"""Error-rate helpers: the exact Clopper-Pearson interval."""

import pytest


def test_clopper_pearson_is_the_beta_quantile_interval():
    """The exact interval from its definition (beta quantiles), edges included."""
    from scipy.stats import beta

    from analysis.error_rates import clopper_pearson

    for k, n in ((9, 200), (0, 20), (20, 20), (51, 1000)):
        low, high = clopper_pearson(k, n)
        assert low == pytest.approx(beta.ppf(0.025, k, n - k + 1) if k else 0.0, abs=1e-9)
        assert high == pytest.approx(beta.ppf(0.975, k + 1, n - k) if k < n else 1.0, abs=1e-9)
