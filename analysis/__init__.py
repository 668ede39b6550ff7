"""Analyses of Bubbles trial files and relevance maps (imports neither torch nor psychopy).

* :mod:`analysis.classification`: classification images through the linearity of the
  apertures, analytic and permutation Z-scores, group CIs;
* :mod:`analysis.stat4ci`: the Stat4Ci pixel and cluster tests, with :mod:`analysis.rft` (random
  field theory: p-values and thresholds) and :mod:`analysis.search_region` (intrinsic volumes);
* :mod:`analysis.permutation`: the max-statistic permutation alternative;
* :mod:`analysis.metrics`: comparisons between two maps on the stimulus grid;
* :mod:`analysis.ci_pipeline`: the CI pipeline (maps, tables, figures) behind ``python -m analysis ci``
  (:mod:`analysis.ci`);
* :mod:`analysis.readers`: every file the statistics read (trial files, relevance maps, masking
  tables, similarity judgements); the statistics modules take arrays and DataFrames;
* :mod:`analysis.model_stats`: relevance maps across variants (seeds, tasks, pretraining),
  reliability, masking transfer; :mod:`analysis.alignment`: human-model alignment, noise
  ceiling, condition effects; :mod:`analysis.reliability`, :mod:`analysis.repeated`;
* :mod:`analysis.quality`: timing and quality control per participant (dropped frames, frame
  intervals, RTs, accuracy over trials, the staircase) and exclusions by the config's ``qc:`` rules;
* :mod:`analysis.report`: ``python -m analysis run CONFIG`` (report.html and its sections).

Examples
--------
>>> from analysis import pixel_test_threshold, fwhm_from_sigma
>>> round(pixel_test_threshold((256, 256), fwhm_from_sigma(10.0)), 2)
3.86
"""

from .classification import (
    BubbleTrials,
    ClassificationImage,
    classification_image,
    compute_ci,
    group_z,
    parse_bubble_trials,
)
from .metrics import compare_maps, region_auc
from .permutation import max_statistic_test
from .rft import fwhm_from_sigma, pixel_test_threshold
from .search_region import intrinsic_volumes
from .stat4ci import cluster_test, pixel_test

__all__ = [
    "BubbleTrials",
    "ClassificationImage",
    "classification_image",
    "cluster_test",
    "compare_maps",
    "compute_ci",
    "fwhm_from_sigma",
    "group_z",
    "intrinsic_volumes",
    "max_statistic_test",
    "parse_bubble_trials",
    "pixel_test",
    "pixel_test_threshold",
    "region_auc",
]
