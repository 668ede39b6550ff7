"""Frame intervals of a human session: ``*_events.tsv`` next to the trial file (BIDS events).

The display times every flip of a trial (inter-trial blank, fixation, stimulus, response,
feedback) and hands the times over with the trial's answer (:class:`FrameTimes`). After the
trial's row is in the trial file, :meth:`FrameLog.append` adds one row per flip:

==========  ===========================================================================
onset       seconds from the session's first recorded flip
duration    seconds from this flip to the next one (the frame interval)
trial_type  ``frame``
trial       the trial number (the trial file's ``trial``)
dropped     1 when ``duration`` exceeded the window's refresh threshold, else 0
==========  ===========================================================================

A trial's last flip starts the next blank and has no next flip in the trial, so it has no
row: a trial of n flips gives n - 1 rows. A trial cut short by the quit key is not in the
trial file and leaves no rows either (it is shown again on resume). The file is written like the trial file: created
with its header in one step, each trial's rows one ``os.write`` then ``fsync``, a torn last
line (a crash inside the write) cut off when the session is resumed, nothing else ever
rewritten. ``*_events.json`` describes the columns and is written once, before the first row;
it also holds ``FirstFlipSessionTime`` (when the first recorded flip came, in seconds on the
trial file's ``onset_s`` clock), so that a resumed session's onsets continue on the same clock.

Simulated observers have no screen and write no such file; readers treat a missing file as
"not measured".

Examples
--------
>>> rows = frame_rows(3, [10.0, 10.0167, 10.0333, 10.0834], threshold_s=0.0207, origin=10.0)
>>> [r.split("\\t") for r in rows][-1]
['0.033300', '0.050100', 'frame', '3', '1']
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import atomic_write_json, file_mode
from stimuli.contracts.trials import EVENTS_COLUMNS, events_path, split_lines

__all__ = ["COLUMNS", "FrameTimes", "FrameLog", "events_path", "frame_rows", "events_sidecar"]

COLUMNS = EVENTS_COLUMNS
ORIGIN_KEY = "FirstFlipSessionTime"
# what BIDS recommends in the sidecar of any task data file: copied from the trial file's sidecar
TASK_KEYS = ("TaskName", "TaskDescription", "Instructions", "CogAtlasID", "CogPOID", "InstitutionName",
             "InstitutionAddress", "InstitutionalDepartmentName")


@dataclass(frozen=True)
class FrameTimes:
    """The flips of one trial: their times (seconds, the trial file's ``onset_s`` clock) and the
    window's refresh threshold (PsychoPy ``Window.refreshThreshold``) above which a frame was dropped.

    Parameters
    ----------
    flips : tuple of float
        Flip times in seconds.
    threshold_s : float
        A frame interval above this was a dropped frame.
    """

    flips: tuple[float, ...]
    threshold_s: float


def frame_rows(trial: int, flips: Sequence[float], *, threshold_s: float, origin: float) -> list[str]:
    """One tab-separated line (no newline) per flip that has a next flip in ``flips``.

    Parameters
    ----------
    trial : int
        The trial number.
    flips : sequence of float
        The trial's flip times.
    threshold_s : float
        The dropped-frame threshold.
    origin : float
        The clock's origin (seconds).

    Returns
    -------
    list of str
        The events-file lines.
    """
    rows = []
    for now, following in zip(flips[:-1], flips[1:]):
        interval = following - now
        rows.append(f"{now - origin:.6f}\t{interval:.6f}\tframe\t{int(trial)}\t{int(interval > threshold_s)}")
    return rows


def events_sidecar(beh_sidecar: Mapping[str, Any], origin: float) -> dict[str, Any]:
    """``*_events.json``: the columns described (LongName, Description, Units), the task's BIDS
    description (``TASK_KEYS``) copied from the trial file's sidecar, and how the screen was presented.

    Parameters
    ----------
    beh_sidecar : mapping
        The trial file's sidecar.
    origin : float
        The clock's origin (seconds).

    Returns
    -------
    dict
        The events sidecar's content.
    """
    screen = beh_sidecar.get("Screen") or {}
    software = beh_sidecar.get("Software") or {}
    sidecar: dict[str, Any] = {key: beh_sidecar[key] for key in TASK_KEYS if key in beh_sidecar}
    sidecar.update({
        "onset": {"LongName": "Flip time",
                  "Description": "Time of the screen flip, from the session's first recorded flip (which came "
                                 f"{ORIGIN_KEY} seconds after the session started, on the clock of the trial "
                                 "file's onset_s).", "Units": "s"},
        "duration": {"LongName": "Frame interval",
                     "Description": "Time from this flip to the next flip of the same trial.", "Units": "s"},
        "trial_type": {"LongName": "Event type", "Description": "Every row is one screen flip (a frame).",
                       "Levels": {"frame": "a screen flip during a trial"}},
        "trial": {"LongName": "Trial number", "Description": "The trial the flip belongs to (the trial column "
                                                             "of the *_beh.tsv file)."},
        "dropped": {"LongName": "Dropped frame",
                    "Description": "Whether the frame interval exceeded the window's refresh threshold "
                                   f"({screen.get('dropped_frame_threshold_s', 'n/a')} s: one nominal frame "
                                   "plus 4 ms).",
                    "Levels": {"0": "on time", "1": "dropped (the interval exceeded the threshold)"}},
        ORIGIN_KEY: round(float(origin), 6),
    })
    presentation: dict[str, Any] = {"SoftwareName": "PsychoPy"}
    if software.get("psychopy"):
        presentation["SoftwareVersion"] = str(software["psychopy"])
    if screen.get("window_size"):
        presentation["ScreenResolution"] = [int(v) for v in screen["window_size"]]
    rate = screen.get("refresh_hz_measured") or screen.get("refresh_hz_nominal")
    if rate:
        presentation["ScreenRefreshRate"] = float(rate)
    if screen.get("distance_cm"):
        presentation["ScreenDistance"] = float(screen["distance_cm"]) / 100.0
    sidecar["StimulusPresentation"] = presentation
    return sidecar


class FrameLog:
    """The events file of one session, appended after each trial (by the holder of the session's lock).

    Nothing is touched until the first :meth:`append` that carries frame times, so a session
    whose observer has no screen leaves no events file.

    Parameters
    ----------
    trial_file : str or os.PathLike
        The session's trial file (the events file lies beside it).
    beh_sidecar : mapping
        Its sidecar.
    """

    def __init__(self, trial_file: str | os.PathLike, beh_sidecar: Mapping[str, Any]) -> None:
        self.path = events_path(trial_file)
        self.sidecar_path = self.path.with_suffix(".json")
        self._beh_sidecar = beh_sidecar
        self._origin: float | None = None

    def append(self, trial: int, frames: FrameTimes | None) -> None:
        """Add one trial's frames (a trial without frame times adds nothing)."""
        if frames is None or len(frames.flips) < 2:
            return
        if self._origin is None:
            self._origin = self._open(frames.flips[0])
        rows = frame_rows(trial, frames.flips, threshold_s=frames.threshold_s, origin=self._origin)
        data = "".join(row + "\n" for row in rows).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            written = os.write(fd, data)
            while written < len(data):  # a short write (rare): finish the rows
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)

    def _open(self, first_flip: float) -> float:
        """The session clock's time of the first recorded flip: read back, or this one for a new file."""
        if self.path.exists():
            return self._reopen(first_flip)
        atomic_write_json(self.sidecar_path, events_sidecar(self._beh_sidecar, first_flip))
        self._create()
        return first_flip

    def _create(self) -> None:
        """The header in one step: written aside, then hard-linked into place (never over a file)."""
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(fd, file_mode())
            os.write(fd, ("\t".join(COLUMNS) + "\n").encode("utf-8"))
            os.fsync(fd)
            os.link(tmp, self.path)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _reopen(self, first_flip: float) -> float:
        """Continue an existing file (a resumed session): check it, cut a torn last line."""
        data = self.path.read_bytes()
        lines, torn = split_lines(data, self.path)
        if not lines or lines[0].split("\t") != list(COLUMNS):
            raise InputError(f"{self.path}: not a frame-interval file (its header is not "
                             f"{' '.join(COLUMNS)}); move it aside to resume")
        if torn:  # the process died inside a write: those rows were never complete
            with open(self.path, "r+b") as handle:
                handle.truncate(len(data) - len(torn))
                os.fsync(handle.fileno())
        origin = _read_origin(self.sidecar_path)
        if origin is None:  # an events file without its sidecar: describe it now, from this flip
            atomic_write_json(self.sidecar_path, events_sidecar(self._beh_sidecar, first_flip))
            return first_flip
        return origin


def _read_origin(path: Path) -> float | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(ORIGIN_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
