"""Reading Bubbles trial files for the statistics: CIs, revealed area and quality control.

Every file an analysis of Bubbles sessions reads is read here (trial files through
:func:`stimuli.contracts.trials.read_trials`, sidecars, events files); the statistics modules
(:mod:`analysis.classification`, :mod:`analysis.revealed`, :mod:`analysis.quality`) take the
tables these functions return.

* :func:`load_participants`: every participant's main trials by condition (the ``ci`` pipeline);
* :func:`check_session_set`: a session's sidecar against the prepared set;
* :func:`input_files`: trial files and sidecars (for provenance hashes);
* :func:`session_files` / :func:`area_summary`: one participant's revealed-area summary;
* :func:`load_quality` / :func:`assess_quality`: a group's QC tables.

Examples
--------
>>> session_files(["d/sub-01_ses-1_task-g_beh.tsv"], "01", ["1"])
[PosixPath('d/sub-01_ses-1_task-g_beh.tsv')]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stimuli.bubbles import MERGE_RULES, aperture_pixels
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import PreparedSet
from stimuli.contracts.set_hash import CONTENT_HASH_KEY, set_record_mismatch
from stimuli.contracts.trials import (
    events_path,
    find_trial_files,
    read_frame_events,
    read_sidecar,
    read_trials,
    sidecar_path,
)

from ..classification import BubbleTrials, concat_bubble_trials, parse_bubble_trials
from ..quality import (
    QC_TRIAL_COLUMNS,
    GroupQuality,
    QCRules,
    accuracy_windows,
    chance_level,
    quality_table,
    staircase_trace,
)
from ..revealed import (
    DEFAULT_BURN_IN,
    STAIRCASE_COLUMNS,
    Psychometric,
    check_burn_in,
    condition_summary,
    staircase_positions,
    staircase_trials,
)
from .guided_densities import GuidedDensities

__all__ = ["NEEDED_COLUMNS", "Participant", "check_session_set", "load_participants", "input_files",
           "session_files", "area_summary", "QualityData", "load_quality", "assess_quality"]

# columns a trial file needs for a CI (the rest of the contract is not used here)
NEEDED_COLUMNS = ("phase", "condition", "correct", "bubbles", "sigma_px")


def check_session_set(path: Path, stim: PreparedSet) -> str | None:
    """Refuse (InputError) a session whose sidecar records another set than ``stim``.

    Returns a warning when the record holds no content hash (an older session: name,
    grid and manifest are compared); None when it matches or no set is recorded at all.

    Parameters
    ----------
    path : Path
        A trial file.
    stim : PreparedSet
        The prepared set the analysis uses.

    Returns
    -------
    str or None
        A warning for a record without content hash, else None.
    """
    record = (read_sidecar(path) or {}).get("StimulusSet")  # a damaged sidecar is an InputError
    if record is None:
        return None  # not written by the session engine: nothing to compare
    mismatch = set_record_mismatch(record, stim)
    if mismatch:
        raise InputError(f"{path}: {mismatch} (--stimuli {stim.name})")
    if not record.get(CONTENT_HASH_KEY):
        return (f"{sidecar_path(path)}: records no content hash of stimulus set '{stim.name}' (an older "
                "session); only its name, grid and manifest were checked")
    return None


@dataclass
class Participant:
    """One participant's main trials by condition, and the sessions they came from.

    Parameters
    ----------
    trials : dict of str to BubbleTrials
        condition -> the participant's parsed main trials.
    sessions : list of str
        The sessions read.
    """

    trials: dict[str, BubbleTrials] = field(default_factory=dict)  # condition -> trials
    sessions: list[str] = field(default_factory=list)


def load_participants(data_root: str | os.PathLike, task: str, shape: tuple[int, int],
                      report: Callable[[str, str, str, str], None], densities: GuidedDensities,
                      stim: PreparedSet | None = None, trial_files: Sequence[str | os.PathLike] | None = None
                      ) -> tuple[dict[str, Participant], list[Path]]:
    """Every participant's main Bubbles trials of ``task`` under ``data_root``, by condition.

    Each session's sidecar is checked against the prepared set ``stim`` (when given), each
    trial labelled with the centre density it was drawn from (``densities``). A bad file,
    condition or density is passed to ``report(participant, condition, where, reason)`` and
    left out; the rest is read.

    Parameters
    ----------
    data_root : path
        The BIDS data root (``sub-*/ses-*/beh/*_task-<task>_beh.tsv``).
    task : str
        The task label of the trial files.
    shape : tuple of int
        The stimulus grid (H, W).
    report : callable
        Called with (participant, condition, where, reason) for each problem.
    densities : GuidedDensities
        Labels each session's trials with their centre density.
    stim : PreparedSet, optional
        The prepared set the sessions must have shown.
    trial_files : sequence of path, optional
        Only these trial files (default: every file of the task).

    Returns
    -------
    people : dict of str to Participant
        participant -> their trials by condition and sessions.
    files : list of Path
        Every trial file of the task that was considered.
    """
    files = find_trial_files(data_root, task)
    if trial_files is not None:  # e.g. the sessions of one kind of observer
        wanted = {Path(f).resolve() for f in trial_files}
        files = [tf for tf in files if tf.path.resolve() in wanted]
    if not files:
        raise InputError(f"{data_root}: no trial files of task '{task}' "
                         f"(expected sub-*/ses-*/beh/sub-*_ses-*_task-{task}_beh.tsv)")
    parts: dict[str, dict[str, list[BubbleTrials]]] = {}
    people: dict[str, Participant] = {}
    for tf in files:
        try:
            unchecked = check_session_set(tf.path, stim) if stim is not None else None
            if unchecked:
                report(tf.participant, "", str(tf.path), unchecked)
            table = read_trials(tf.path, required=NEEDED_COLUMNS,
                                warn=lambda message, tf=tf: report(tf.participant, "", str(tf.path), message))
            main = table[table["phase"] == "main"]
            if len(main) == 0:
                raise InputError(f"{tf.path}: no main-phase trials")
            unanswered = main["correct"].isna()
            if unanswered.any():  # e.g. a session cut off mid-trial: keep the answered trials
                report(tf.participant, "", str(tf.path),
                       f"{tf.path}: {int(unanswered.sum())} main trial(s) without a 'correct' value (n/a) left out")
                main = main[~unanswered]
                if len(main) == 0:
                    continue
            missing_condition = main["condition"].isna()
            if missing_condition.any():
                line = int(main.index[missing_condition][0]) + 2
                raise InputError(f"{tf.path}, line {line}: 'condition' is n/a")
            parsed = parse_bubble_trials(main, shape, where=str(tf.path))
        except InputError as error:
            report(tf.participant, "", str(tf.path), str(error))
            continue
        person = people.setdefault(tf.participant, Participant())
        person.sessions.append(tf.session)
        conditions = main["condition"].astype(str).to_numpy()
        ids = main["stimulus_id"].astype(str).to_numpy() if "stimulus_id" in main.columns else None
        for condition in np.unique(conditions):
            keep = conditions == condition
            try:  # each trial labelled with the centre density it was drawn from (guided: rebuilt)
                piece = densities.label(parsed.subset(keep), tf.path, condition, None if ids is None else ids[keep])
            except InputError as error:
                report(tf.participant, condition, str(tf.path), str(error))
                continue
            parts.setdefault(tf.participant, {}).setdefault(condition, []).append(piece)
    for participant, by_condition in parts.items():
        for condition, pieces in by_condition.items():
            people[participant].trials[condition] = concat_bubble_trials(
                pieces, where=f"sub-{participant} condition {condition}")
    return people, [tf.path for tf in files]


