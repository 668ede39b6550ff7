"""Output folders made all or nothing, and the one rule of which folder a command may replace.

An output folder is replaced only through :func:`check_replaceable` (called by
:func:`atomic_output_dir`): only a folder holding the same command's own
``provenance.json`` is replaced, never a data root, a folder with trial files, a results
root, the current directory, home or ``/``; the old folder is moved aside, never deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InputError
from .provenance import _fsync_dir, command_name, dir_mode

__all__ = [
    "RESULTS_ROOT_MARKERS",
    "DATA_ROOT_MARKERS",
    "atomic_output_dir",
    "check_replaceable",
    "check_outside_data_root",
    "move_aside",
]

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
    (``--force``, re-runs). A folder is replaced only when it holds a ``provenance.json``
    written by the same command, ``command`` (e.g. ``"analysis ci"``; None checks everything
    else and leaves the match to the final check of :func:`atomic_output_dir`, which reads the
    new output's own record).

    Never replaced, whatever its provenance: ``/``, the home folder, the current directory or
    a folder holding any of them or a ``protect`` path (the ``--results`` root, the
    ``--data-root``); a data root (``dataset_description.json`` or ``participants.tsv``, at any
    depth) or any folder holding a trial file ``sub-*/ses-*/beh/*_beh.tsv`` at any depth; a
    results root (a folder holding ``stimuli/``, ``models/``, ``relevance/``, ...). A folder
    that does not exist passes.

    Parameters
    ----------
    folder : str or path-like
        The folder the command would replace.
    command : str, optional
        The command's name, as recorded in ``provenance.json`` (``tool``).
    protect : iterable of path
        Roots the command reads, never replaced.

    Raises
    ------
    InputError
        When ``folder`` may not be replaced, naming why.

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
    and a later ``--force`` of it would act next to participant data.

    Parameters
    ----------
    folder : str or path-like
        The output folder.

    Raises
    ------
    InputError
        When a folder above ``folder`` is a data root.
    """
    real = Path(folder).resolve()
    for place in real.parents:
        marker = next((m for m in DATA_ROOT_MARKERS if (place / m).is_file()), None)
        if marker is not None:
            raise InputError(f"{folder}: refusing to write an output inside the data root {place} "
                             f"({marker}); nothing was changed (choose an --out outside it)")


def move_aside(folder: str | os.PathLike) -> Path:
    """Rename ``folder`` to ``<name>.old-<UTC time>`` next to it (never deleted).

    Parameters
    ----------
    folder : str or path-like
        The folder to move.

    Returns
    -------
    Path
        Where it went.
    """
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

    Parameters
    ----------
    final : str or path-like
        The output folder.
    replace : bool
        Whether an existing folder (of the same command) is replaced.
    command : str, optional
        The writing command's name.
    protect : iterable of path
        Roots the command reads, never replaced.

    Yields
    ------
    Path
        The temporary folder to write into.
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
