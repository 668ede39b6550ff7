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
- lock, then look: every write to a session (creating it, resuming it, cutting a torn tail)
  happens under an exclusive lock on its trial file, taken before anything is read or cut and
  held on the same file descriptor until the last write; a second process that wants the
  session is refused with one line before it reads or changes anything;
- the sidecar (which holds the session's provenance) and ``participants.tsv`` are replaced
  atomically (``participants.tsv`` under a lock, keeping every existing row and column; its
  ``participants.json`` is kept in step, see :mod:`experiments.bids`).

Examples
--------
>>> files = SessionFiles("participants", "01", 1, "gender")            # doctest: +SKIP
>>> files.create(columns, sidecar); files.append(row); files.close()   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError
from stimuli.contracts.names import check_label
from stimuli.contracts.provenance import atomic_write_json, atomic_write_text, file_mode
from stimuli.contracts.trials import read_sidecar, sidecar_path, split_lines, trial_file_path

from .bids import describe_participants, participant_columns, participants_lock
from .task import NA

__all__ = [
    "PARTICIPANT_COLUMNS",
    "SessionFiles",
    "format_value",
    "check_sidecar_shape",
    "read_participants",
    "read_session_rows",
    "update_participants",
]

PARTICIPANT_COLUMNS = tuple(participant_columns())  # the tracked template's header (experiments/templates/)


def format_value(value: Any) -> str:
    """One cell of a trial file: ``n/a`` for missing, integers plain, floats to full precision.

    Parameters
    ----------
    value : object
        A cell's value (None, NaN, a number, text).

    Returns
    -------
    str
        The cell as written.

    Raises
    ------
    ValueError
        Text holding a tab or a newline (it would break the row).
    """
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


def read_session_rows(path: str | os.PathLike, data: bytes | None = None
                      ) -> tuple[list[str], pd.DataFrame, bytes]:
    """A trial file as written by :class:`SessionFiles`: header, complete rows, torn tail.

    A complete row ends with a newline; bytes after the last newline are a row cut off by a
    crash and are returned separately (the rows keep ``n/a`` and all values as text).
    ``data`` is the file's bytes when the caller has read them already (under the lock).

    Parameters
    ----------
    path : str or os.PathLike
        The trial file.
    data : bytes, optional
        Its bytes, when already read.

    Returns
    -------
    tuple
        ``(header, rows, torn)``: the column names, the complete rows (a DataFrame of text) and
        the bytes of a torn last line (empty if none).
    """
    data = Path(path).read_bytes() if data is None else data
    lines, torn = split_lines(data, path)
    if not lines:
        raise InputError(f"{path}: no header line (the file is empty or torn)")
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:] if line]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise InputError(f"{path}, line {number}: {len(row)} fields where the header has {len(header)}")
    return header, pd.DataFrame(rows, columns=header, dtype=str), torn


