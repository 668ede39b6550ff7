"""The trial file: one format for people, simulated and model observers.

``<data-root>/sub-<id>/ses-<n>/beh/sub-<id>_ses-<n>_task-<task>_beh.tsv`` (BIDS-style), one
row per trial, with a JSON sidecar of the same name (``.json``) that describes every column
and records the experiment config, stimulus set, observer, screen and software.
``experiments`` writes it (row by row, flushed as each trial ends); ``analysis`` reads it with
:func:`read_trials`. The column list below is the single definition both use.

The reader is strict: a crash can only leave a torn last line (no final newline), which is
left out and reported; anything else (a byte that is not UTF-8, a malformed row, duplicated
or reordered trial numbers, an invalid condition name, ``correct`` contradicting the answer)
is one :class:`~stimuli.InputError` naming file and line, so the analysis excludes the file
with its reason and ``--resume`` refuses it.

Examples
--------
>>> trial_file_path("participants", "01", 1, "gender").as_posix()
'participants/sub-01/ses-1/beh/sub-01_ses-1_task-gender_beh.tsv'
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .names import NAME_RULE, check_label, is_name

__all__ = [
    "TRIAL_COLUMNS",
    "SIMILARITY_COLUMNS",
    "check_trials",
    "read_sidecar",
    "read_session_provenance",
    "SESSION_PROVENANCE_KEY",
    "split_lines",
    "trial_file_path",
    "sidecar_path",
    "EVENTS_COLUMNS",
    "events_path",
    "read_frame_events",
    "read_trials",
    "TrialFile",
    "find_trial_files",
]

# column -> BIDS-style description (the sidecar repeats these, with Units/Levels where apt)
TRIAL_COLUMNS: dict[str, str] = {
    "trial": "Trial number within the session, from 1, in presentation order.",
    "block": "Block number within the session, from 1 (practice is block 0).",
    "phase": "practice or main.",
    "condition": "How bubble centres were placed: random, guided, antiguided, ...",
    "stimulus_id": "Stimulus shown, a stimulus_id of the prepared set's manifest.csv.",
    "truth": "Correct answer (class name: gender or identity).",
    "response": "Answer given (class name); n/a when none was given.",
    "correct": "1 if response equals truth, else 0.",
    "rt_s": "Response time in seconds from the stimulus onset flip.",
    "n_bubbles": "Number of Gaussian apertures on this trial.",
    "sigma_px": "Standard deviation of each aperture, in stimulus-grid pixels.",
    "bubbles": "JSON list of [row, col] aperture centres on the stimulus grid (row 0 at the top).",
    "mask_seed": "Seed from which this trial's centres were drawn.",
    "onset_s": "Stimulus onset in seconds from the session start.",
    "dropped_frames": "Frames dropped while the stimulus was on screen.",
}

# the similarity task (triplet odd-one-out or pairwise ratings): its own columns, same file layout
SIMILARITY_COLUMNS: dict[str, str] = {
    "trial": TRIAL_COLUMNS["trial"],
    "block": TRIAL_COLUMNS["block"],
    "phase": TRIAL_COLUMNS["phase"],
    "condition": "Judgement: triplet (which face is least like the other two) or rating (pairwise, 1-7).",
    "stimulus_1": "Face shown on the left, a stimulus_id of the prepared set's manifest.csv.",
    "stimulus_2": "Face shown in the middle (triplet) or on the right (rating).",
    "stimulus_3": "Face shown on the right (triplet); n/a for ratings.",
    "response": "triplet: stimulus_id of the face chosen as the odd one out; rating: 1 (very "
                "dissimilar) to 7 (very similar); n/a when none was given.",
    "response_position": "triplet: position of the chosen face (1 left, 2 middle, 3 right); n/a for ratings.",
    "response_key": "Key pressed (psychopy key name), mouse for a click on a face; n/a for simulated observers.",
    "rt_s": TRIAL_COLUMNS["rt_s"],
    "onset_s": TRIAL_COLUMNS["onset_s"],
    "dropped_frames": TRIAL_COLUMNS["dropped_frames"],
}

def trial_file_path(data_root: str | os.PathLike, participant: str, session: int | str, task: str) -> Path:
    """Where one session's trial file lives.

    Parameters
    ----------
    data_root : str or path-like
        The BIDS data root.
    participant, session, task : str
        BIDS labels (checked).

    Returns
    -------
    Path
        ``<data_root>/sub-<p>/ses-<s>/beh/sub-<p>_ses-<s>_task-<t>_beh.tsv``.

    Examples
    --------
    >>> trial_file_path("participants", "01", 1, "gender").as_posix()
    'participants/sub-01/ses-1/beh/sub-01_ses-1_task-gender_beh.tsv'
    """
    sub, ses = check_label(participant, "participant"), check_label(session, "session")
    task = check_label(task, "task")
    return Path(data_root) / f"sub-{sub}" / f"ses-{ses}" / "beh" / f"sub-{sub}_ses-{ses}_task-{task}_beh.tsv"


def sidecar_path(trial_file: str | os.PathLike) -> Path:
    """The JSON sidecar next to a trial file (``..._beh.tsv`` -> ``..._beh.json``).

    Parameters
    ----------
    trial_file : str or path-like
        The trial file.

    Returns
    -------
    Path
        Its sidecar, ``..._beh.json`` (it need not exist).

    Examples
    --------
    >>> sidecar_path("d/sub-01_ses-1_task-gender_beh.tsv").name
    'sub-01_ses-1_task-gender_beh.json'
    """
    return Path(trial_file).with_suffix(".json")


# the frame-interval file of a session on a screen (experiments.frames writes it, analysis.quality
# reads it): one row per flip during trials
EVENTS_COLUMNS = ("onset", "duration", "trial_type", "trial", "dropped")


def events_path(trial_file: str | os.PathLike) -> Path:
    """The frame-interval file next to a trial file (``..._beh.tsv`` -> ``..._events.tsv``).

    Parameters
    ----------
    trial_file : str or path-like
        The trial file (``..._beh.tsv``).

    Returns
    -------
    Path
        The events file's path.

    Examples
    --------
    >>> events_path("d/sub-01_ses-1_task-gender_beh.tsv").name
    'sub-01_ses-1_task-gender_events.tsv'
    """
    path = Path(trial_file)
    if not path.name.endswith("_beh.tsv"):
        raise ValueError(f"{path}: not a trial file (*_beh.tsv)")
    return path.with_name(path.name[: -len("_beh.tsv")] + "_events.tsv")


_NO_FILE = object()


def _read_json(path: Path, what: str) -> Any:
    """The JSON value in ``path``; ``_NO_FILE`` when there is no file; unreadable: one InputError."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return _NO_FILE
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{path}: unreadable {what} ({error})") from None


