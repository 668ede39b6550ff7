"""Provenance records and all-or-nothing writes for every output folder.

Every folder a command makes holds ``provenance.json``: the command line, the
config, the seeds, the git commit, package versions, hashes of the input files
and the start and end time. Files are written atomically (temporary file, then
rename) so a crash never leaves a half-written output that looks finished.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "file_sha256",
    "git_commit",
    "package_versions",
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_save_npz",
    "atomic_output_dir",
    "Provenance",
    "read_provenance",
]

_PACKAGES = (
    "face-relevance", "numpy", "scipy", "pandas", "torch", "torchvision", "zennit",
    "pingouin", "matplotlib", "pillow", "psychopy", "onnx",
)
_REPO_ROOT = Path(__file__).resolve().parent.parent


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def git_commit(root: str | os.PathLike = _REPO_ROOT) -> str | None:
    """The commit of the code that runs, with ``+dirty`` when the tree has changes; None outside git."""
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
    """Installed versions of the packages that shape results (None where absent)."""
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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
    """Atomic text write (UTF-8)."""
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
    """Atomic JSON write, indented, with numpy values converted."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def atomic_save_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """Atomic ``numpy.savez_compressed``."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def atomic_output_dir(final: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Build an output folder in a temporary sibling and move it into place only on success.

    A crash or an error leaves no folder at ``final`` (and removes the temporary one),
    so a finished-looking output is always complete. With ``replace=True`` an existing
    folder is swapped out at the end; without it, an existing folder is an error.
    """
    final = Path(final)
    if final.exists() and not replace:
        raise FileExistsError(f"{final} exists already")
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield work
        if final.exists():
            trash = final.with_name(f".{final.name}.old")
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(final, trash)
            os.replace(work, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(work, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class Provenance:
    """Collects what made an output folder and writes it as ``provenance.json``.

    Examples
    --------
    >>> prov = Provenance(config={"size": 128}, seeds={"split": 0})  # doctest: +SKIP
    >>> prov.add_input("faces.csv")                                   # doctest: +SKIP
    >>> prov.write(out_dir)                                           # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        command: list[str] | None = None,
        config: Mapping[str, Any] | None = None,
        seeds: Mapping[str, Any] | None = None,
        inputs: Iterable[str | os.PathLike] = (),
    ) -> None:
        self.command = list(command if command is not None else sys.argv)
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

    def write(self, folder: str | os.PathLike) -> Path:
        """Write ``provenance.json`` into ``folder`` (atomically)."""
        return atomic_write_json(Path(folder) / "provenance.json", self.as_dict())


def read_provenance(folder: str | os.PathLike) -> dict[str, Any]:
    """Read a folder's ``provenance.json``."""
    return json.loads((Path(folder) / "provenance.json").read_text())
