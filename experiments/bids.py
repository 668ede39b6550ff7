"""A data root as a BIDS dataset: the files around the sessions, and the sidecar's task keys.

Every data root the platform writes (``participants/`` for people, ``results/simulated/`` for
simulated observers, any ``--data-root``) is a BIDS dataset that the official validator
(``bids-validator``) accepts without errors:

- ``dataset_description.json`` (Name, BIDSVersion, DatasetType ``raw``, GeneratedBy with the
  platform's name, version and git commit) and a ``README.md`` when the root has no README;
  both are *created once* (written aside, then hard-linked into place, which fails if the
  file exists), so a lab's edits to them are never overwritten;
- ``participants.tsv`` created from the tracked template ``experiments/templates/
  participants.tsv`` (the real file holds personal data and is git-ignored), and
  ``participants.json`` describing each of its columns from ``experiments/templates/
  participants.json``; a column added later (``observer`` by a simulated session) is
  described when it is added, and what a lab wrote there is kept;
- session provenance lives in each session's sidecar (key ``Provenance``), not in a
  ``provenance.json`` next to the trial file, which BIDS does not name. Sessions written before
  keep theirs; ``.bidsignore`` lists them (:data:`LEGACY_PROVENANCE`) so the validator skips them,
  and :func:`stimuli.contracts.trials.read_session_provenance` reads both.

Examples
--------
>>> ensure_dataset("participants", simulated=False,
...                columns=["participant_id", "age", "sex", "handedness"])   # doctest: +SKIP
>>> sorted(p.name for p in Path("participants").iterdir())                  # doctest: +SKIP
['README.md', 'dataset_description.json', 'participants.json', 'participants.tsv']
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from stimuli.contracts.provenance import atomic_write_json, atomic_write_text, file_mode, git_commit

__all__ = [
    "BIDS_VERSION",
    "PLATFORM",
    "LEGACY_PROVENANCE",
    "TEMPLATES",
    "participant_columns",
    "column_descriptions",
    "dataset_description",
    "create_once",
    "participants_lock",
    "describe_participants",
    "ensure_dataset",
    "task_keys",
]

BIDS_VERSION = "1.10.0"
PLATFORM = "face-relevance"
TEMPLATES = Path(__file__).with_name("templates")
# where sessions written before #14 kept their provenance (BIDS does not name it: .bidsignore lists it)
LEGACY_PROVENANCE = "sub-*/ses-*/beh/provenance.json"
_READMES = ("README", "README.md", "README.rst", "README.txt")
_NAMES = {False: "Bubbles and face-similarity sessions with people (face-relevance platform)",
          True: "Bubbles and face-similarity sessions of simulated and model observers (face-relevance platform)"}


def participant_columns() -> list[str]:
    """The header of a new ``participants.tsv``: the tracked template's.

    Returns
    -------
    list of str
        Column names, ``participant_id`` first.

    Examples
    --------
    >>> participant_columns()
    ['participant_id', 'age', 'sex', 'handedness']
    """
    return (TEMPLATES / "participants.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")


def column_descriptions() -> dict[str, Any]:
    """Descriptions (BIDS ``participants.json`` entries) of every column the platform writes.

    Returns
    -------
    dict
        Column -> its ``participants.json`` entry.
    """
    return json.loads((TEMPLATES / "participants.json").read_text(encoding="utf-8"))


def _platform_version() -> str:
    try:
        return metadata.version(PLATFORM)
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def dataset_description(*, simulated: bool) -> dict[str, Any]:
    """The ``dataset_description.json`` of a new data root (people's or simulated observers').

    Parameters
    ----------
    simulated : bool
        A data root of simulated observers (else people's).

    Returns
    -------
    dict
        The JSON's content.

    Examples
    --------
    >>> dataset_description(simulated=True)["DatasetType"]
    'raw'
    """
    generated: dict[str, Any] = {
        "Name": PLATFORM,
        "Version": _platform_version(),
        "Description": "python -m experiments run: Bubbles (Gosselin & Schyns, 2001) and face-similarity "
                       "sessions, one trial file per session (sub-*/ses-*/beh/*_beh.tsv)",
    }
    commit = git_commit()
    if commit:
        generated["Description"] += f"; git commit {commit}"
    return {
        "Name": _NAMES[simulated],
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "GeneratedBy": [generated],
    }


def create_once(path: str | os.PathLike, text: str) -> bool:
    """Create ``path`` with ``text`` unless it exists; True if this call created it.

    The file is written aside and hard-linked into place (which fails if the file exists), so
    it appears whole, and a file that is there already, edited or not, is never touched.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create.
    text : str
        Its content.

    Returns
    -------
    bool
        Whether this call created it.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, file_mode())  # mkstemp makes 0600: the lab's umask decides who reads it
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another session created it meanwhile: theirs stays
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def participants_lock(root: str | os.PathLike) -> Iterator[None]:
    """The data root's lock on ``participants.tsv`` and ``participants.json`` (read-modify-write).

    Parameters
    ----------
    root : str or os.PathLike
        The data root.

    Yields
    ------
    None
        While the lock is held.
    """
    with open(Path(root) / ".participants.tsv.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield


def describe_participants(root: str | os.PathLike, columns: Sequence[str]) -> Path:
    """Describe each of ``columns`` in ``<root>/participants.json`` that it does not describe yet.

    Entries already there (a lab's own words) are kept; a column the templates do not know gets
    a description saying so, for the lab to improve. Call under :func:`participants_lock`; the
    file is replaced atomically, and only when something was added.

    Parameters
    ----------
    root : str or os.PathLike
        The data root.
    columns : sequence of str
        The columns of its ``participants.tsv``.

    Returns
    -------
    Path
        ``participants.json``.
    """
    path = Path(root) / "participants.json"
    try:
        described = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError) as error:
        print(f"warning: {path}: not readable JSON ({error}); left as it is", file=sys.stderr)
        return path
    if not isinstance(described, dict):
        print(f"warning: {path}: not a JSON object; left as it is", file=sys.stderr)
        return path
    known = column_descriptions()
    added = {c: known.get(c, {"Description": f"'{c}': given when the participant's first session started "
                                             "(not described in experiments/templates/participants.json)"})
             for c in columns if c not in described}
    if added or not path.exists():
        atomic_write_json(path, {**described, **added})
    return path