def input_files(trial_files: Sequence[str | os.PathLike]) -> list[Path]:
    """Trial files and their sidecars (for provenance hashes).

    Parameters
    ----------
    trial_files : sequence of path
        The trial files read.

    Returns
    -------
    list of Path
        Each trial file, followed by its JSON sidecar where there is one.
    """
    files = []
    for path in map(Path, trial_files):
        files.append(path)
        if sidecar_path(path).is_file():
            files.append(sidecar_path(path))
    return files


def _session_settings(path: Path, table: pd.DataFrame) -> tuple[str, Psychometric]:
    """The session's mask merge rule and QUEST's psychometric function, from its sidecar.

    Files without them (older or hand-made): merge ``sum``, QUEST's defaults, and chance
    (one over the number of answers in ``truth``) as the guess rate.
    """
    side = sidecar_path(path)
    info = read_sidecar(path) or {}
    rule = info.get("MaskMergeRule") or (info.get("Masks") or {}).get("merge") or \
        ((info.get("ExperimentConfig") or {}).get("bubbles") or {}).get("merge") or "sum"
    if rule not in MERGE_RULES:
        raise InputError(f"{side}: mask merge rule '{rule}' is not one of {', '.join(MERGE_RULES)}")
    quest = info.get("Staircase") or {}
    answers = table["truth"].dropna().nunique() if "truth" in table.columns else 2
    default = Psychometric()
    try:
        psychometric = Psychometric(
            target=float(quest.get("target", default.target)), beta=float(quest.get("beta", default.beta)),
            delta=float(quest.get("delta", default.delta)),
            gamma=float(quest.get("gamma_used") or quest.get("gamma") or 1.0 / max(2, answers)))
    except (TypeError, ValueError):
        raise InputError(f"{side}: 'Staircase' holds a non-numeric target, beta, delta or gamma") from None
    if not (0 <= psychometric.gamma < psychometric.target < 1 and psychometric.beta > 0
            and 0 <= psychometric.delta < 1):
        raise InputError(f"{side}: 'Staircase' target, beta, delta or gamma out of range: {psychometric}")
    return str(rule), psychometric


