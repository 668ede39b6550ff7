"""Provenance records and all-or-nothing writes for every output folder.

Every folder a command makes holds ``provenance.json``: the command line (and the
command's name, e.g. ``analysis ci``), the config, the seeds, the git commit, package
versions, hashes of the input files and the start and end time. Files are written
atomically (temporary file, then rename) so a crash never leaves a half-written output
that looks finished. Written files and folders get the modes the process umask gives
(``0666 & ~umask``, ``0777 & ~umask``), as ``open`` and ``mkdir`` would, so a lab's group
setting applies to every output.

An output folder is replaced only through :func:`check_replaceable` (called by
:func:`atomic_output_dir`): only a folder holding the same command's own
``provenance.json`` is replaced, never a data root, a folder with trial files, a results
root, the current directory, home or ``/``; the old folder is moved aside, never deleted.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

__all__ = [
    "file_sha256",
    "git_commit",
    "package_versions",
    "atomic_write_text",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_save_npz",
    "atomic_output_dir",
    "check_replaceable",
    "check_outside_data_root",
    "move_aside",
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
    """
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Mode of a new folder under the current umask (``0o777 & ~umask``), as ``mkdir`` gives."""
    return 0o777 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written).

    The file gets the mode the umask gives a new file (see :func:`file_mode`).
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
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def command_name(argv: Sequence[str] | None = None) -> str:
    """The command a command line runs, as ``<package> <subcommand>`` (e.g. ``analysis ci``).

    Reads both forms a command line is recorded in: ``python -m analysis ci ...`` and
    ``.../analysis/__main__.py ci ...`` (``sys.argv`` of ``python -m``).

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


# folders that mark a results root (what `--out`/`--results` commands make inside it)
RESULTS_ROOT_MARKERS = ("stimuli", "models", "relevance", "simulated", "analysis", "evaluate",
                        "groundtruth", "rdm")
# files that mark a BIDS data root
DATA_ROOT_MARKERS = ("dataset_description.json", "participants.tsv")


def _holds_data(folder: Path) -> Path | None:
    """The first data-root marker or trial file (``sub-*/ses-*/beh/*_beh.tsv``) at any depth."""
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        for name in files:
            if name in DATA_ROOT_MARKERS:
                return here / name
            if (name.endswith("_beh.tsv") and here.name == "beh" and here.parent.name.startswith("ses-")
                    and here.parent.parent.name.startswith("sub-")):
                return here / name
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
    return None


