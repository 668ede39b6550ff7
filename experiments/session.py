"""Session files: the trial file written row by row, its sidecar, participants.tsv, resume.

Crash safety, in order of what can go wrong:

- every row is one ``os.write`` of a whole line to a file opened ``O_APPEND``, then
  ``fsync``: a crash (even SIGKILL or power loss after the fsync) loses at most the trial
  on screen;
- a torn last line (no final newline: the process died inside the write) is cut off on
  resume and recorded in the sidecar, so it can never merge with the next row;
- the file is created with its header in one step (written aside, then hard-linked into
  place, which fails if the file exists), and an existing session is never opened for
  writing unless ``--resume`` was asked: the refusal happens before anything is written;
- a running session holds an exclusive lock on its trial file, so a second process cannot
  resume it at the same time;
- the sidecar, ``provenance.json`` and ``participants.tsv`` are replaced atomically
  (``participants.tsv`` under a lock, keeping every existing row and column).

Examples
--------
>>> files = SessionFiles("participants", "01", 1, "gender")            # doctest: +SKIP
>>> files.create(columns, sidecar); files.append(row); files.close()   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stimuli.errors import InputError
from stimuli.provenance import atomic_write_json, atomic_write_text, file_mode
from stimuli.trials import check_label, sidecar_path, trial_file_path

from .task import NA

__all__ = [
    "PARTICIPANT_COLUMNS",
    "SessionFiles",
    "format_value",
    "read_session_rows",
    "update_participants",
]

PARTICIPANT_COLUMNS = ("participant_id", "age", "sex", "handedness")


def format_value(value: Any) -> str:
    """One cell of a trial file: ``n/a`` for missing, integers plain, floats to full precision."""
    if value is None:
        return NA
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return NA
        return format(float(value), ".10g")
    text = str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        raise ValueError(f"a trial-file cell cannot hold tabs or newlines: {text[:40]!r}")
    return text if text else NA


def read_session_rows(path: str | os.PathLike) -> tuple[list[str], pd.DataFrame, bytes]:
    """A trial file as written by :class:`SessionFiles`: header, complete rows, torn tail.

    A complete row ends with a newline; bytes after the last newline are a row cut off by a
    crash and are returned separately (the rows keep ``n/a`` and all values as text).
    """
    data = Path(path).read_bytes()
    end = data.rfind(b"\n") + 1
    complete, torn = data[:end], data[end:]
    lines = complete.decode("utf-8").split("\n")[:-1] if complete else []
    if not lines:
        raise InputError(f"{path}: no header line (the file is empty or torn)")
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:] if line]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise InputError(f"{path}, line {number}: {len(row)} fields where the header has {len(header)}")
    return header, pd.DataFrame(rows, columns=header, dtype=str), torn


class SessionFiles:
    """The files of one session: trial file, sidecar and provenance under ``beh/``."""

    def __init__(self, data_root: str | os.PathLike, participant: str, session: int | str, task: str) -> None:
        self.data_root = Path(data_root)
        self.participant = check_label(participant, "participant")
        self.session = check_label(session, "session")
        self.path = trial_file_path(data_root, self.participant, self.session, task)
        self.sidecar_path = sidecar_path(self.path)
        self.folder = self.path.parent
        self.columns: list[str] = []
        self._fd: int | None = None

    def exists(self) -> bool:
        """Whether this session was started before (its trial file or sidecar is there)."""
        return self.path.exists() or self.sidecar_path.exists()

    def read_sidecar(self) -> dict[str, Any]:
        try:
            return json.loads(self.sidecar_path.read_text())
        except FileNotFoundError:
            raise InputError(f"{self.sidecar_path}: the session's sidecar is missing; cannot resume "
                             "without its seed and config") from None
        except json.JSONDecodeError as error:
            raise InputError(f"{self.sidecar_path}: unreadable sidecar ({error})") from None

    def read(self) -> tuple[pd.DataFrame, bytes]:
        """The complete rows on disk (as text) and the torn tail, if any."""
        if not self.path.exists():
            raise InputError(f"{self.path}: trial file missing (the sidecar exists); cannot resume")
        header, rows, torn = read_session_rows(self.path)
        self.columns = header
        return rows, torn

    # --- writing -------------------------------------------------------------------------------
    def create(self, columns: Sequence[str], sidecar: Mapping[str, Any]) -> None:
        """Start a new session: sidecar, then the trial file with its header (refuses to overwrite)."""
        self.columns = list(columns)
        self.folder.mkdir(parents=True, exist_ok=True)
        header = ("\t".join(self.columns) + "\n").encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.folder)
        try:
            os.fchmod(fd, file_mode())  # mkstemp makes 0600: the lab's umask decides who reads the data
            os.write(fd, header)
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(tmp, self.path)  # atomic, and fails if the session appeared meanwhile
            except FileExistsError:
                raise InputError(f"{self.path}: this session exists already; add --resume to continue it "
                                 "or choose another --session") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.write_sidecar(sidecar)
        self._open()

    def reopen(self, torn: bytes) -> None:
        """Continue a session: cut off a torn last line, then append after the complete rows."""
        if torn:
            size = self.path.stat().st_size
            os.truncate(self.path, size - len(torn))
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(f"{self.path}: this session is running in another process") from None
        self._fd = fd

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one finished trial: one write of the whole line, then fsync."""
        if self._fd is None:
            raise RuntimeError("session file is not open")
        line = "\t".join(format_value(row.get(c)) for c in self.columns) + "\n"
        data = line.encode("utf-8")
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (rare): finish the line
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)

    def write_sidecar(self, sidecar: Mapping[str, Any]) -> None:
        atomic_write_json(self.sidecar_path, dict(sidecar))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def __enter__(self) -> SessionFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def update_participants(data_root: str | os.PathLike, participant: str, info: Mapping[str, Any]) -> Path:
    """Add a participant's row to ``<data_root>/participants.tsv`` if it is not there yet.

    Existing rows and columns are kept; a new column in ``info`` is added with ``n/a`` for
    the others. Read-modify-write happens under a lock and the file is replaced atomically.
    """
    root = Path(data_root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "participants.tsv"
    participant_id = f"sub-{check_label(participant, 'participant')}"
    with open(root / ".participants.tsv.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if path.exists():
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            header = lines[0].split("\t") if lines else list(PARTICIPANT_COLUMNS)
            rows = [line.split("\t") for line in lines[1:]]
        else:
            header, rows = list(PARTICIPANT_COLUMNS), []
        if "participant_id" not in header:
            raise InputError(f"{path}: header lacks 'participant_id'")
        column = header.index("participant_id")
        if any(len(r) > column and r[column] == participant_id for r in rows):
            return path
        for key in info:
            if key not in header:
                header.append(key)
                rows = [r + [NA] for r in rows]
        values = {"participant_id": participant_id, **{k: format_value(v) for k, v in info.items()}}
        rows.append([values.get(c, NA) for c in header])
        text = "\t".join(header) + "\n" + "".join("\t".join(r + [NA] * (len(header) - len(r))) + "\n"
                                                 for r in rows)
        atomic_write_text(path, text)
    return path
