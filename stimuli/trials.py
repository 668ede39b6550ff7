"""The trial file: one format for people, simulated and model observers.

``<data-root>/sub-<id>/ses-<n>/beh/sub-<id>_ses-<n>_task-<task>_beh.tsv`` (BIDS-style), one
row per trial, with a JSON sidecar of the same name (``.json``) that describes every column
and records the experiment config, stimulus set, observer, screen and software.
``experiments`` writes it (row by row, flushed as each trial ends); ``analysis`` reads it with
:func:`read_trials`. The column list below is the single definition both use.

Examples
--------
>>> trial_file_path("participants", "01", 1, "gender").as_posix()
'participants/sub-01/ses-1/beh/sub-01_ses-1_task-gender_beh.tsv'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = [
    "TRIAL_COLUMNS",
    "SIMILARITY_COLUMNS",
    "check_label",
    "trial_file_path",
    "sidecar_path",
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

_LABEL = re.compile(r"[A-Za-z0-9]+")


def check_label(value: object, what: str) -> str:
    """A BIDS label (participant or session): letters and digits only."""
    text = str(value).strip()
    if not _LABEL.fullmatch(text):
        raise InputError(f"{what} '{value}' must be letters and digits only (BIDS label), e.g. 01")
    return text


def trial_file_path(data_root: str | os.PathLike, participant: str, session: int | str, task: str) -> Path:
    """Where one session's trial file lives."""
    sub, ses = check_label(participant, "participant"), check_label(session, "session")
    task = check_label(task, "task")
    return Path(data_root) / f"sub-{sub}" / f"ses-{ses}" / "beh" / f"sub-{sub}_ses-{ses}_task-{task}_beh.tsv"


def sidecar_path(trial_file: str | os.PathLike) -> Path:
    return Path(trial_file).with_suffix(".json")


def read_trials(path: str | os.PathLike, *, required: tuple[str, ...] = tuple(TRIAL_COLUMNS)) -> pd.DataFrame:
    """Read a trial file, checking the contract's columns; one clear error per problem.

    ``n/a`` cells (BIDS) become missing values. A last line cut off by a crash (fewer
    fields than the header) is dropped, not fatal: every complete trial is kept.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: trial file not found")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines:
        raise InputError(f"{path}: empty trial file (no header)")
    header = lines[0].split("\t")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    rows = [line.split("\t") for line in lines[1:] if line]
    complete = [r for r in rows if len(r) == len(header)]
    if len(complete) < len(rows) - 1 or (rows and len(rows[-1]) > len(header)):
        raise InputError(f"{path}: malformed rows (a row's fields do not match the header)")
    table = pd.DataFrame(complete, columns=header, dtype=str).replace("n/a", np.nan)
    numeric = {"trial": int, "block": int, "n_bubbles": int, "mask_seed": int, "response_position": float,
               "correct": float, "rt_s": float, "sigma_px": float, "onset_s": float,
               "dropped_frames": float}
    for column, kind in numeric.items():
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
    return table


@dataclass(frozen=True)
class TrialFile:
    participant: str
    session: str
    task: str
    path: Path


def find_trial_files(data_root: str | os.PathLike, task: str | None = None) -> list[TrialFile]:
    """All trial files under ``data_root`` (optionally of one task), sorted by participant and session."""
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
