"""The CI pipeline: per-participant and group CIs with Stat4Ci tests, from trial files.

What ``python -m analysis ci`` (:mod:`analysis.ci`) and the report run. Reads (through
:mod:`analysis.readers`) every ``sub-*/ses-*/beh/*_task-<task>_beh.tsv`` under the data root (main-phase
trials only; a participant's sessions are pooled), builds each participant's CI per
condition, the group CI ``sum Z / sqrt(n)``, and tests it with the pixel and cluster tests
(and, if asked, the max-statistic permutation test). Writes into the output folder::

    maps/ci_group_<task>_<condition>.npz   z, pixel_sig, cluster_sig, pixel_threshold, ...
                                           participant_z / participant_ci (P, H, W), ...
    tables/ci_summary.csv                  one row per condition
    tables/ci_participants.csv             one row per participant and condition
    tables/ci_clusters.csv                 every cluster above the forming threshold
    tables/ci_exclusions.csv               what was left out, and why
    figures/ci_group_<task>_<condition>.png, figures/ci_participants_<task>_<condition>.png

The analytic null of a condition uses each trial's own centre density: one density pooled
over all participants' centres for random conditions, and for guided ones the density each
session drew from, rebuilt from its sidecar and relevance file
(:class:`~analysis.readers.guided_densities.GuidedDensities`; per face with ``maps: per_image``).
A guided condition whose density cannot be rebuilt (relevance file missing or changed,
sidecar without the fields) is refused for that session, one line saying why.

A bad file (missing columns, unparseable centres, ...) or a participant with too few
trials or a missing condition is reported (one line each, and in ``ci_exclusions.csv``)
and left out; the rest is still produced. So is a session whose sidecar records another
stimulus set than ``--stimuli``: another name or grid, or another content hash (the set was
re-prepared or altered since the session ran). A session whose sidecar records the set
without a content hash (an older session) is kept, with a warning line; one whose sidecar
records no stimulus set at all (not written by ``python -m experiments``) is not checked.
:func:`run_ci` does the work into a given folder, so the report (``python -m analysis run``)
can reuse it.

Examples
--------
>>> config = CIConfig(data_root="results/simulated", task="gender", stimuli="orl64")  # doctest: +SKIP
>>> outputs = run_ci(config, Path("results/analysis/demo"))                          # doctest: +SKIP
>>> outputs.summary[["condition", "pixel_threshold", "n_pixel_sig"]]                 # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from stimuli.contracts.config import require
from stimuli.contracts.errors import InputError
from stimuli.contracts.names import check_name
from stimuli.contracts.prepared import PreparedSet, load_prepared_set
from stimuli.contracts.provenance import atomic_save_npz, atomic_write_text
from stimuli.regions import region_mask

from .classification import BubbleTrials, ClassificationImage, compute_ci, group_z
from .permutation import max_statistic_test
from .readers.guided_densities import GuidedDensities
from .readers.trials import area_summary, load_participants, session_files
from .report.plots import plot_ci, plot_ci_grid
from .revealed import DEFAULT_BURN_IN
from .search_region import intrinsic_volumes
from .stat4ci import CLUSTER_COLUMNS, cluster_test, pixel_test

__all__ = ["CIConfig", "CIOutputs", "run_ci", "group_map_path", "search_region", "SEARCH_REGIONS"]

SEARCH_REGIONS = ("auto", "all", "face")


@dataclass
class CIConfig:
    """Settings of the ``ci`` analysis (the ``ci:`` section of an analysis config).

    Parameters
    ----------
    data_root : str
        The BIDS data root of the trial files.
    task : str
        Task label of the trial files.
    stimuli : str
        The prepared set the trials were shown on.
    results : str
        The results root holding the prepared set and relevance files.
    alpha, sigma_smooth, cluster_threshold : float
        Family-wise error rate, extra smoothing sigma (px) and cluster-forming Z threshold.
    z : str
        ``analytic`` or ``permutation`` Z of each CI.
    z_permutations, permutations, seed : int
        Permutations of a permutation Z, of the max-statistic test (0: none), and their seed.
    min_trials : int
        Fewest main trials a participant needs in a condition.
    require_all_conditions : bool
        Exclude a participant from every condition when excluded from one.
    conditions : list of str, optional
        Conditions analysed (default: all found).
    search_region : str
        The pixels tested (:func:`search_region`).
    trial_files : list of str, optional
        Only these trial files.
    burn_in_trials : int
        Trials of each staircase left out of the area summaries.
    """

    data_root: str
    task: str
    stimuli: str
    results: str = "results"
    alpha: float = 0.05
    sigma_smooth: float = 0.0
    cluster_threshold: float = 2.7
    z: Literal["analytic", "permutation"] = "analytic"
    z_permutations: int = 1000
    permutations: int = 0
    seed: int = 0
    min_trials: int = 100
    require_all_conditions: bool = False
    conditions: list[str] | None = None
    search_region: str = "auto"
    trial_files: list[str] | None = None  # only these trial files (None: every file of the task)
    burn_in_trials: int = DEFAULT_BURN_IN  # first trials of each staircase left out of the area summaries

    def __post_init__(self) -> None:
        require(0 < self.alpha < 1, "alpha", "must lie between 0 and 1")
        require(math.isfinite(self.sigma_smooth) and self.sigma_smooth >= 0, "sigma_smooth",
                "must be zero or a positive number of pixels")
        require(math.isfinite(self.cluster_threshold) and self.cluster_threshold > 0, "cluster_threshold",
                "must be a positive Z value (e.g. 2.7)")
        require(self.z_permutations >= 2, "z_permutations", "must be at least 2")
        require(self.permutations >= 0, "permutations", "must be 0 (none) or a positive count")
        require(self.min_trials >= 2, "min_trials", "must be at least 2")
        require(self.conditions is None or len(self.conditions) > 0, "conditions",
                "must list at least one condition (or be left out for all)")
        require(bool(re.fullmatch(r"[A-Za-z0-9]+", self.task)), "task", "must be letters and digits (BIDS label)")
        require(self.trial_files is None or len(self.trial_files) > 0, "trial_files",
                "must list at least one trial file (or be left out for all)")
        require(self.burn_in_trials >= 0, "burn_in_trials", "must be 0 or more trials")


@dataclass
class CIOutputs:
    """What :func:`run_ci` produced (tables as DataFrames, files as paths).

    Parameters
    ----------
    summary, participants, clusters, exclusions : pandas.DataFrame
        The four tables of ``tables/ci_*.csv``.
    maps : dict of str to Path
        condition -> its group map file.
    figures : list of Path
        The figures written.
    inputs : list of Path
        The trial files read.
    """

    summary: pd.DataFrame
    participants: pd.DataFrame
    clusters: pd.DataFrame
    exclusions: pd.DataFrame
    maps: dict[str, Path] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [r.reason if r.reason.startswith(r.where) else f"{r.where}: {r.reason}"
                for r in self.exclusions.itertuples()]


def group_map_path(folder: str | Path, task: str, condition: str) -> Path:
    """``maps/ci_group_<task>_<condition>.npz`` inside an analysis folder.

    Parameters
    ----------
    folder : path
        The analysis folder.
    task, condition : str
        Task and condition labels.

    Returns
    -------
    Path
        The group map's path.

    Examples
    --------
    >>> group_map_path("out", "gender", "random").as_posix()
    'out/maps/ci_group_gender_random.npz'
    """
    return Path(folder) / "maps" / f"ci_group_{task}_{check_name(condition, 'condition')}.npz"


def search_region(spec: str, stim: PreparedSet) -> np.ndarray:
    """The pixels a CI is tested on: ``auto``, ``all``, ``face``, a named region or a box.

    Parameters
    ----------
    spec : str
        ``auto`` (the set's face aperture if it has one, else all), ``all``, ``face``, a named
        region (eyes, mouth, ...) or ``box:top,bottom,left,right``.
    stim : PreparedSet
        The prepared set (its grid and face aperture).

    Returns
    -------
    numpy.ndarray
        Boolean (H, W) search region.
    """
    if spec == "all":
        return np.ones(stim.shape, dtype=bool)
    if spec in ("auto", "face"):
        if stim.aperture is not None:
            return stim.aperture
        if spec == "face":
            raise InputError(f"prepared set '{stim.name}' has no face aperture; use --search-region all")
        return np.ones(stim.shape, dtype=bool)
    return region_mask(spec, stim.shape)


def _exclusion_reason(bt: BubbleTrials | None, min_trials: int) -> str | None:
    if bt is None:
        return "no main trials in this condition"
    if bt.n_trials < min_trials:
        return f"{bt.n_trials} trials, fewer than the minimum {min_trials}"
    if np.ptp(bt.correct) == 0:
        return f"accuracy does not vary (all {bt.n_trials} trials {'correct' if bt.correct[0] else 'incorrect'})"
    return None


def run_ci(config: CIConfig, out: str | Path, *, progress: bool | None = None,
           warn: Callable[[str], None] | None = None) -> CIOutputs:
    """Compute every CI and test of ``config`` and write them into the folder ``out``.

    Problems (bad files, excluded participants, empty conditions) are passed to ``warn``
    (default: one ``warning: ...`` line on stderr each) and listed in ``ci_exclusions.csv``.
    Raises :class:`~stimuli.InputError` only when nothing at all can be computed.

    Parameters
    ----------
    config : CIConfig
        What to compute.
    out : path
        The folder written into (maps/, tables/, figures/).
    progress : bool, optional
        Show a progress bar (default: when on a terminal).
    warn : callable, optional
        Called with one line per problem.

    Returns
    -------
    CIOutputs
        The tables and the files written.
    """
    out = Path(out)
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    stim = load_prepared_set(config.stimuli, config.results)
    shape = stim.shape
    region = search_region(config.search_region, stim)
    excluded: list[dict[str, str]] = []

    def report(participant: str, condition: str, where: str, reason: str) -> None:
        excluded.append({"participant": participant, "condition": condition, "where": where, "reason": reason})
        warn(reason if reason.startswith(where) else f"{where}: {reason}")

    densities = GuidedDensities(stim, config.results)
    people, inputs = load_participants(config.data_root, config.task, shape, report, densities, stim,
                                       config.trial_files)
    found = sorted({c for p in people.values() for c in p.trials})
    conditions = list(config.conditions) if config.conditions else found
    for condition in conditions:
        if condition not in found:
            report("", condition, f"condition {condition}", "no trials in any usable file")

    # exclusion rule: too few trials or a missing condition; optionally all-or-nothing
    included: dict[str, list[str]] = {c: [] for c in conditions}
    reasons: dict[tuple[str, str], str] = {}
    for participant in sorted(people):
        for condition in conditions:
            reason = _exclusion_reason(people[participant].trials.get(condition), config.min_trials)
            if reason:
                reasons[participant, condition] = reason
        bad = [c for c in conditions if (participant, c) in reasons]
        for condition in conditions:
            if (participant, condition) in reasons:
                report(participant, condition, f"sub-{participant} condition {condition}",
                       f"{reasons[participant, condition]}; excluded")
            elif bad and config.require_all_conditions:
                reasons[participant, condition] = f"excluded from all conditions ({bad[0]}: {reasons[participant, bad[0]]})"
                report(participant, condition, f"sub-{participant} condition {condition}", reasons[participant, condition])
            else:
                included[condition].append(participant)

    summary_rows, participant_rows, cluster_rows = [], [], []
    outputs = CIOutputs(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), inputs=inputs)
    volumes = intrinsic_volumes(region)
    background = stim.mean_face()
    work = [(c, p) for c in conditions for p in included[c]]
    bar = tqdm(total=len(work) + (config.permutations * sum(1 for c in conditions if included[c])),
               desc="classification images", unit="step",
               disable=None if progress is None else not progress)
    for condition in conditions:
        members = included[condition]
        if not members:
            if condition in found:
                report("", condition, f"condition {condition}", "no participant left after exclusions; no group CI")
            continue
        try:  # one pooled density, or each trial's own (guided conditions, rebuilt from their files)
            trials, density = densities.for_condition([people[p].trials[condition] for p in members])
        except InputError as error:
            report("", condition, f"condition {condition}", f"{error}; no group CI")
            continue
        cis: list[ClassificationImage] = []
        for bt in trials:
            cis.append(compute_ci(bt, smooth_px=config.sigma_smooth, z=config.z, centre_density=density,
                                  n_permutations=config.z_permutations, seed=config.seed))
            bar.update(1)
        z = group_z([ci.z for ci in cis])
        fwhm = math.sqrt(float(np.mean([ci.kernel_sigma_px**2 for ci in cis]))) * math.sqrt(8 * math.log(2))
        pix = pixel_test(z, fwhm, config.alpha, region=region)
        clu = cluster_test(z, fwhm, config.cluster_threshold, config.alpha, region=region)
        perm = None
        if config.permutations:
            perm = max_statistic_test(trials, cis, region=region, smooth_px=config.sigma_smooth,
                                      cluster_threshold=config.cluster_threshold, alpha=config.alpha,
                                      n_permutations=config.permutations, seed=config.seed, progress=bar.update)
        peak = np.unravel_index(np.argmax(np.where(region, z, -np.inf)), z.shape)
        group_clusters = clu.table.assign(task=config.task, condition=condition, level="group")
        group_clusters["p_perm"] = perm.cluster_pvalues(clu.table["size_px"]) if perm else np.nan
        cluster_rows.append(group_clusters)
        for participant, bt, ci in zip(members, trials, cis):
            p_pix = pixel_test(ci.z, ci.fwhm_px, config.alpha, region=region)
            p_clu = cluster_test(ci.z, ci.fwhm_px, config.cluster_threshold, config.alpha, region=region)
            cluster_rows.append(p_clu.table.assign(task=config.task, condition=condition, level=participant,
                                                   p_perm=np.nan))
            participant_rows.append({
                "task": config.task, "condition": condition, "participant": participant,
                "sessions": " ".join(people[participant].sessions), "n_trials": bt.n_trials,
                "accuracy": bt.accuracy, "mean_n_bubbles": float(bt.n_bubbles.mean()),
                "sigma_px": float(np.sqrt(np.mean(bt.sigma_px**2))), "fwhm_px": ci.fwhm_px, "included": True,
                "reason": "", "max_z": float(ci.z[region].max()), "pixel_threshold": p_pix.threshold,
                "n_pixel_sig": int(p_pix.significant.sum()), "n_clusters_sig": int(p_clu.table["significant"].sum()),
                **area_summary(session_files(inputs, participant, people[participant].sessions), condition, shape,
                               stim.aperture, config.burn_in_trials),  # revealed area after the staircase burn-in
            })
        path = group_map_path(out, config.task, condition)
        arrays = {
            "z": z.astype(np.float32), "pixel_sig": pix.significant, "cluster_sig": clu.significant,
            "pixel_threshold": np.float64(pix.threshold), "cluster_threshold": np.float64(clu.cluster_threshold),
            "cluster_size_threshold": np.float64(clu.size_threshold), "cluster_labels": clu.labels.astype(np.int32),
            "cluster_size": clu.table["size_px"].to_numpy(np.int64), "cluster_p": clu.table["p"].to_numpy(),
            "alpha": np.float64(config.alpha), "fwhm_px": np.float64(fwhm), "search_region": region,
            "participants": np.asarray(members, dtype=str),
            "participant_z": np.stack([ci.z for ci in cis]).astype(np.float32),
            "participant_ci": np.stack([ci.ci for ci in cis]).astype(np.float32),
            "n_trials": np.asarray([ci.n_trials for ci in cis], dtype=np.int64),
            "accuracy": np.asarray([ci.accuracy for ci in cis]),
            "z_method": np.asarray(config.z), "task": np.asarray(config.task), "condition": np.asarray(condition),
        }
        if perm:
            arrays.update(perm_pixel_threshold=np.float64(perm.pixel_threshold),
                          perm_cluster_size_threshold=np.float64(perm.cluster_size_threshold),
                          perm_sig=(z > perm.pixel_threshold) & region, perm_max_z=perm.max_z,
                          perm_max_cluster_px=perm.max_cluster_px, n_permutations=np.int64(perm.n_permutations))
        atomic_save_npz(path, **arrays)
        outputs.maps[condition] = path
        summary_rows.append({
            "task": config.task, "condition": condition, "n_participants": len(members),
            "n_trials": int(sum(ci.n_trials for ci in cis)), "accuracy": float(np.mean([ci.accuracy for ci in cis])),
            "sigma_px": float(np.sqrt(np.mean([np.mean(bt.sigma_px**2) for bt in trials]))),
            "sigma_smooth": config.sigma_smooth, "fwhm_px": fwhm, "search_pixels": volumes.n_pixels,
            "euler": volumes.volumes[0], "half_perimeter": volumes.volumes[1], "area": volumes.volumes[2],
            "z_method": config.z, "n_centre_densities": 1 if not isinstance(density, dict) else len(density),
            "alpha": config.alpha, "pixel_threshold": pix.threshold,
            "n_pixel_sig": int(pix.significant.sum()), "max_z": float(z[peak]), "peak_row": int(peak[0]),
            "peak_col": int(peak[1]), "cluster_threshold": config.cluster_threshold,
            "cluster_size_threshold": clu.size_threshold, "n_clusters": len(clu.table),
            "n_clusters_sig": int(clu.table["significant"].sum()),
            "n_permutations": config.permutations,
            "perm_pixel_threshold": perm.pixel_threshold if perm else np.nan,
            "perm_cluster_size_threshold": perm.cluster_size_threshold if perm else np.nan,
            "n_perm_pixel_sig": int(((z > perm.pixel_threshold) & region).sum()) if perm else np.nan,
        })
        title = (f"{config.task}, {condition}: n={len(members)}, pixel Z>{pix.threshold:.2f} (yellow), "
                 f"clusters Z>{config.cluster_threshold:g} & k>={clu.size_threshold:.0f} px (cyan)")
        name = f"{config.task}_{check_name(condition, 'condition')}"
        outputs.figures.append(plot_ci(z, background, pix.significant, clu.significant, title,
                                       out / "figures" / f"ci_group_{name}.png", region=region))
        outputs.figures.append(plot_ci_grid(
            [ci.z for ci in cis], [f"sub-{p}" for p in members], background,
            [(ci.z > pix.threshold) & region for ci in cis], out / "figures" / f"ci_participants_{name}.png",
            suptitle=f"{config.task}, {condition}: participants' CIs (outline: group pixel threshold)"))
    bar.close()
    if not summary_rows:
        first = excluded[0] if excluded else {"where": str(config.data_root), "reason": "nothing usable"}
        said = first["reason"] if first["reason"].startswith(first["where"]) else f"{first['where']}: {first['reason']}"
        raise InputError(f"no classification image could be computed: {said}"
                         + (f" (and {len(excluded) - 1} more problem(s))" if len(excluded) > 1 else ""))
    for (participant, condition), reason in sorted(reasons.items()):
        bt = people[participant].trials.get(condition)
        participant_rows.append({
            "task": config.task, "condition": condition, "participant": participant,
            "sessions": " ".join(people[participant].sessions), "n_trials": bt.n_trials if bt else 0,
            "accuracy": bt.accuracy if bt else np.nan, "included": False, "reason": reason,
        })
    outputs.summary = pd.DataFrame(summary_rows)
    outputs.participants = pd.DataFrame(participant_rows).sort_values(["condition", "participant"], kind="stable")
    clusters = pd.concat(cluster_rows, ignore_index=True) if cluster_rows else pd.DataFrame()
    front = ["task", "condition", "level"]
    outputs.clusters = clusters[front + list(CLUSTER_COLUMNS) + ["p_perm"]] if len(clusters) else pd.DataFrame(
        columns=front + list(CLUSTER_COLUMNS) + ["p_perm"])
    outputs.exclusions = pd.DataFrame(excluded, columns=["participant", "condition", "where", "reason"])
    for name, table in (("ci_summary", outputs.summary), ("ci_participants", outputs.participants),
                        ("ci_clusters", outputs.clusters), ("ci_exclusions", outputs.exclusions)):
        atomic_write_text(out / "tables" / f"{name}.csv", table.to_csv(index=False))
    return outputs


