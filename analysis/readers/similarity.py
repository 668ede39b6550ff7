"""Reading similarity trial files (triplets, ratings) into tables and per-participant RDMs.

:func:`read_similarity_trials` reads and checks one file; :func:`load_human_rdms` reads a
group's files and builds one RDM per participant with :func:`analysis.rdm.human_rdm`.

Examples
--------
>>> load_human_rdms({"01": ["sub-01_ses-1_task-similarity_beh.tsv"]})   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import read_trials, sidecar_path

from ..rdm import RATING_SCALE, HumanRDMs, human_rdm

__all__ = ["SIMILARITY_REQUIRED", "read_similarity_trials", "load_human_rdms"]

# the columns a similarity analysis needs of a trial file
SIMILARITY_REQUIRED = ("trial", "phase", "condition", "stimulus_1", "stimulus_2", "stimulus_3", "response")


def read_similarity_trials(path: str | os.PathLike, *, main_only: bool = True,
                           warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """A similarity trial file: its main (by default) answered rows, checked, one error per problem.

    Every triplet answer must be one of the trial's three faces and every rating a whole
    number in 1..7; rows without an answer (``n/a``) are dropped.

    Parameters
    ----------
    path : path
        A similarity trial file.
    main_only : bool
        Keep only main-phase rows.
    warn : callable, optional
        Called with one line for a forgiven torn last line.

    Returns
    -------
    pandas.DataFrame
        The answered rows (the file's 0-based row index kept: line = index + 2).
    """
    table = read_trials(path, required=SIMILARITY_REQUIRED, warn=warn)
    bad = ~table.condition.isin(["triplet", "rating"])
    if bad.any():
        line = int(table.index[bad][0]) + 2
        raise InputError(f"{path}, line {line}: condition '{table.condition[bad].iloc[0]}' is neither triplet nor rating")
    if main_only:
        table = table[table.phase == "main"]
    table = table[table.response.notna()]
    triplet = table.condition == "triplet"
    faces = table[["stimulus_1", "stimulus_2", "stimulus_3"]]
    wrong = triplet & ~faces.eq(table.response, axis=0).any(axis=1)
    ratings = pd.to_numeric(table.response.where(~triplet), errors="coerce")
    wrong |= ~triplet & ~(ratings.isin(range(1, RATING_SCALE + 1)))
    wrong |= ~triplet & (table.stimulus_1.isna() | table.stimulus_2.isna())
    if wrong.any():
        row = table[wrong].iloc[0]
        raise InputError(f"{path}, line {int(table.index[wrong][0]) + 2}: response {row.response!r} is not "
                         + ("one of the trial's three faces" if row.condition == "triplet" else "a rating 1..7"))
    return table


def _faces_of(paths: Sequence[Path]) -> list[str] | None:
    """The judged faces as the first readable sidecar lists them (the experiment's order)."""
    for path in paths:
        try:
            faces = json.loads(sidecar_path(path).read_text()).get("Faces", {}).get("stimulus_ids")
        except (OSError, ValueError):
            continue
        if isinstance(faces, list) and faces:
            return [str(f) for f in faces]
    return None


def _read_usable(group: Sequence[str | os.PathLike], warn: Callable[[str], None] | None) -> list[pd.DataFrame]:
    """The tables of a participant's trial files; with ``warn``, a damaged file is left out with its reason."""
    parts = []
    for path in group:
        try:
            parts.append(read_similarity_trials(path, warn=warn))
        except InputError as error:
            if warn is None:
                raise
            warn(f"{error}; file left out")
    return parts


def load_human_rdms(files: Mapping[str, Sequence[str | os.PathLike]], *, method: str = "probability",
                    ids: Sequence[str] | None = None, dims: int = 5, seed: int = 0,
                    warn: Callable[[str], None] | None = None) -> HumanRDMs:
    """Participant -> trial files (their sessions pooled) -> one RDM each, over the same faces.

    ``ids`` defaults to the faces listed in the first sidecar, plus any other face the trials
    show (sorted after them). A damaged trial file raises :class:`~stimuli.InputError`;
    given ``warn``, it is left out instead, with one warning naming it and why.

    Parameters
    ----------
    files : mapping of str to sequence of path
        participant -> their trial files.
    method : str
        ``probability`` or ``embedding`` (:data:`analysis.rdm.RDM_METHODS`).
    ids : sequence of str, optional
        The faces, in RDM order.
    dims : int
        Dimensions of a fitted embedding.
    seed : int
        Seed of the embedding fit.
    warn : callable, optional
        Called with one line per problem (default: a ``warning:`` line on stderr).

    Returns
    -------
    HumanRDMs
        The participants' RDMs, their group mean, the tables and files read.
    """
    if not files:
        raise InputError("no similarity trial files to build RDMs from")
    tables, paths = {}, []
    for participant, group in files.items():
        parts = _read_usable(group, warn)
        paths += [Path(p) for p in group]
        if parts:
            tables[participant] = pd.concat(parts, ignore_index=True)
    judgements = {c for t in tables.values() for c in t.condition}
    if len(judgements) > 1:
        raise InputError(f"the trial files mix judgements ({', '.join(sorted(judgements))}); analyse each on its own")
    if not judgements:
        raise InputError("the similarity trial files hold no answered main trials")
    shown = sorted({s for t in tables.values() for c in ("stimulus_1", "stimulus_2", "stimulus_3")
                    for s in t[c].dropna()})
    if ids is None:
        listed = _faces_of(paths) or []
        ids = listed + [s for s in shown if s not in set(listed)]
    ids = [str(s) for s in ids]
    participants = sorted(tables)
    subjects = np.stack([human_rdm(tables[p], ids, method, dims=dims, seed=seed) for p in participants])
    return HumanRDMs(ids, participants, subjects, judgements.pop(), method,
                     {p: len(tables[p]) for p in participants}, [str(p) for p in paths], tables)