class SessionFiles:
    """The files of one session: the trial file and its sidecar under ``beh/``.

    Parameters
    ----------
    data_root : str or os.PathLike
        The BIDS dataset the session belongs to.
    participant, session : str
        BIDS labels (letters and digits).
    task : str
        The BIDS task label (names the trial file).
    """

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
        """The session's sidecar, checked to have the shape a resume needs (one line if not)."""
        sidecar = read_sidecar(self.path)
        if sidecar is None:
            raise InputError(f"{self.sidecar_path}: the session's sidecar is missing; cannot resume "
                             "without its seed and config")
        check_sidecar_shape(sidecar, self.sidecar_path)
        return sidecar

    def lock(self) -> None:
        """Take the session's lock on its existing trial file, before anything is read or cut."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            raise InputError(f"{self.path}: trial file missing (the sidecar exists); cannot resume") from None
        self._hold(fd)

    def _hold(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(f"{self.path}: this session is running in another process "
                             "(nothing was changed)") from None
        self._fd = fd

    def _locked(self) -> int:
        if self._fd is None:
            raise RuntimeError("the session's lock is not held: call lock() first")
        return self._fd

    def read(self) -> tuple[pd.DataFrame, bytes]:
        """The complete rows on disk (as text) and the torn tail, if any (read under the lock)."""
        fd = self._locked()
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0)
        header, rows, torn = read_session_rows(self.path, data)
        self.columns = header
        return rows, torn

    # --- writing -------------------------------------------------------------------------------
    def create(self, columns: Sequence[str], sidecar: Mapping[str, Any]) -> None:
        """Start a new session: the trial file with its header (refuses to overwrite), then the sidecar.

        The header is written to a locked temporary file that is then hard-linked into place:
        the session appears whole and already locked.
        """
        self.columns = list(columns)
        self.folder.mkdir(parents=True, exist_ok=True)
        header = ("\t".join(self.columns) + "\n").encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.folder)
        try:
            os.fchmod(fd, file_mode())  # mkstemp makes 0600: the lab's umask decides who reads the data
            fcntl.flock(fd, fcntl.LOCK_EX)  # a fresh inode: nobody else can hold it
            os.write(fd, header)
            os.fsync(fd)
            try:
                os.link(tmp, self.path)  # atomic, and fails if the session appeared meanwhile
            except FileExistsError:
                raise InputError(f"{self.path}: this session exists already; add --resume to continue it "
                                 "or choose another --session") from None
        except BaseException:
            os.close(fd)
            raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        self._fd = fd
        self.write_sidecar(sidecar)

    def reopen(self, torn: bytes) -> None:
        """Continue a locked session: cut off a torn last line, then append after the complete rows."""
        fd = self._locked()
        if torn:
            size = os.fstat(fd).st_size
            if os.pread(fd, len(torn), size - len(torn)) != torn:
                raise RuntimeError(f"{self.path}: the torn tail changed under the lock")
            os.ftruncate(fd, size - len(torn))
            os.fsync(fd)

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
        self._locked()  # only the lock's holder writes the session's files
        atomic_write_json(self.sidecar_path, dict(sidecar))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def __enter__(self) -> SessionFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# what a resume reads from a sidecar: key -> (type, what it must be)
_SIDECAR_SHAPE: dict[str, tuple[type | tuple[type, ...], str]] = {
    "ExperimentConfig": (dict, "a mapping (the experiment config)"),
    "Observer": (dict, "a mapping (the observer)"),
    "Seed": (int, "an integer (the session seed)"),
    "Session": (dict, "a mapping (status, start time, resumes)"),
}


def check_sidecar_shape(sidecar: Any, where: str | os.PathLike) -> None:
    """Refuse, in one line, a sidecar that is valid JSON but not the shape a resume reads.

    Parameters
    ----------
    sidecar : object
        The parsed sidecar JSON.
    where : str or os.PathLike
        The sidecar file, for the message.

    Examples
    --------
    >>> check_sidecar_shape([], "s.json")
    Traceback (most recent call last):
    stimuli.contracts.errors.InputError: s.json: the sidecar must be a JSON object (it is a list); the file was edited
    """
    if not isinstance(sidecar, dict):
        raise InputError(f"{where}: the sidecar must be a JSON object (it is a {type(sidecar).__name__}); "
                         "the file was edited")
    for key, (kind, what) in _SIDECAR_SHAPE.items():
        value = sidecar.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InputError(f"{where}: key '{key}' must be {what}, not {type(value).__name__}; "
                             "the file was edited")
    session = sidecar["Session"]
    if not isinstance(session.get("resumes", []), list):
        raise InputError(f"{where}: key 'Session.resumes' must be a list; the file was edited")
    started = session.get("started_unix")
    if started is not None and (isinstance(started, bool) or not isinstance(started, (int, float))):
        raise InputError(f"{where}: key 'Session.started_unix' must be a number or null; the file was edited")
    if not isinstance(sidecar["Observer"].get("spec", ""), str):
        raise InputError(f"{where}: key 'Observer.spec' must be a string; the file was edited")


def read_participants(data_root: str | os.PathLike) -> tuple[list[str], list[list[str]]]:
    """``<data_root>/participants.tsv`` checked: header and rows (a new list if the file is absent).

    It must be UTF-8, tab-separated, with a ``participant_id`` column and every row as wide as
    the header; anything else is one :class:`InputError` line (run before a session starts).

    Parameters
    ----------
    data_root : str or os.PathLike
        The BIDS dataset.

    Returns
    -------
    tuple
        ``(header, rows)`` of ``participants.tsv``.

    Examples
    --------
    >>> read_participants("/nonexistent")[0]
    ['participant_id', 'age', 'sex', 'handedness']
    """
    path = Path(data_root) / "participants.tsv"
    if not path.exists():
        return list(PARTICIPANT_COLUMNS), []
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    lines, torn = split_lines(path.read_bytes(), path)
    lines = [line for line in lines + ([torn.decode("utf-8", errors="replace")] if torn else []) if line.strip()]
    if not lines:
        return list(PARTICIPANT_COLUMNS), []
    header = lines[0].rstrip("\r").split("\t")
    if "participant_id" not in header:
        how = " (it is comma-separated; BIDS needs tabs)" if "," in lines[0] else ""
        raise InputError(f"{path}, line 1: header lacks 'participant_id'{how}; fix the file, then rerun")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        row = line.rstrip("\r").split("\t")
        if len(row) != len(header):
            raise InputError(f"{path}, line {number}: {len(row)} fields where the header has {len(header)} "
                             "(tab-separated, n/a for missing); fix the file, then rerun")
        rows.append(row)
    return header, rows


def update_participants(data_root: str | os.PathLike, participant: str, info: Mapping[str, Any]) -> Path:
    """Add a participant's row to ``<data_root>/participants.tsv`` if it is not there yet.

    Existing rows and columns are kept; a new column in ``info`` is added with ``n/a`` for
    the others, and described in ``participants.json`` (:func:`experiments.bids.describe_participants`).
    Read-modify-write happens under a lock and the file is replaced atomically.
    :func:`read_participants` checks the file first (run it before a session starts too).

    Parameters
    ----------
    data_root : str or os.PathLike
        The BIDS dataset.
    participant : str
        The participant label (without ``sub-``).
    info : mapping
        Column -> value of the participant's row.

    Returns
    -------
    Path
        ``participants.tsv``.
    """
    root = Path(data_root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "participants.tsv"
    participant_id = f"sub-{check_label(participant, 'participant')}"
    with participants_lock(root):
        header, rows = read_participants(root)
        column = header.index("participant_id")
        if not any(r[column] == participant_id for r in rows):
            for key in info:
                if key not in header:
                    header.append(key)
                    rows = [r + [NA] for r in rows]
            values = {"participant_id": participant_id, **{k: format_value(v) for k, v in info.items()}}
            rows.append([values.get(c, NA) for c in header])
            text = "\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows)
            atomic_write_text(path, text)
        describe_participants(root, header)
    return path