def read_sidecar(trial_file: str | os.PathLike) -> dict[str, Any] | None:
    """A trial file's JSON sidecar as a dict; None when there is none.

    A sidecar that is not UTF-8, not JSON or not a JSON object is one :class:`InputError`
    naming it: a damaged record is never read as "nothing recorded".

    Parameters
    ----------
    trial_file : str or path-like
        The trial file whose sidecar is read.

    Returns
    -------
    dict or None
        The sidecar.
    """
    path = sidecar_path(trial_file)
    data = _read_json(path, "sidecar")
    if data is _NO_FILE:
        return None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the sidecar must be a JSON object (it is a {type(data).__name__}); "
                         "the file was edited")
    return data


SESSION_PROVENANCE_KEY = "Provenance"  # the sidecar key that holds a session's provenance record


def read_session_provenance(trial_file: str | os.PathLike) -> dict[str, Any] | None:
    """A session's provenance record (command, config, seeds, git commit, versions, inputs, times).

    Sessions keep it in their sidecar under ``Provenance`` (BIDS names no other file in
    ``beh/``); sessions written before that keep a ``provenance.json`` next to the trial file,
    which is read when the sidecar has none. None when neither exists.

    Parameters
    ----------
    trial_file : str or path-like
        The session's trial file.

    Returns
    -------
    dict or None
        The record, as written by the session.

    Examples
    --------
    >>> read_session_provenance("participants/sub-01/ses-1/beh/sub-01_ses-1_task-gender_beh.tsv")  # doctest: +SKIP
    {'command': [...], 'tool': 'experiments run', 'seeds': {'session': 9}, ...}
    """
    record = (read_sidecar(trial_file) or {}).get(SESSION_PROVENANCE_KEY)
    if isinstance(record, dict):
        return record
    data = _read_json(Path(trial_file).parent / "provenance.json", "provenance record")
    return data if isinstance(data, dict) else None


_NUMERIC = {"trial": int, "block": int, "n_bubbles": int, "mask_seed": int, "response_position": float,
            "correct": float, "rt_s": float, "sigma_px": float, "onset_s": float, "dropped_frames": float}


