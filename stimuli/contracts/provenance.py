"""Provenance records and all-or-nothing file writes for every output.

Every folder a command makes holds ``provenance.json`` (:func:`record_run`, the one writer):
the command line (and the command's name, e.g. ``analysis ci``), the config, the seeds, the
git commit, package versions, hashes of the input files and the start and end time. Files
are written atomically (temporary file, then rename) so a crash never leaves a half-written
output that looks finished. Written files and folders get the modes the process umask gives
(``0666 & ~umask``, ``0777 & ~umask``), as ``open`` and ``mkdir`` would, so a lab's group
setting applies to every output.

Whole output folders, and the rule of which folder a command may replace, are
:mod:`stimuli.contracts.outputs`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "file_sha256",
    "git_commit",
    "package_versions",
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_save_npz",
    "command_name",
    "file_mode",
    "dir_mode",
    "Provenance",
    "record_run",
    "read_provenance",
]

_PACKAGES = (
    "face-relevance", "numpy", "scipy", "pandas", "torch", "torchvision", "zennit",
    "pingouin", "matplotlib", "pillow", "psychopy", "onnx",
)
_REPO_ROOT = Path(__file__).resolve().parents[2]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes.

    Parameters
    ----------
    path : str or path-like
        The file.
    chunk : int
        Bytes read at a time.

    Returns
    -------
    str
        64 hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def git_commit(root: str | os.PathLike = _REPO_ROOT) -> str | None:
    """The commit of the code that runs, with ``+dirty`` when the tree has changes; None outside git.

    Parameters
    ----------
    root : str or path-like
        The checkout (default: this repository).

    Returns
    -------
    str or None
        The commit hash (``+dirty`` added), or None.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=5,
        )
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages that shape results (None where absent).

    Parameters
    ----------
    names : iterable of str
        Distribution names (default: the platform's dependencies).

    Returns
    -------
    dict of str to str or None
        name -> version.
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where the system allows (Linux /proc)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc: read it by setting it (and put it back at once)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new file under the current umask (``0o666 & ~umask``), as ``open`` gives.

    ``tempfile.mkstemp`` makes 0600 files whatever the umask; atomic writes reset the mode
    to this so a lab's group-readable (umask 0002) or private (umask 0077) setting holds.

    Returns
    -------
    int
        The permission bits.
    """
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Mode of a new folder under the current umask (``0o777 & ~umask``), as ``mkdir`` gives.

    Returns
    -------
    int
        The permission bits.
    """
    return 0o777 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written).

    The file gets the mode the umask gives a new file (see :func:`file_mode`).

    Parameters
    ----------
    path : str or path-like
        The file to write (its folder is made when missing).
    data : bytes
        The contents.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomic text write (UTF-8).

    Parameters
    ----------
    path : str or path-like
        The text file (its folder is made when missing).
    text : str
        The contents, written as UTF-8.

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Atomic JSON write, indented, with numpy values converted.

    Parameters
    ----------
    path : str or path-like
        The file to write (its folder is made when missing).
    data : object
        JSON-ready data (numpy scalars and arrays allowed).

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def atomic_save_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """Atomic ``numpy.savez_compressed``.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file; its folder is made when missing.
    **arrays : array-like
        The arrays by name.

    Returns
    -------
    Path
        ``path``.
    """
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def command_name(argv: Sequence[str] | None = None) -> str:
    """The command a command line runs, as ``<package> <subcommand>`` (e.g. ``analysis ci``).

    Reads both forms a command line is recorded in: ``python -m analysis ci ...`` and
    ``.../analysis/__main__.py ci ...`` (``sys.argv`` of ``python -m``).

    Parameters
    ----------
    argv : sequence of str, optional
        The command line (default: ``sys.argv``).

    Returns
    -------
    str
        ``"<package> <subcommand>"`` (``""`` for an empty command line).

    Examples
    --------
    >>> command_name(["python", "-m", "stimuli", "render", "--mode", "random"])
    'stimuli render'
    >>> command_name(["/repo/analysis/__main__.py", "ci", "--task", "gender"])
    'analysis ci'
    """
    args = [str(a) for a in (sys.argv if argv is None else argv)]
    if len(args) >= 3 and args[1] == "-m":
        package, rest = args[2], args[3:]
    elif args and Path(args[0]).name == "__main__.py":
        package, rest = Path(args[0]).parent.name, args[1:]
    elif args:
        package, rest = Path(args[0]).name, args[1:]
    else:
        return ""
    sub = next((a for a in rest if not a.startswith("-")), "")
    return f"{package} {sub}".strip()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class Provenance:
    """Collects what made an output folder and writes it as ``provenance.json``.

    ``tool`` names the command (e.g. ``"analysis ci"``; default: read from ``command``);
    it is what :func:`stimuli.contracts.outputs.check_replaceable` compares before replacing
    the folder.

    Parameters
    ----------
    command : list of str, optional
        The command line (default: ``sys.argv``).
    config : mapping, optional
        The resolved configuration.
    seeds : mapping, optional
        Every seed the run used, by name.
    inputs : iterable of path
        Input files, recorded with their SHA-256 (:meth:`add_input` adds more).
    tool : str, optional
        The command's name.

    Examples
    --------
    >>> prov = Provenance(config={"size": 128}, seeds={"split": 0})  # doctest: +SKIP
    >>> prov.add_input("faces.csv")                                   # doctest: +SKIP
    >>> record_run(out_dir, prov)                                     # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        command: list[str] | None = None,
        config: Mapping[str, Any] | None = None,
        seeds: Mapping[str, Any] | None = None,
        inputs: Iterable[str | os.PathLike] = (),
        tool: str | None = None,
    ) -> None:
        self.command = list(command if command is not None else sys.argv)
        # the command's name (e.g. "analysis ci"): only that command may replace the folder
        self.tool = tool or command_name(self.command)
        self.config = dict(config or {})
        self.seeds = dict(seeds or {})
        self.inputs: dict[str, str] = {}
        self.extra: dict[str, Any] = {}
        self.started = _now()
        for path in inputs:
            self.add_input(path)

    def add_input(self, path: str | os.PathLike, digest: str | None = None) -> None:
        """Record an input file by its SHA-256 (computed unless given)."""
        self.inputs[str(path)] = digest or file_sha256(path)

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "tool": self.tool,
            "cwd": os.getcwd(),
            "config": self.config,
            "seeds": self.seeds,
            "git_commit": git_commit(),
            "versions": package_versions(),
            "platform": platform.platform(),
            "inputs": self.inputs,
            "started": self.started,
            "finished": _now(),
            **self.extra,
        }



def record_run(folder: str | os.PathLike, provenance: Provenance, *, run: str | None = None,
               output: str | os.PathLike | None = None, name: str = "provenance.json") -> Path:
    """Write ``folder/provenance.json``: the one way every command records what made its output.

    Parameters
    ----------
    folder : path
        The output folder (or its temporary twin inside :func:`atomic_output_dir`).
    provenance : Provenance
        What the run collected (command, config, seeds, inputs, start time).
    run, output : str and path, optional
        For folders that several runs add files to (a variant's relevance folder holds one file
        per stimulus set): the run's name and its output file. Earlier runs are kept under
        ``runs`` with each output's SHA-256, so the folder's record covers every file in it.
    name : str
        The record's file name: ``provenance.json``, or ``<file>.provenance.json`` for a command
        whose output is one file rather than a folder (``model convert-weights``).

    Returns
    -------
    Path
        The record written (atomically).
    """
    folder = Path(folder)
    if run is not None:
        runs: dict[str, Any] = {}
        if (folder / "provenance.json").is_file():
            try:
                runs = dict(read_provenance(folder).get("runs", {}))
            except (OSError, json.JSONDecodeError, AttributeError):
                runs = {}
        runs[run] = {"command": provenance.command, "config": provenance.config,
                     "started": provenance.started}
        if output is not None:
            runs[run] |= {"output": Path(output).name, "sha256": file_sha256(output)}
        provenance.extra["runs"] = runs
    return atomic_write_json(folder / name, provenance.as_dict())


def read_provenance(folder: str | os.PathLike) -> dict[str, Any]:
    """Read a folder's ``provenance.json``.

    Parameters
    ----------
    folder : str or path-like
        The output folder holding ``provenance.json``.

    Returns
    -------
    dict
        The record.
    """
    return json.loads((Path(folder) / "provenance.json").read_text())
