"""Every file the analysis reads, read here; the statistics modules take what these return.

* :mod:`analysis.readers.trials`: Bubbles trial files, sidecars and events files (CIs,
  revealed area, quality control);
* :mod:`analysis.readers.similarity`: similarity trial files and per-participant RDMs;
* :mod:`analysis.readers.relevance`: relevance maps of variants and their baselines;
* :mod:`analysis.readers.masking`: the masking tables of ``python -m model evaluate``;
* :mod:`analysis.readers.guided_densities`: the centre densities guided sessions drew from,
  rebuilt from their sidecars and relevance files.

Examples
--------
>>> from analysis.readers import discover_variants
>>> discover_variants("orl64", "no-such-results")
[]
"""

from .guided_densities import GuidedDensities
from .masking import read_masking
from .relevance import discover_variants, load_baseline_maps, load_variant_maps
from .similarity import load_human_rdms, read_similarity_trials
from .trials import (
    QualityData,
    area_summary,
    assess_quality,
    input_files,
    load_participants,
    load_quality,
    session_files,
)

__all__ = [
    "GuidedDensities",
    "QualityData",
    "area_summary",
    "assess_quality",
    "discover_variants",
    "input_files",
    "load_baseline_maps",
    "load_human_rdms",
    "load_participants",
    "load_quality",
    "load_variant_maps",
    "read_masking",
    "read_similarity_trials",
    "session_files",
]