def split_lines(data: bytes, where: str | os.PathLike) -> tuple[list[str], bytes]:
    """The complete lines of a trial file's bytes (decoded) and its torn tail.

    A complete line ends with a newline; bytes after the last newline are a row cut off by a
    crash (the writer writes each row, newline included, in one write). A byte that is not
    UTF-8 is an :class:`InputError` naming its line.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    where : str or path-like
        The file, for error messages.

    Returns
    -------
    lines : list of str
        The complete lines, without their newlines.
    tail : bytes
        What follows the last newline (empty for an intact file).

    Examples
    --------
    >>> split_lines(bytes([97, 10, 98, 10, 99]), "t.tsv")
    (['a', 'b'], b'c')
    """
    end = data.rfind(b"\n") + 1
    complete, torn = data[:end], data[end:]
    try:
        text = complete.decode("utf-8")
    except UnicodeDecodeError as error:
        line = complete[: error.start].count(b"\n") + 1
        raise InputError(f"{where}, line {line}: not UTF-8 text (byte 0x{complete[error.start]:02x}); "
                         "the file was not written by this platform or was edited") from None
    return (text.split("\n")[:-1] if text else []), torn


def _check_rows(path: Path, header: list[str], lines: list[str]) -> list[list[str]]:
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        row = line.split("\t")
        if "\r" in line:
            raise InputError(f"{path}, line {number}: a carriage return (Windows line ends?) in a row")
        if len(row) != len(header):
            raise InputError(f"{path}, line {number}: {len(row)} fields where the header has {len(header)} "
                             "(a malformed row: the file was edited or damaged)")
        rows.append(row)
    return rows


def _check_numbers(path: Path, table: pd.DataFrame) -> None:
    for column, kind in _NUMERIC.items():
        if column not in table.columns:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna()
        if bad.any():
            line = int(table.index[bad][0]) + 2
            raise InputError(f"{path}, line {line}: column '{column}' holds {table[column][bad].iloc[0]!r}, not a number")
        if kind is float:
            table[column] = values.astype(np.float64)
        else:
            table[column] = values if values.isna().any() else values.astype(np.int64)


def _check_consistency(path: Path, table: pd.DataFrame) -> None:
    """Trial numbers 1..n in order; names valid; ``correct`` agrees with ``response`` and ``truth``."""
    if "trial" in table.columns and len(table):
        numbers = table["trial"].to_numpy()
        expected = np.arange(1, len(table) + 1)
        if table["trial"].isna().any() or not np.array_equal(numbers, expected):
            first = int(np.flatnonzero(~(numbers == expected))[0])
            seen = table["trial"].iloc[:first]
            what = "a duplicate" if table["trial"].iloc[first] in set(seen) else "out of order"
            raise InputError(f"{path}, line {first + 2}: trial number {table['trial'].iloc[first]} is {what} "
                             f"(expected {first + 1}: trials run 1..n, one row each)")
    if "condition" in table.columns:
        bad = table["condition"].notna() & ~table["condition"].map(is_name)
        if bad.any():
            line = int(table.index[bad][0]) + 2
            raise InputError(f"{path}, line {line}: condition {table['condition'][bad].iloc[0]!r} is not a "
                             f"valid name ({NAME_RULE})")
    if {"correct", "response", "truth"} <= set(table.columns):
        known = table["correct"].notna()
        if not table["correct"][known].isin([0.0, 1.0]).all():
            line = int(table.index[known & ~table["correct"].isin([0.0, 1.0])][0]) + 2
            raise InputError(f"{path}, line {line}: column 'correct' must be 0, 1 or n/a")
        should = (table["response"].notna() & (table["response"] == table["truth"])).astype(float)
        wrong = known & (table["correct"] != should)
        if wrong.any():
            line = int(table.index[wrong][0]) + 2
            row = table.loc[wrong].iloc[0]
            raise InputError(f"{path}, line {line}: 'correct' is {int(row['correct'])} but response "
                             f"{row['response']!r} and truth {row['truth']!r} say {int(should[wrong].iloc[0])} "
                             "(the file was edited)")


def check_trials(rows: pd.DataFrame, where: str | os.PathLike) -> pd.DataFrame:
    """A trial table of text cells (``n/a`` for missing), checked and typed; damage is an InputError.

    Numbers must parse, trial numbers run 1..n in order, conditions are valid names and
    ``correct`` agrees with ``response`` and ``truth``. Row ``i`` is reported as line
    ``i + 2`` (the header is line 1). The reader and ``--resume`` share these checks.

    Parameters
    ----------
    rows : pandas.DataFrame
        The rows as text.
    where : str or path-like
        The file, for error messages.

    Returns
    -------
    pandas.DataFrame
        The rows with numeric columns typed and ``n/a`` as missing.
    """
    table = rows.reset_index(drop=True).replace("n/a", np.nan)
    _check_numbers(Path(where), table)
    _check_consistency(Path(where), table)
    return table