def session_files(paths: Sequence[str | os.PathLike], participant: str, sessions: Sequence[str]) -> list[Path]:
    """The trial files of one participant's ``sessions`` among ``paths`` (BIDS names).

    Parameters
    ----------
    paths : sequence of path
        Trial files (BIDS names).
    participant : str
        The participant label.
    sessions : sequence of str
        The session labels wanted.

    Returns
    -------
    list of Path
        The matching files, in the given order.

    Examples
    --------
    >>> session_files(["d/sub-01_ses-1_task-g_beh.tsv", "d/sub-01_ses-2_task-g_beh.tsv",
    ...                "d/sub-011_ses-1_task-g_beh.tsv"], "01", ["1"])
    [PosixPath('d/sub-01_ses-1_task-g_beh.tsv')]
    """
    prefixes = tuple(f"sub-{participant}_ses-{s}_" for s in sessions)
    return [Path(p) for p in paths if Path(p).name.startswith(prefixes)]


def area_summary(files: Sequence[str | os.PathLike], condition: str, shape: Sequence[int], aperture: Any = None,
                 burn_in: int = DEFAULT_BURN_IN) -> dict[str, Any]:
    """:func:`condition_summary` of one participant's ``condition`` from their trial files.

    The revealed area is the file's ``revealed_px`` where it has one, else recomputed from the
    row (:func:`stimuli.bubbles.revealed_area` with the sidecar's merge rule) over ``aperture``
    (the prepared set's face aperture; ``None``: the whole grid), so older files still work.
    The area threshold uses the sidecar's QUEST settings (:class:`Psychometric`).

    Parameters
    ----------
    files : sequence of path
        One participant's trial files.
    condition : str
        The condition summarised.
    shape : sequence of int
        The stimulus grid (H, W).
    aperture : bool array, optional
        The set's face aperture (default: the whole grid).
    burn_in : int
        Trials left out at the start of each staircase.

    Returns
    -------
    dict
        :data:`analysis.revealed.SUMMARY_COLUMNS` -> value.
    """
    burn_in = check_burn_in(burn_in)
    parts, psychometric = [], Psychometric()
    for path in files:
        table = read_trials(path, required=STAIRCASE_COLUMNS)
        merge, psychometric = _session_settings(Path(path), table)  # a participant's sessions share a design
        trials = staircase_trials(table, shape, aperture, merge=merge, where=str(path))
        parts.append(trials[trials["condition"] == str(condition)].assign(session=str(path)))
    trials = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["condition", "staircase", "staircase_trial", "correct", "n_bubbles", "final_log10_bubbles",
                 "revealed_px", "session"])
    return condition_summary(trials, burn_in, aperture_px=aperture_pixels(shape, aperture),
                             psychometric=psychometric)


# ----------------------------------------------------------------------------- files
@dataclass
class QualityData:
    """A group's trials and frame intervals as long tables, with the chance level per participant.

    Parameters
    ----------
    trials : pandas.DataFrame
        All trials, with ``participant`` and ``session`` columns.
    frames : pandas.DataFrame or None
        The frame intervals of the sessions that have an events file.
    chance : dict of str to float
        participant -> chance level from the sidecars.
    files : list of Path
        Every file read.
    targets : dict of str to float
        participant -> the staircase's target accuracy.
    skipped : list of str
        Files left out, one line each.
    """

    trials: pd.DataFrame
    frames: pd.DataFrame | None
    chance: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # every file read (trial files and events files)
    targets: dict[str, float] = field(default_factory=dict)  # the staircase's target accuracy (sidecar)
    skipped: list[str] = field(default_factory=list)  # files left out, one line each


