"""What a report reads and holds: the observer groups found in the data roots, and the
:class:`ReportContext` that every section reads its inputs through.

The context loads each input once (the stimulus set, the observer groups, their QC and
classification images, the relevance maps), reports problems one line each and caches
failures: a section that asks again gets the same :class:`~stimuli.InputError`. It also
writes the report's tables (``tables/<name>.csv``) and names its figures.

Examples
--------
>>> from stimuli.contracts.config import from_dict
>>> config = from_dict(ReportConfig, {"stimuli": "orl64", "data": {"people": None, "simulated": None}}, "a.yaml")
>>> ctx = ReportContext(config, Path("out"), warn=lambda message: None)
>>> ctx.groups("gender"), ctx.figure_path("ci").as_posix()
([], 'out/figures/ci.png')
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError
from stimuli.contracts.names import safe_name
from stimuli.contracts.prepared import PreparedSet, load_prepared_set
from stimuli.contracts.provenance import atomic_write_text
from stimuli.contracts.relevance import RelevanceMaps, relevance_path
from stimuli.contracts.trials import find_trial_files, read_sidecar, sidecar_path

from ..ci_pipeline import CIOutputs, run_ci, search_region
from ..quality import GroupQuality
from ..readers.relevance import discover_variants, load_variant_maps
from ..readers.trials import assess_quality
from .config import DataRoots, ReportConfig

__all__ = ["ObserverGroup", "GroupCI", "ReportContext", "find_observer_groups", "discover_rdm_variants"]


# ----------------------------------------------------------------------------- observers
@dataclass
class ObserverGroup:
    """Trial files of one kind of observer: people, template observers, or one model variant.

    Parameters
    ----------
    key : str
        File-safe name (``people``, ``template``, ``model-vgg16-imagenet-gender-s0``).
    label : str
        The name on the page.
    kind : str
        ``people``, ``template``, ``model`` or another observer kind.
    data_root : str
        The data root the files are under.
    participants : list of str
        The participants' labels.
    files : list of str
        The group's trial files.
    variant : str, optional
        The model variant of a model observer.
    """

    key: str  # file-safe: people, template, model-vgg16-imagenet-gender-s0
    label: str  # for the page
    kind: str  # people | template | model | another observer kind
    data_root: str
    participants: list[str]
    files: list[str]  # the group's trial files
    variant: str | None = None


def _observer_of(path: Path, warn: Callable[[str], None]) -> tuple[str, str | None]:
    """(kind, argument) of the observer that made a trial file, from its JSON sidecar's
    ``Observer`` (``spec`` ``template:mouth`` -> (template, mouth); ``model:V`` -> (model, V))."""
    try:
        info = read_sidecar(path)
    except InputError as error:
        warn(f"{error}; the observer is unknown")
        return "unknown", None
    if info is None:
        warn(f"{sidecar_path(path)}: no sidecar; the observer is unknown")
        return "unknown", None
    observer = info.get("Observer") or info.get("observer") or {}
    spec = str(observer.get("spec") or observer.get("kind") or "unknown")
    kind, _, argument = spec.partition(":")
    if kind == "model":
        return "model", observer.get("variant") or argument or None
    return kind or "unknown", argument or None


def find_observer_groups(roots: DataRoots, task: str, warn: Callable[[str], None]) -> list[ObserverGroup]:
    """The observer groups with trial files of ``task``: everyone under ``roots.people`` is one
    group; under ``roots.simulated``, sessions are grouped by the observer named in their
    sidecar (``template``, ``template:REGION``, one group per ``model:VARIANT``).

    Parameters
    ----------
    roots : DataRoots
        The people's and the simulated observers' data roots (either may be None).
    task : str
        The BIDS task label of the trial files.
    warn : callable
        Told one line per unreadable sidecar.

    Returns
    -------
    list of ObserverGroup
        People first, then the simulated groups by kind and argument.
    """
    groups: list[ObserverGroup] = []
    if roots.people and Path(roots.people).is_dir():
        files = find_trial_files(roots.people, task)
        if files:
            groups.append(ObserverGroup("people", "people", "people", roots.people,
                                        sorted({tf.participant for tf in files}), [str(tf.path) for tf in files]))
    if roots.simulated and Path(roots.simulated).is_dir():
        members: dict[tuple[str, str | None], list] = {}
        for tf in find_trial_files(roots.simulated, task):
            members.setdefault(_observer_of(tf.path, warn), []).append(tf)
        for (kind, argument), files in sorted(members.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            participants, paths = sorted({tf.participant for tf in files}), [str(tf.path) for tf in files]
            if kind == "model":
                name = argument or "unknown"
                groups.append(ObserverGroup(safe_name(f"model-{name}"), f"model observer {name}", "model",
                                            roots.simulated, participants, paths, argument))
            else:  # e.g. template observers, one group per region (template, template:mouth)
                key = safe_name(f"{kind}-{argument}" if argument else kind)
                label = f"{kind} observers" + (f" ({argument})" if argument else "")
                groups.append(ObserverGroup(key, label, kind, roots.simulated, participants, paths))
    return groups


@dataclass
class GroupCI:
    """One observer group's classification images for one task.

    Parameters
    ----------
    group : ObserverGroup
        The observers.
    outputs : CIOutputs
        What :func:`analysis.ci_command.run_ci` made of their trial files.
    maps : dict of str to Path
        condition -> the group CI's ``.npz`` in the report folder.
    figures : dict of str to Path
        ``"<group|participants>_<condition>"`` -> its PNG in the report folder.
    """

    group: ObserverGroup
    outputs: CIOutputs
    maps: dict[str, Path]  # condition -> npz (final place in the report folder)
    figures: dict[str, Path]  # "<kind>_<condition>" -> png (final place)


# ----------------------------------------------------------------------------- context
class ReportContext:
    """The inputs of a report, each loaded once; problems collected, one line each.

    Parameters
    ----------
    config : ReportConfig
        The report's config.
    out : Path
        The report folder being written.
    warn : callable, optional
        Told each problem once (default: a ``warning:`` line on stderr).
    progress : bool, optional
        Progress bars (None: when the output is a terminal).
    """

    def __init__(self, config: ReportConfig, out: Path, *, warn: Callable[[str], None] | None = None,
                 progress: bool | None = None) -> None:
        self.config = config
        self.out = Path(out)
        self.progress = progress
        self.problems: list[str] = []
        self.facts: dict[str, Any] = {}
        self.inputs: list[Path] = []
        self._warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
        self._cache: dict[Any, Any] = {}

    def warn(self, message: str) -> None:
        """Report a problem (each message once; :attr:`problems` keeps them in order)."""
        if message not in self.problems:
            self.problems.append(message)
            self._warn(message)

    def _once(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` the first time; later calls return it (or raise its InputError again)."""
        if key not in self._cache:
            try:
                self._cache[key] = ("ok", make())
            except InputError as error:
                self._cache[key] = ("error", error)
        status, value = self._cache[key]
        if status == "error":
            raise value
        return value

    def write_table(self, name: str, table: pd.DataFrame) -> Path:
        """Write ``tables/<name>.csv`` (atomically) and return its path."""
        return atomic_write_text(self.out / "tables" / f"{name}.csv", table.to_csv(index=False))

    def figure_path(self, name: str) -> Path:
        """``figures/<name>.png`` in the report folder."""
        return self.out / "figures" / f"{name}.png"

    # --- stimulus set
    def stim(self) -> PreparedSet:
        """The prepared stimulus set (an :class:`InputError` names the command that makes it)."""
        return self._once("stim", lambda: load_prepared_set(self.config.stimuli, self.config.results))

    def background(self) -> np.ndarray | None:
        """The set's mean face, or None when the set cannot be read (the CI section says why)."""
        try:
            return self._once("background", lambda: self.stim().mean_face())
        except InputError:
            return None

    def region(self) -> np.ndarray | None:
        """The search region of the tests (the face aperture by default), None without a set."""
        try:
            return self._once("region", lambda: search_region(self.config.ci.search_region, self.stim()))
        except InputError:
            return None

    # --- observers and CIs
    def groups(self, task: str) -> list[ObserverGroup]:
        """The observer groups with trial files of ``task`` (:func:`find_observer_groups`)."""
        return self._once(("groups", task), lambda: find_observer_groups(self.config.data, task, self.warn))

    def reference_key(self, task: str) -> str | None:
        """The key of the observer group that stands for people (``alignment.reference``): the
        group of that key, else the first group of that kind (e.g. ``template`` matches
        ``template-eyes``); None when there is none."""
        return self._once(("reference", task), lambda: self._reference_key(task))

    def _reference_key(self, task: str) -> str | None:
        want = self.config.alignment.reference
        groups = self.groups(task)
        for group in groups:
            if group.key == safe_name(want):
                return group.key
        matches = [g.key for g in groups if g.kind == want]
        if len(matches) > 1:
            self.warn(f"alignment.reference '{want}' matches several observer groups of task {task} "
                      f"({', '.join(matches)}); using {matches[0]}")
        return matches[0] if matches else None

    def ci(self, task: str) -> dict[str, GroupCI]:
        """Every observer group's CIs of ``task`` (groups that fail are reported and left out)."""
        return self._once(("ci", task), lambda: self._compute_ci(task))

    def _compute_ci(self, task: str) -> dict[str, GroupCI]:
        self.stim()  # a missing set is one error for the section, not one per group
        result: dict[str, GroupCI] = {}
        for group in self.groups(task):
            scratch = self.out / ".scratch" / task / group.key
            files, left_out = self.kept_files(task, group)
            if not files:
                self.warn(f"{group.label}, task {task}: no classification images (the QC excluded every participant)")
                continue
            config = self.config.ci_config(task, group.data_root, files)
            try:
                outputs = run_ci(config, scratch, progress=self.progress,
                                 warn=lambda m, g=group: self.warn(f"{g.label}: {m}"))
            except InputError as error:
                self.warn(f"{group.label}, task {task}: no classification images ({error})")
                continue
            if len(left_out):
                outputs.exclusions = pd.concat([outputs.exclusions, left_out], ignore_index=True)
            self.inputs.extend(outputs.inputs)
            top = group.key == self.reference_key(task)
            maps_dir = self.out / "maps" if top else self.out / "maps" / group.key
            figures_dir = self.out / "figures" if top else self.out / "figures" / group.key
            maps, figures = {}, {}
            for condition, path in outputs.maps.items():
                maps[condition] = _move(path, maps_dir / path.name)
            for path in outputs.figures:
                moved = _move(path, figures_dir / path.name)
                kind = "group" if path.name.startswith("ci_group_") else "participants"
                figures[f"{kind}_{path.stem.split(f'_{task}_', 1)[-1]}"] = moved
            result[group.key] = GroupCI(group, outputs, maps, figures)
        shutil.rmtree(self.out / ".scratch" / task, ignore_errors=True)
        return result

    # --- quality control
    def quality(self, task: str) -> dict[str, GroupQuality]:
        """Each observer group's QC of ``task`` (:func:`~analysis.quality.assess_quality`, rules ``qc:``)."""
        return self._once(("quality", task), lambda: self._assess(task))

    def _assess(self, task: str) -> dict[str, GroupQuality]:
        result = {}
        for group in self.groups(task):
            quality = assess_quality(group.files, self.config.qc, self.config.alpha,
                                     lambda m, g=group: self.warn(f"{g.label}: {m}"))
            self.inputs.extend(quality.files)
            for participant, reasons in quality.excluded.items():
                self.warn(f"{group.label}: sub-{participant} excluded by the QC rules ({reasons})"
                          + ("" if self.config.qc.drop_excluded else "; kept in the group statistics (drop_excluded: false)"))
            result[group.key] = quality
        return result

    def kept_files(self, task: str, group: ObserverGroup) -> tuple[list[str], pd.DataFrame]:
        """The group's trial files for the group statistics, less those of the participants the QC
        excluded (unless ``qc.drop_excluded`` is false), and the exclusions as ``ci_exclusions`` rows."""
        columns = ["participant", "condition", "where", "reason"]
        if not self.config.qc.drop_excluded:
            return list(group.files), pd.DataFrame(columns=columns)
        excluded = self.quality(task)[group.key].excluded
        prefixes = tuple(f"sub-{p}_" for p in excluded)
        files = [f for f in group.files if not (prefixes and Path(f).name.startswith(prefixes))]
        rows = [{"participant": p, "condition": "all", "where": "qc", "reason": f"QC: {r}"} for p, r in excluded.items()]
        return files, pd.DataFrame(rows, columns=columns)

    # --- relevance maps
    def variants(self) -> list[str]:
        """The variants named in ``models.variants``, else every one with relevance maps of the set."""
        settings = self.config.models
        return self._once("variants", lambda: list(settings.variants) if settings.variants
                          else discover_variants(self.config.stimuli, self.config.results))

    def variant_maps(self) -> dict[str, RelevanceMaps]:
        """The readable relevance maps of :meth:`variants` on the set's grid (others reported, left out)."""
        def load() -> dict[str, RelevanceMaps]:
            names = self.variants()
            maps = load_variant_maps(names, self.config.stimuli, self.config.results, warn=self.warn)
            for name in maps:
                self.inputs.append(relevance_path(name, self.config.stimuli, self.config.results))
            if self._stim_ok():
                shape = self.stim().shape
                for name in list(maps):
                    if maps[name].relevance.shape[1:] != shape:
                        self.warn(f"relevance of {name}: maps of shape {maps[name].relevance.shape[1:]} are not on "
                                  f"the {shape} grid of set '{self.config.stimuli}'; left out")
                        del maps[name]
            return maps
        return self._once("variant_maps", load)

    def _stim_ok(self) -> bool:
        try:
            self.stim()
            return True
        except InputError:
            return False


def _move(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    return target


def discover_rdm_variants(stimuli: str, results: str | os.PathLike = "results") -> list[str]:
    """Every variant with model RDMs of the set ``stimuli`` under ``<results>/rdm/``.

    Parameters
    ----------
    stimuli : str
        The prepared set's name.
    results : path-like
        The results root.

    Returns
    -------
    list of str
        The variants, sorted.

    Examples
    --------
    >>> discover_rdm_variants("orl32", "no/such/root")
    []
    """
    folder = Path(results) / "rdm"
    return sorted(p.parent.name for p in folder.glob(f"*/{stimuli}.npz")) if folder.is_dir() else []