def read_trials(path: str | os.PathLike, *, required: tuple[str, ...] = tuple(TRIAL_COLUMNS),
                warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Read a trial file strictly; any damage is one :class:`InputError` naming file and line.

    ``n/a`` cells (BIDS) become missing values. Only a torn last line (no final newline: the
    writer died inside its one write) is forgiven: it is left out, passed to ``warn`` and
    kept in ``table.attrs["torn_line"]``. Everything else that a crash cannot produce is
    refused: bytes that are not UTF-8, a malformed row, trial numbers that are not 1..n in
    order (duplicated or reordered rows), an invalid condition name, and ``correct`` that
    contradicts ``response`` and ``truth``.

    Parameters
    ----------
    path : str or path-like
        The trial file.
    required : tuple of str
        Columns that must be there (default: :data:`TRIAL_COLUMNS`).
    warn : callable, optional
        Receives the note about a torn last line.

    Returns
    -------
    pandas.DataFrame
        One row per complete trial.

    Examples
    --------
    >>> table = read_trials("participants/sub-01/ses-1/beh/sub-01_ses-1_task-gender_beh.tsv")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: trial file not found")
    table, torn = _read_table(path, required, "trial file")
    table = check_trials(table, path)
    table.attrs["torn_line"] = torn.decode("utf-8", errors="replace") if torn else None
    if torn and warn is not None:
        warn(f"{path}, line {len(table) + 2}: a torn last line (no newline: cut off by a crash) was left out")
    return table


def _read_table(path: Path, required: Sequence[str], what: str) -> tuple[pd.DataFrame, bytes]:
    """A tab-separated file as strings, each row checked, and its torn last line (if any)."""
    lines, torn = split_lines(path.read_bytes(), path)
    if not lines:
        raise InputError(f"{path}: empty {what} (no header)")
    header = lines[0].split("\t")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return pd.DataFrame(_check_rows(path, header, lines), columns=header, dtype=str), torn


def read_frame_events(trial_file: str | os.PathLike, warn: Callable[[str], None] | None = None
                      ) -> pd.DataFrame | None:
    """A session's frame intervals (the ``*_events.tsv`` next to ``trial_file``).

    A torn last line (a crash inside the append) is left out and passed to ``warn``; anything
    else that is wrong is one :class:`~stimuli.InputError` naming the file and line.

    Parameters
    ----------
    trial_file : str or path-like
        The trial file (``..._beh.tsv``).
    warn : callable, optional
        Receives the note about a torn last line.

    Returns
    -------
    pandas.DataFrame or None
        The intervals; None when the session wrote none (no screen, or written before frame
        intervals were saved).
    """
    path = events_path(trial_file)
    if not path.is_file():
        return None
    table, torn = _read_table(path, EVENTS_COLUMNS, "frame-interval file")
    if torn and warn is not None:
        warn(f"{path}, line {len(table) + 2}: a torn last line (cut off by a crash) was left out")
    table = table.replace("n/a", np.nan)
    for column in ("onset", "duration", "trial", "dropped"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna()
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise InputError(f"{path}, line {line}: {column} '{table[column][bad].iloc[0]}' is not a number")
        table[column] = values
    return table


@dataclass(frozen=True)
class TrialFile:
    """One trial file found under a data root (:func:`find_trial_files`).

    Parameters
    ----------
    participant, session, task : str
        The BIDS labels in its name.
    path : Path
        The file.
    """
    participant: str
    session: str
    task: str
    path: Path


def find_trial_files(data_root: str | os.PathLike, task: str | None = None) -> list[TrialFile]:
    """All trial files under ``data_root`` (optionally of one task), sorted by participant and session.

    Parameters
    ----------
    data_root : str or path-like
        The BIDS data root.
    task : str, optional
        Only this task's files.

    Returns
    -------
    list of TrialFile
        The files found.
    """
    root = Path(data_root)
    if not root.is_dir():
        raise InputError(f"{root}: data root not found")
    pattern = re.compile(r"sub-([A-Za-z0-9]+)_ses-([A-Za-z0-9]+)_task-([A-Za-z0-9]+)_beh\.tsv")
    found = []
    for path in sorted(root.glob("sub-*/ses-*/beh/*_beh.tsv")):
        match = pattern.fullmatch(path.name)
        if match and (task is None or match.group(3) == task):
            found.append(TrialFile(match.group(1), match.group(2), match.group(3), path))
    return found
