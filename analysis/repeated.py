"""One within-subject factor, tested the pingouin way: rm_anova plus paired tests with FDR.

Used wherever the platform compares levels measured on the same units (images across
variant relations, participants across conditions).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> data = pd.DataFrame({"unit": np.repeat(np.arange(12), 3), "level": np.tile(["a", "b", "c"], 12),
...                      "y": np.tile([0.0, 0.5, 2.0], 12) + rng.normal(scale=0.3, size=36)})
>>> anova, pairwise = repeated_measures(data, "y", "level", "unit")
>>> bool(anova["p_unc"].iloc[0] < 0.001), pairwise[["A", "B"]].values.tolist()
(True, [['a', 'b'], ['a', 'c'], ['b', 'c']])
>>> bool((pairwise["p_corr"] >= pairwise["p_unc"]).all())
True
"""

from __future__ import annotations

import pandas as pd

__all__ = ["repeated_measures"]


def repeated_measures(data: pd.DataFrame, dv: str, within: str, subject: str, *,
                      padjust: str = "fdr_bh") -> tuple[pd.DataFrame, pd.DataFrame]:
    """pingouin's ``rm_anova`` (detailed, with ``ng2``) and ``pairwise_tests`` (paired t-tests,
    ``p_unc``, ``p_corr`` corrected by ``padjust``, Cohen's ``cohen`` d) of ``dv`` across the
    levels of ``within`` measured on every ``subject``.

    The pairwise table always has ``p_corr`` and ``p_adjust`` (pingouin leaves them out when
    there is a single contrast, which needs no correction), and ``mean_A`` / ``mean_B``: the
    level means of ``dv``.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table, one row per subject and level.
    dv : str
        The dependent variable's column.
    within : str
        The factor's column.
    subject : str
        The subjects' column.
    padjust : str
        pingouin's p-value correction.

    Returns
    -------
    anova : pandas.DataFrame
        The repeated-measures ANOVA.
    pairwise : pandas.DataFrame
        The paired tests.
    """
    import pingouin as pg  # lazy: importing pingouin takes about 2 s; few paths need it

    anova = pg.rm_anova(data, dv=dv, within=within, subject=subject, detailed=True)
    pairwise = pg.pairwise_tests(data, dv=dv, within=within, subject=subject, padjust=padjust, effsize="cohen")
    if "p_corr" not in pairwise.columns:
        pairwise["p_corr"] = pairwise["p_unc"]
        pairwise["p_adjust"] = padjust
    means = data.groupby(within, observed=True)[dv].mean()
    pairwise["mean_A"] = pairwise["A"].map(means)
    pairwise["mean_B"] = pairwise["B"].map(means)
    return anova, pairwise
