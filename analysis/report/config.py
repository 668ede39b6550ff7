"""The config of ``python -m analysis run CONFIG.yaml`` (YAML validated on load), one dataclass
per section: ``data``, ``ci``, ``exclusion``, ``qc``, ``models``, ``alignment``, ``findings``,
``rsa``; unknown keys and impossible values are refused naming the file and key.

Examples
--------
>>> from stimuli.contracts.config import from_dict
>>> config = from_dict(ReportConfig, {"stimuli": "orl64", "qc": {"max_dropped_frame_share": 0.02}}, "a.yaml")
>>> config.qc.max_dropped_frame_share, config.qc.accuracy_above_chance, config.embed
(0.02, True, False)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from stimuli.contracts.config import require

from ..ci_pipeline import CIConfig
from ..quality import QCRules

__all__ = ["DataRoots", "CISettings", "Exclusion", "ModelSettings", "AlignmentSettings", "FindingSettings",
           "RSASettings", "ReportConfig"]


# ----------------------------------------------------------------------------- config
@dataclass
class DataRoots:
    """Where trial files are: people, and simulated / model observers (told apart by the sidecar).

    Parameters
    ----------
    people : str or None
        The people's BIDS data root (None: no people).
    simulated : str or None
        The simulated observers' data root (None: none).
    """

    people: str | None = "participants"
    simulated: str | None = "results/simulated"


@dataclass
class CISettings:
    """How classification images are computed and tested (see ``python -m analysis ci --help``).

    Parameters
    ----------
    sigma_smooth : float
        Extra Gaussian smoothing in pixels.
    cluster_threshold : float
        The cluster test's forming Z threshold.
    z : {"analytic", "permutation"}
        How each CI is Z-scored.
    z_permutations : int
        Permutations for ``z: permutation``.
    permutations : int
        Max-statistic permutation test (0: RFT tests only).
    search_region : str
        The pixels tested (``auto``, ``all``, ``face``, a region, ``box:...``).
    conditions : list of str, optional
        The conditions to analyse (None: all found).
    """

    sigma_smooth: float = 0.0
    cluster_threshold: float = 2.7
    z: Literal["analytic", "permutation"] = "analytic"
    z_permutations: int = 1000
    permutations: int = 0
    search_region: str = "auto"
    conditions: list[str] | None = None

    def __post_init__(self) -> None:
        require(math.isfinite(self.sigma_smooth) and self.sigma_smooth >= 0, "sigma_smooth",
                "must be zero or a positive number of pixels")
        require(self.cluster_threshold > 0, "cluster_threshold", "must be a positive Z value (e.g. 2.7)")
        require(self.z_permutations >= 2, "z_permutations", "must be at least 2")
        require(self.permutations >= 0, "permutations", "must be 0 (none) or a positive count")


@dataclass
class Exclusion:
    """Who is left out of the CIs.

    A participant with fewer than ``min_trials`` main trials in a condition (or none) is left
    out of that condition.

    Parameters
    ----------
    min_trials : int
        Fewest main trials in a condition (at least 2).
    require_all_conditions : bool
        Excluded from one condition: excluded from all.
    """

    min_trials: int = 100
    require_all_conditions: bool = False

    def __post_init__(self) -> None:
        require(self.min_trials >= 2, "min_trials", "must be at least 2")


@dataclass
class ModelSettings:
    """Which relevance maps and masking results the model sections read.

    Parameters
    ----------
    variants : list of str, optional
        The variants (None: every variant with relevance maps of the set).
    relevance_map : {"mean", "positive", "absolute"}
        How a variant's per-image maps become its set-level map.
    evaluate : str, optional
        The output folder of ``python -m model evaluate``.
    split_half_splits : int
        Random halves for the maps' reliability.
    top_percent : float
        The share of pixels of the Dice overlap of the top pixels.
    """

    variants: list[str] | None = None  # None: every variant with relevance maps of the set
    relevance_map: Literal["mean", "positive", "absolute"] = "positive"
    evaluate: str | None = None  # output folder of `python -m model evaluate`
    split_half_splits: int = 50
    top_percent: float = 10.0

    def __post_init__(self) -> None:
        require(self.variants is None or len(self.variants) > 0, "variants",
                "must list at least one variant (or be left out for all)")
        require(self.split_half_splits >= 1, "split_half_splits", "must be at least 1")
        require(0 < self.top_percent <= 100, "top_percent", "must lie in (0, 100]")


@dataclass
class AlignmentSettings:
    """Human-model alignment: whose CIs stand for people, in which condition, and the nulls.

    Parameters
    ----------
    reference : str
        ``people`` or an observer kind or group key of the simulated root (``template``).
    condition : str
        The condition whose group CI is compared.
    metric : {"spearman", "pearson"}
        The correlation.
    null_draws : int
        Circular shifts of the shift null.
    noise_splits : int
        Random halves of the participants for the noise ceiling.
    """

    reference: str = "people"  # people, or an observer kind of the simulated root (template)
    condition: str = "random"
    metric: Literal["spearman", "pearson"] = "spearman"
    null_draws: int = 200
    noise_splits: int = 100

    def __post_init__(self) -> None:
        for key in ("null_draws", "noise_splits"):
            require(getattr(self, key) >= 1, key, "must be at least 1")


@dataclass
class FindingSettings:
    """When the report calls relevance maps 'stable' (mean similarity at least this).

    Parameters
    ----------
    stable_r : float
        The least mean similarity of a 'stable' verdict.
    """

    stable_r: float = 0.5

    def __post_init__(self) -> None:
        require(-1 < self.stable_r < 1, "stable_r", "must lie between -1 and 1")


@dataclass
class RSASettings:
    """Similarity judgements (``paradigm: similarity`` trial files) against model RDMs (``python -m model rdm``).

    Parameters
    ----------
    task : str
        The BIDS task label of the similarity trial files.
    stimuli : str, optional
        The set of the judged faces and the model RDMs (None: the report's).
    rdm : {"probability", "embedding"}
        How triplets become a participant's RDM.
    dims : int
        Dimensions of the embedding fitted to the triplets.
    variants, model_rdms : list of str, optional
        Which variants and which of their RDMs (None: all).
    method : {"spearman", "kendall_a", "pearson"}
        The RDM comparison.
    permutations, bootstraps : int
        Permutations of the stimulus labels and bootstrap draws (0: none).
    bootstrap_over : {"stimuli", "subjects", "both"}
        What the bootstrap resamples.
    split_half_splits : int
        Random halves for the RDMs' reliability.
    """

    task: str = "similarity"  # BIDS task label of the similarity trial files
    stimuli: str | None = None  # set of the judged faces and of the model RDMs; null: the report's stimuli
    rdm: Literal["probability", "embedding"] = "embedding"  # human RDM from triplets (ratings: mean rating)
    dims: int = 5  # dimensions of the embedding fitted to the triplets
    variants: list[str] | None = None  # null: every variant with RDMs of the set under <results>/rdm/
    model_rdms: list[str] | None = None  # which of a variant's RDMs (penultimate, relevance, ...); null: all
    method: Literal["spearman", "kendall_a", "pearson"] = "spearman"
    permutations: int = 1000  # of the stimulus labels, per model (0: no permutation test)
    bootstraps: int = 1000  # for the CIs and model comparisons (0: none)
    bootstrap_over: Literal["stimuli", "subjects", "both"] = "both"
    split_half_splits: int = 20

    def __post_init__(self) -> None:
        require(bool(re.fullmatch(r"[A-Za-z0-9]+", self.task)), "task",
                "must be letters and digits (the BIDS task label of the similarity trial files)")
        require(self.dims >= 1, "dims", "must be at least 1")
        require(self.variants is None or len(self.variants) > 0, "variants",
                "must list at least one variant (or be left out for all)")
        require(self.model_rdms is None or len(self.model_rdms) > 0, "model_rdms",
                "must list at least one RDM name (or be left out for all)")
        require(self.permutations >= 0, "permutations", "must be 0 (no test) or a positive count")
        require(self.bootstraps >= 0, "bootstraps", "must be 0 (no CIs) or a positive count")
        require(self.split_half_splits >= 1, "split_half_splits", "must be at least 1")


@dataclass
class ReportConfig:
    """``python -m analysis run CONFIG.yaml``: everything the report reads and how, made of the
    settings above (one per part of the report) and the few keys every part shares.

    Parameters
    ----------
    stimuli : str
        The prepared stimulus set.
    tasks : list of str
        The BIDS task labels of the Bubbles trial files.
    title : str
        The page's title.
    name : str, optional
        The folder under ``<results>/analysis/`` (default: the config file's stem).
    results : str
        The results root (prepared sets, relevance maps, RDMs).
    data : DataRoots
        Where the trial files are.
    alpha, seed : float, int
        Every test's level and every random draw's seed.
    ci, exclusion, qc, models, alignment, findings : settings
        The parts of the report (see their classes).
    rsa : RSASettings, optional
        Similarity judgements against model RDMs (None: no such section).
    sections : list of str, optional
        The sections to build (None: every registered one).
    embed : bool
        Inline every figure in ``report.html``.
    """

    stimuli: str
    tasks: list[str] = field(default_factory=lambda: ["gender"])
    title: str = "Face relevance in models and people"
    name: str | None = None  # output folder name under <results>/analysis/ (default: config file stem)
    results: str = "results"
    data: DataRoots = field(default_factory=DataRoots)
    alpha: float = 0.05
    seed: int = 0
    ci: CISettings = field(default_factory=CISettings)
    exclusion: Exclusion = field(default_factory=Exclusion)
    qc: QCRules = field(default_factory=QCRules)  # timing and quality control, exclusions by its rules
    models: ModelSettings = field(default_factory=ModelSettings)
    alignment: AlignmentSettings = field(default_factory=AlignmentSettings)
    findings: FindingSettings = field(default_factory=FindingSettings)
    rsa: RSASettings | None = None  # similarity judgements vs model RDMs; null: no such section
    sections: list[str] | None = None  # None: every registered section
    embed: bool = False  # report.html with every figure inlined (one file to send; --embed on the command line)

    def __post_init__(self) -> None:
        require(0 < self.alpha < 1, "alpha", "must lie between 0 and 1")
        require(len(self.tasks) > 0, "tasks", "must name at least one task")
        for i, task in enumerate(self.tasks):
            require(bool(re.fullmatch(r"[A-Za-z0-9]+", task)), f"tasks[{i}]",
                    "must be letters and digits (the BIDS task label of the trial files)")
        require(self.name is None or bool(re.fullmatch(r"[A-Za-z0-9_.-]+", self.name)), "name",
                "must be a plain folder name (letters, digits, _ . -)")

    def ci_config(self, task: str, data_root: str, trial_files: list[str] | None) -> CIConfig:
        """The :class:`~analysis.ci_command.CIConfig` of one observer group's trial files of ``task``."""
        return CIConfig(data_root=data_root, task=task, stimuli=self.stimuli, results=self.results,
                        alpha=self.alpha, sigma_smooth=self.ci.sigma_smooth,
                        cluster_threshold=self.ci.cluster_threshold, z=self.ci.z,
                        z_permutations=self.ci.z_permutations, permutations=self.ci.permutations,
                        seed=self.seed, min_trials=self.exclusion.min_trials,
                        require_all_conditions=self.exclusion.require_all_conditions,
                        conditions=self.ci.conditions, search_region=self.ci.search_region,
                        trial_files=trial_files)