def _recorded_command(folder: Path) -> str | None:
    """The command named in a folder's ``provenance.json`` (None when there is none)."""
    try:
        record = json.loads((folder / "provenance.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("tool"), str):
        return record["tool"]
    command = record.get("command")
    return command_name(command) if isinstance(command, list) and command else None


def check_replaceable(
    folder: str | os.PathLike,
    *,
    command: str | None = None,
    protect: Iterable[str | os.PathLike] = (),
) -> None:
    """Refuse (InputError, one line) to replace ``folder`` unless it is ``command``'s own output.

    This is the one rule every command that replaces an output folder goes through
    (``--overwrite``, ``--force``, re-runs). A folder is replaced only when it holds a
    ``provenance.json`` written by the same command, ``command`` (e.g. ``"analysis ci"``;
    None checks everything else and leaves the match to the final check of
    :func:`atomic_output_dir`, which reads the new output's own record).

    Never replaced, whatever its provenance: ``/``, the home folder, the current directory or a folder holding any of them or a ``protect`` path
    (the ``--results`` root, the ``--data-root``); a data root (``dataset_description.json``
    or ``participants.tsv``, at any depth) or any folder holding a trial file
    ``sub-*/ses-*/beh/*_beh.tsv`` at any depth; a results root (a folder holding
    ``stimuli/``, ``models/``, ``relevance/``, ...). A folder that does not exist passes.

    Examples
    --------
    >>> check_replaceable("participants", command="analysis ci")   # doctest: +SKIP
    Traceback (most recent call last):
    InputError: participants: refusing to replace it: it is a data root (participants.tsv) ...
    """
    path = Path(folder)
    if not path.exists() and not path.is_symlink():
        return
    real = path.resolve()

    def refuse(why: str) -> None:
        raise InputError(f"{folder}: refusing to replace it: {why}; nothing was changed "
                         "(choose another --out)")

    if not real.is_dir():
        refuse("it is not a folder")
    guarded = {Path("/"): "the file-system root", Path.cwd().resolve(): "the current directory"}
    with contextlib.suppress(RuntimeError, KeyError):  # no home folder known: nothing to guard
        guarded[Path.home().resolve()] = "your home folder"
    guarded.update({Path(p).resolve(): "a results or data root this command reads" for p in protect})
    for place, what in guarded.items():
        if real == place or real in place.parents:
            refuse(f"it is {what}" if real == place else f"it holds {what} ({place})")
    roots = [m for m in DATA_ROOT_MARKERS if (real / m).exists()]
    if roots:
        refuse(f"it is a data root ({roots[0]})")
    markers = [m for m in RESULTS_ROOT_MARKERS if (real / m).is_dir()]
    if markers:
        refuse(f"it is a results root (it holds {', '.join(m + '/' for m in markers)})")
    data = _holds_data(real)
    if data is not None:
        refuse(f"it holds participant or simulated data ({data.relative_to(real)})")
    made_by = _recorded_command(real)
    if made_by is None:
        refuse(f"it holds no provenance.json, so it is not an output of `{command or 'this command'}`")
    if command is not None and made_by != command:
        refuse(f"it was made by `{made_by}`, not by `{command}`")


def check_outside_data_root(folder: str | os.PathLike) -> None:
    """Refuse (InputError, one line) an output folder inside a data root.

    A data root (``dataset_description.json`` or ``participants.tsv``) holds sessions and
    nothing a command makes: an output written into it would be a file BIDS does not name,
    and a later ``--overwrite`` of it would act next to participant data.
    """
    real = Path(folder).resolve()
    for place in real.parents:
        marker = next((m for m in DATA_ROOT_MARKERS if (place / m).is_file()), None)
        if marker is not None:
            raise InputError(f"{folder}: refusing to write an output inside the data root {place} "
                             f"({marker}); nothing was changed (choose an --out outside it)")


def move_aside(folder: str | os.PathLike) -> Path:
    """Rename ``folder`` to ``<name>.old-<UTC time>`` next to it (never deleted); returns the new path."""
    folder = Path(folder)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = folder.with_name(f"{folder.name}.old-{stamp}")
    n = 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = folder.with_name(f"{folder.name}.old-{stamp}-{n}")
    os.rename(folder, aside)
    return aside


@contextlib.contextmanager
def atomic_output_dir(
    final: str | os.PathLike,
    *,
    replace: bool = False,
    command: str | None = None,
    protect: Iterable[str | os.PathLike] = (),
) -> Iterator[Path]:
    """Build an output folder in a temporary sibling and move it into place only on success.

    A crash or an error leaves no folder at ``final`` (and removes the temporary one),
    so a finished-looking output is always complete. Without ``replace`` an existing
    folder is an error. With ``replace=True`` an existing folder must pass
    :func:`check_replaceable` (checked before anything is made) and is moved aside to
    ``<name>.old-<time>`` at the end, never deleted. ``command`` names the command that
    writes; without it, the command recorded in the new folder's ``provenance.json`` (or
    the running one) must be the one recorded in the old folder's.
    """
    final = Path(final)
    check_outside_data_root(final)
    if final.exists() and not replace:
        raise FileExistsError(f"{final} exists already")
    if replace:
        check_replaceable(final, command=command, protect=protect)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        os.chmod(work, dir_mode())
        yield work
        if final.exists() or final.is_symlink():
            if not replace:
                raise FileExistsError(f"{final} appeared while it was being made")
            writer = command or _recorded_command(work) or command_name()
            check_replaceable(final, command=writer, protect=protect)  # it may have changed meanwhile
            aside = move_aside(final)
            print(f"note: the earlier {final} was moved aside to {aside}", file=sys.stderr)
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
    >>> record_run(out_dir, prov)                                     # doctest: +SKIP

    ``tool`` names the command (e.g. ``"analysis ci"``; default: read from ``command``);
    it is what :func:`check_replaceable` compares before replacing the folder.
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
               output: str | os.PathLike | None = None) -> Path:
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

    Returns
    -------
    Path
        The ``provenance.json`` written (atomically).
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
    return atomic_write_json(folder / "provenance.json", provenance.as_dict())


def read_provenance(folder: str | os.PathLike) -> dict[str, Any]:
    """Read a folder's ``provenance.json``."""
    return json.loads((Path(folder) / "provenance.json").read_text())