def _readme(simulated: bool) -> str:
    who = "simulated and model observers" if simulated else "people"
    return (f"# {_NAMES[simulated]}\n\n"
            f"A BIDS dataset written by `python -m experiments run` (sessions of {who}): one trial file per "
            "session, `sub-<id>/ses-<n>/beh/sub-<id>_ses-<n>_task-<task>_beh.tsv`, with its JSON sidecar "
            "(every column described; the experiment config, stimulus set, observer, screen, software and "
            "the session's provenance under `Provenance`). `participants.tsv` lists who took part "
            "(`participants.json` describes its columns).\n\n"
            "Written on first use and never overwritten: edit it to describe your study.\n")


def _ignore_legacy_provenance(root: Path) -> None:
    """List the ``provenance.json`` of sessions written before #14 in ``.bidsignore`` (kept, not moved)."""
    if not any(root.glob(LEGACY_PROVENANCE)):
        return
    path = root / ".bidsignore"
    line = f"{LEGACY_PROVENANCE}\n"
    if create_once(path, "# provenance of sessions written before it moved into the sidecar (key Provenance)\n"
                         + line):
        return
    text = path.read_text(encoding="utf-8")
    if LEGACY_PROVENANCE not in text.splitlines():
        atomic_write_text(path, text + ("" if text.endswith("\n") or not text else "\n") + line)


def ensure_dataset(root: str | os.PathLike, *, simulated: bool, columns: Sequence[str] | None = None) -> None:
    """Make ``root`` a BIDS dataset: create what it lacks, change nothing a lab may have edited.

    ``columns`` is the header of its ``participants.tsv`` when that exists (already checked by
    :func:`experiments.session.read_participants`); a new one gets the template's header.

    Parameters
    ----------
    root : str or os.PathLike
        The data root.
    simulated : bool
        A data root of simulated observers (else people's).
    columns : sequence of str, optional
        The header of an existing ``participants.tsv``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "dataset_description.json").exists():  # (asks git for the commit only when needed)
        create_once(root / "dataset_description.json",
                    json.dumps(dataset_description(simulated=simulated), indent=2) + "\n")
    if not any((root / name).exists() for name in _READMES):
        create_once(root / "README.md", _readme(simulated))
    with participants_lock(root):
        header = participant_columns()
        if not create_once(root / "participants.tsv", "\t".join(header) + "\n"):
            header = list(columns) if columns is not None else header
        describe_participants(root, header)
    _ignore_legacy_provenance(root)


# --- the sidecar's task keys ------------------------------------------------------------------
def _bubbles_description(config: Any) -> str:
    answers = ", ".join(config.responses)
    used = list(dict.fromkeys(config.design.blocks))
    kinds = ", ".join(f"{name} ({config.conditions[name].mode})" for name in used)
    return (f"Bubbles (Gosselin & Schyns, 2001): each trial shows a face of stimulus set '{config.stimuli}' "
            f"through Gaussian apertures (sigma {config.bubbles.sigma_px:g} px on the stimulus grid) and the "
            f"observer classifies its {config.classify} ({answers}). A QUEST staircase on log10(number of "
            f"bubbles) holds accuracy near {config.staircase.target:g}. Conditions (where the apertures fall): "
            f"{kinds}.")


def _similarity_description(config: Any) -> str:
    what = ("triplets: which face is least like the other two (odd one out)" if config.judgement == "triplet"
            else "pairs: how similar the two faces look, on a 1-7 scale")
    return f"Face-similarity judgements on faces of stimulus set '{config.stimuli}', {what}."


_DESCRIPTIONS = {"bubbles": _bubbles_description, "similarity": _similarity_description}


def task_keys(task: Any, instructions: str) -> dict[str, str]:
    """``TaskName``, ``TaskDescription`` and ``Instructions`` of a session's sidecar (BIDS).

    ``TaskDescription`` is the experiment YAML's ``description`` when it has one, else a
    sentence built from the config for its paradigm; ``instructions`` is the instruction
    screen's text as shown (keys filled in).

    Parameters
    ----------
    task : Task
        The loaded task.
    instructions : str
        The instructions screen's text, as shown.

    Returns
    -------
    dict
        ``TaskName``, ``TaskDescription``, ``Instructions``.
    """
    config = task.config
    description = getattr(config, "description", None)
    if not description:
        build = _DESCRIPTIONS.get(task.paradigm)
        description = build(config) if build else f"Paradigm '{task.paradigm}', task '{task.label}'."
    return {"TaskName": task.label, "TaskDescription": description, "Instructions": instructions}
