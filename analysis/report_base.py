"""What every report section shares: the config, the context that loads inputs once, and a
:class:`Section` that collects its HTML (text, figures, tables).

A section builder is a function ``build(ctx, section)``. It reads its inputs through the
:class:`ReportContext` (which loads each of them once, reports problems one line each and
caches failures), writes tables through :meth:`Section.table` (CSV under ``tables/`` plus a
preview in the page) and figures under ``figures/``, and raises :class:`Absent` when its
inputs do not exist (the page says so) or :class:`~stimuli.InputError` when they are bad
(the page shows the message; the other sections are still built).

Examples
--------
>>> from stimuli.contracts.config import from_dict
>>> config = from_dict(ReportConfig, {"stimuli": "orl64", "tasks": ["gender"]}, "demo.yaml")
>>> config.alignment.reference, config.exclusion.min_trials
('people', 100)
"""

from __future__ import annotations

import html
import math
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import PreparedSet, load_prepared_set
from stimuli.contracts.provenance import atomic_write_text
from stimuli.contracts.relevance import RelevanceMaps, relevance_path
from stimuli.contracts.trials import find_trial_files, read_sidecar, sidecar_path

from .ci_pipeline import CIOutputs, run_ci
from .ci_pipeline import search_region as _search_region
from .quality import GroupQuality
from .readers.relevance import discover_variants, load_variant_maps
from .readers.trials import assess_quality
from .report_config import (  # the config lives in its own module; its names stay importable from here
    AlignmentSettings,
    CISettings,
    DataRoots,
    Exclusion,
    FindingSettings,
    ModelSettings,
    ReportConfig,
    RSASettings,
)

__all__ = [
    "DataRoots",
    "CISettings",
    "Exclusion",
    "ModelSettings",
    "AlignmentSettings",
    "FindingSettings",
    "RSASettings",
    "ReportConfig",
    "ObserverGroup",
    "GroupCI",
    "Absent",
    "Section",
    "ReportContext",
    "find_observer_groups",
    "fmt",
    "p_text",
    "plural",
]


# ----------------------------------------------------------------------------- observers
@dataclass
class ObserverGroup:
    """Trial files of one kind of observer: people, template observers, or one model variant."""

    key: str  # file-safe: people, template, model-vgg16-imagenet-gender-s0
    label: str  # for the page
    kind: str  # people | template | model | another observer kind
    data_root: str
    participants: list[str]
    files: list[str]  # the group's trial files
    variant: str | None = None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "none"


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
    sidecar (``template``, ``template:REGION``, one group per ``model:VARIANT``)."""
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
                groups.append(ObserverGroup(_safe(f"model-{name}"), f"model observer {name}", "model",
                                            roots.simulated, participants, paths, argument))
            else:  # e.g. template observers, one group per region (template, template:mouth)
                key = _safe(f"{kind}-{argument}" if argument else kind)
                label = f"{kind} observers" + (f" ({argument})" if argument else "")
                groups.append(ObserverGroup(key, label, kind, roots.simulated, participants, paths))
    return groups


@dataclass
class GroupCI:
    """One observer group's classification images for one task."""

    group: ObserverGroup
    outputs: CIOutputs
    maps: dict[str, Path]  # condition -> npz (final place in the report folder)
    figures: dict[str, Path]  # "<kind>_<condition>" -> png (final place)


# ----------------------------------------------------------------------------- sections
class Absent(Exception):
    """A section's inputs do not exist: the page says so (with how to make them)."""


def fmt(value: Any, digits: int = 3) -> str:
    """A number for prose: 3 significant digits, p-values as '< 0.001', NaN as 'n/a'."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "n/a"
    return f"{number:.{digits}g}"


def plural(count: int, word: str) -> str:
    """``1 participant`` / ``4 participants``."""
    return f"{count} {word}" + ("" if count == 1 else "s")


def p_text(p: Any) -> str:
    """``p = 0.012`` / ``p < 0.001``."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return "p = n/a"
    if not math.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


@dataclass
class Section:
    """One part of the page: a title and HTML blocks, with a status (ok, absent, error)."""

    key: str
    title: str
    ctx: ReportContext
    blocks: list[str] = field(default_factory=list)
    status: str = "ok"

    def text(self, text: str) -> None:
        self.blocks.append(f"<p>{html.escape(text)}</p>")

    def html(self, markup: str) -> None:
        """Raw markup (caller escapes)."""
        self.blocks.append(markup)

    def heading(self, text: str) -> None:
        self.blocks.append(f"<h3>{html.escape(text)}</h3>")

    def note(self, text: str, kind: str = "note") -> None:
        self.blocks.append(f'<div class="{kind}">{html.escape(text)}</div>')

    def figure(self, path: Path, caption: str, *, width: int | None = None) -> None:
        rel = path.relative_to(self.ctx.out).as_posix()
        style = f' style="max-width:{width}px"' if width else ""
        self.blocks.append(f'<figure{style}><a href="{html.escape(rel)}"><img src="{html.escape(rel)}" '
                           f'alt="{html.escape(caption)}"></a><figcaption>{html.escape(caption)}'
                           "</figcaption></figure>")

    def table(self, name: str, table: pd.DataFrame, caption: str, *, columns: list[str] | None = None,
              max_rows: int = 12, write: bool = True) -> Path:
        """Write ``tables/<name>.csv`` (all rows and columns) and show a preview."""
        path = self.ctx.write_table(name, table) if write else self.ctx.out / "tables" / f"{name}.csv"
        shown = table[[c for c in columns if c in table.columns]] if columns else table
        rel = path.relative_to(self.ctx.out).as_posix()
        more = f" (first {max_rows} of {len(table)} rows)" if len(table) > max_rows else ""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                       for row in shown.head(max_rows).itertuples(index=False))
        if len(shown) == 0:
            rows = f'<tr><td colspan="{max(len(shown.columns), 1)}">(none)</td></tr>'
        self.blocks.append(
            f'<div class="table"><div class="caption">{html.escape(caption)}{more} '
            f'<a href="{html.escape(rel)}">{html.escape(rel)}</a></div>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")
        return path


# ----------------------------------------------------------------------------- context
class ReportContext:
    """The inputs of a report, each loaded once; problems collected, one line each."""

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
        return atomic_write_text(self.out / "tables" / f"{name}.csv", table.to_csv(index=False))

    def figure_path(self, name: str) -> Path:
        return self.out / "figures" / f"{name}.png"

    # --- stimulus set
    def stim(self) -> PreparedSet:
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
            return self._once("region", lambda: _search_region(self.config.ci.search_region, self.stim()))
        except InputError:
            return None

    # --- observers and CIs
    def groups(self, task: str) -> list[ObserverGroup]:
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
            if group.key == _safe(want):
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
        settings = self.config.models
        return self._once("variants", lambda: list(settings.variants) if settings.variants
                          else discover_variants(self.config.stimuli, self.config.results))

    def variant_maps(self) -> dict[str, RelevanceMaps]:
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