def load_quality(files: Sequence[str | os.PathLike], warn: Callable[[str], None]) -> QualityData:
    """Read trial files (``sub-<p>_ses-<s>_task-<t>_beh.tsv``), their sidecars and events files.

    A trial file or sidecar that cannot be read is left out, its reason kept in
    ``QualityData.skipped`` (the classification images read the same files and report them:
    one message per problem); a bad events file is reported through ``warn`` and that
    session's frame intervals are not measured. A sidecar whose ``ScreenCheck`` is null (a simulated
    observer) makes the session's dropped frames "not measured" (NaN) whatever the column holds;
    older sidecars without the key are read by the column. A participant's chance level comes
    from the sidecar's ``Responses`` (else the truth values).

    Parameters
    ----------
    files : sequence of path
        A group's trial files.
    warn : callable
        Called with one line per bad events file.

    Returns
    -------
    QualityData
        The long tables and what was read or skipped.
    """
    trials, frames, answers, read, targets, skipped = [], [], {}, [], {}, []
    for name in files:
        path = Path(name)
        participant, session = _labels(path)
        try:
            table = read_trials(path, required=QC_TRIAL_COLUMNS)
            staircase_positions(table, where=str(path))  # bubble centres that do not parse: the file is left out
            info = read_sidecar(path) or {}
        except InputError as error:
            skipped.append(str(error))
            continue
        try:
            events = read_frame_events(path, warn=warn)
        except InputError as error:
            warn(f"{error}; this session's frame intervals are left out (not measured)")
            events = None
        if "ScreenCheck" in info and info["ScreenCheck"] is None and "dropped_frames" in table.columns:
            table = table.assign(dropped_frames=np.nan)  # no screen (simulated observer): nothing was measured
        read.append(path)
        trials.append(table.assign(participant=participant, session=session))
        staircase = info.get("Staircase") if isinstance(info.get("Staircase"), dict) else {}
        target = staircase.get("target")
        if isinstance(target, (int, float)) and 0 < target < 1:
            targets.setdefault(participant, float(target))
        responses = info.get("Responses")
        if isinstance(responses, (dict, list)) and responses:
            answers.setdefault(participant, set()).update(responses)
        if events is not None:
            read.append(events_path(path))
            frames.append(events.assign(participant=participant, session=session))
    chance = {p: chance_level([], sorted(a)) for p, a in answers.items()}
    if not trials:
        return QualityData(pd.DataFrame(columns=["participant", "session", *QC_TRIAL_COLUMNS]), None, {}, read, targets,
                           skipped)
    return QualityData(pd.concat(trials, ignore_index=True), pd.concat(frames, ignore_index=True) if frames else None,
                       chance, read, targets, skipped)


def _labels(path: Path) -> tuple[str, str]:
    parts = dict(part.split("-", 1) for part in path.name.split("_") if "-" in part)
    return parts.get("sub", path.parent.parent.parent.name), parts.get("ses", path.parent.parent.name)


def assess_quality(files: Sequence[str | os.PathLike], rules: QCRules, alpha: float,
                   warn: Callable[[str], None]) -> GroupQuality:
    """:func:`load_quality` then :func:`quality_table`, :func:`staircase_trace` and
    :func:`accuracy_windows` of one group's trial files.

    Parameters
    ----------
    files : sequence of path
        A group's trial files.
    rules : QCRules
        The exclusion rules.
    alpha : float
        Level of the accuracy test.
    warn : callable
        Called with one line per problem.

    Returns
    -------
    GroupQuality
        The QC table, staircase trace, accuracy windows and the files read.

    Examples
    --------
    >>> quality = assess_quality(group_files, QCRules(), 0.05, print)   # doctest: +SKIP
    >>> quality.excluded                                                  # doctest: +SKIP
    {'03': 'accuracy 0.512 not above chance 0.5 (one-sided binomial p = 0.34, alpha 0.05, 200 trials)'}
    """
    data = load_quality(files, warn)
    table = quality_table(data.trials, data.frames, rules=rules, alpha=alpha, chance=data.chance)
    return GroupQuality(table, staircase_trace(data.trials), accuracy_windows(data.trials, rules.accuracy_window),
                        data.files, data.targets, data.skipped)
