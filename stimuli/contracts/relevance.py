"""Relevance maps on the stimulus grid: the file between ``model explain`` and everything else.

``<results>/relevance/<variant>/<set>.npz`` holds ``relevance`` float32 (N, H, W) on the
prepared set's grid (summed over colour channels), ``stimulus_id``, ``target``,
``prediction``, ``logit`` and ``meta`` (a JSON string: variant, composite, canonizer,
target rule, conservation check, ``stimulus_set_sha256``: the content hash of the prepared
set the maps were made on, see :mod:`stimuli.contracts.prepared`). :func:`save_relevance` (all maps at
once) and :func:`relevance_writer` (batch by batch) are the writers, :func:`load_relevance` the
only reader.

Large sets (issue #15): ``relevance`` is stored uncompressed and 64-byte aligned, so maps are
written as they are made and read memory-mapped (:mod:`stimuli.contracts.relevance_file`); files written
before, with a compressed ``relevance``, are read by the same reader (into memory). A session's
``relevance_sha256`` is the SHA-256 of the whole file's bytes, for either layout.
Whole-set passes (:func:`set_mean_map`, :meth:`RelevanceMaps.finite`, per-image access with
:meth:`RelevanceMaps.by_id` / :meth:`RelevanceMaps.take`) read a chunk or a map at a time.

Maps read by variant and set name are checked against that set as it is now: maps of an
older version of the set (re-prepared since) are refused with the command that re-makes
them. Files written before the hash was recorded cannot be checked: they are used, with a
warning on stderr that says how to re-make them.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .prepared import PreparedSet, load_prepared_set, prepared_set_dir
from .relevance_file import MapSource, RelevanceWriter, iter_chunks, read_arrays

__all__ = ["RelevanceMaps", "set_mean_map", "relevance_path", "save_relevance", "relevance_writer", "load_relevance",
           "explain_command", "BASELINE_KINDS", "baseline_set", "baseline_command", "SET_HASH_KEY",
           "check_relevance_set", "map_chunks"]

# null models whose maps sit next to a variant's own: the variant's trained layers re-initialised
# and left untrained, or every layer re-initialised (the sanity check's last step)
BASELINE_KINDS = ("untrained", "random")
SET_HASH_KEY = "stimulus_set_sha256"  # in meta: the content hash of the set the maps were made on
_warned: set[str] = set()


def map_chunks(relevance: RelevanceMaps | np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, chunk)`` over the maps of a :class:`RelevanceMaps` or an (N, H, W) array, a chunk at a time.

    Maps of a file are read from it chunk by chunk (memory stays at one chunk, about 16 MB).

    Parameters
    ----------
    relevance : RelevanceMaps or numpy.ndarray
        The maps.

    Yields
    ------
    start : int
        The index of the chunk's first map.
    chunk : numpy.ndarray
        (k, H, W) maps.
    """
    if isinstance(relevance, RelevanceMaps):
        return iter_chunks(relevance.relevance, relevance.source)
    return iter_chunks(np.asarray(relevance) if not isinstance(relevance, np.memmap) else relevance)


def set_mean_map(relevance: RelevanceMaps | np.ndarray, *, positive: bool = False,
                 name: str = "relevance") -> np.ndarray:
    """The set-mean map: the average of the finite maps of (N, H, W) ``relevance`` (or of a :class:`RelevanceMaps`).

    The one definition of "a variant's set-mean map", used by guided ``maps: mean``
    conditions, ``stimuli render --relevance mean`` and the masking baseline. Summed in
    float64 a chunk at a time (never the whole set in memory); returned as float32.

    Parameters
    ----------
    relevance : RelevanceMaps or numpy.ndarray
        The maps.
    positive : bool
        Average only the positive part of each map.
    name : str
        What the maps are, for the error when no map is finite.

    Returns
    -------
    numpy.ndarray
        The (H, W) float32 mean over the finite maps.

    Examples
    --------
    >>> set_mean_map(np.array([[[1.0]], [[np.nan]], [[3.0]]], np.float32)).tolist()
    [[2.0]]
    """
    total: np.ndarray | None = None
    count = 0
    for _, chunk in map_chunks(relevance):
        chunk = chunk[np.isfinite(chunk).all(axis=(1, 2))]
        if positive:
            chunk = np.clip(chunk, 0, None)
        part = chunk.sum(axis=0, dtype=np.float64)
        total = part if total is None else total + part
        count += len(chunk)
    if count == 0 or total is None:
        raise InputError(f"{name}: no finite maps to average")
    return (total / count).astype(np.float32)


def relevance_path(variant: str, stimuli: str, results: str | os.PathLike = "results") -> Path:
    """Where a variant's relevance maps of set ``stimuli`` live: ``<results>/relevance/<variant>/<set>.npz``.

    Parameters
    ----------
    variant : str
        The variant that was explained.
    stimuli : str
        The prepared set it was explained on.
    results : str or path-like
        The results root holding ``relevance/``.

    Returns
    -------
    Path
        The maps' file, whether or not it exists.

    Examples
    --------
    >>> relevance_path("vgg16-imagenet-gender-s0", "orl64").as_posix()
    'results/relevance/vgg16-imagenet-gender-s0/orl64.npz'
    """
    return Path(results, "relevance", variant, f"{stimuli}.npz")


def explain_command(variant: str, stimuli: str, results: str | os.PathLike = "results") -> str:
    """The exact command that makes a variant's missing relevance maps (for error messages).

    Parameters
    ----------
    variant, stimuli, results
        The variant, its set and the results root, as for :func:`relevance_path`.

    Returns
    -------
    str
        ``python -m model explain --variant V --stimuli S`` (``--out`` for another root).

    Examples
    --------
    >>> explain_command("v", "orl64")
    'python -m model explain --variant v --stimuli orl64'
    """
    out = "" if str(results) == "results" else f" --out {results}"
    return f"python -m model explain --variant {variant} --stimuli {stimuli}{out}"


def baseline_set(stimuli: str, kind: str) -> str:
    """The name a variant's baseline maps of set ``stimuli`` are stored under.

    ``relevance_path(variant, baseline_set(set, kind))`` is
    ``<results>/relevance/<variant>/<set>.baseline-<kind>.npz``: next to the variant's own maps,
    never mistaken for them (readers look for ``<set>.npz``).

    Parameters
    ----------
    stimuli : str
        The prepared set's name.
    kind : str
        The baseline (``untrained``, ``gradient``, ...).

    Returns
    -------
    str
        ``<set>.baseline-<kind>``.

    Examples
    --------
    >>> baseline_set("orl128", "untrained")
    'orl128.baseline-untrained'
    """
    if kind not in BASELINE_KINDS:
        raise InputError(f"unknown baseline '{kind}' (choose {', '.join(BASELINE_KINDS)})")
    return f"{stimuli}.baseline-{kind}"


def baseline_command(variant: str, stimuli: str, kind: str, results: str | os.PathLike = "results") -> str:
    """The command that makes a variant's baseline maps (for messages); ``kind`` may list several.

    Parameters
    ----------
    kind : str
        The baseline kind(s), space-separated.
    variant, stimuli, results
        As for :func:`relevance_path`.

    Returns
    -------
    str
        A ``python -m model explain ... --baseline <kind>`` command line.
    """
    return f"{explain_command(variant, stimuli, results)} --baseline {kind}"


@dataclass(frozen=True)
class RelevanceMaps:
    """One relevance file's maps and per-map arrays (:func:`load_relevance` makes it).

    ``relevance`` is an (N, H, W) float32 array, memory-mapped for files of the current
    layout (indexing it reads only what is indexed). ``source`` locates those maps in the
    file: :meth:`finite`, :meth:`mean_map`, :meth:`by_id` and :meth:`take` read through it a
    chunk or a map at a time, so a pass over 20,000 maps holds one chunk.

    Parameters
    ----------
    relevance : numpy.ndarray
        (N, H, W) float32 maps on the stimulus grid.
    stimulus_id : numpy.ndarray
        (N,) str.
    target : numpy.ndarray
        (N,) int: the explained class index.
    prediction : numpy.ndarray
        (N,) int: the predicted class index.
    logit : numpy.ndarray
        (N,) float: the explained output.
    meta : dict
        Variant, composite, canonizer, target rule, stimulus-set hash, ...
    source : MapSource, optional
        Where the maps lie in their file.
    """

    relevance: np.ndarray  # (N, H, W) float32 (np.memmap when read from a file of the current layout)
    stimulus_id: np.ndarray  # (N,) str
    target: np.ndarray  # (N,) int: explained class index
    prediction: np.ndarray  # (N,) int
    logit: np.ndarray  # (N,) float: the explained output
    meta: dict[str, Any]
    source: MapSource | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.stimulus_id)

    def finite(self) -> np.ndarray:
        """Which maps hold only finite values (read a chunk at a time)."""
        out = np.ones(len(self.relevance), dtype=bool)
        for start, chunk in map_chunks(self):
            out[start:start + len(chunk)] = np.isfinite(chunk).all(axis=(1, 2))
        return out

    def mean_map(self, *, positive: bool = False) -> np.ndarray:
        """The set-average map over finite maps (optionally of positive relevance only)."""
        return set_mean_map(self, positive=positive, name=f"relevance of {self.meta.get('variant', '?')}")

    @cached_property
    def index(self) -> dict[str, int]:
        """Row of each stimulus id (the first, should one repeat)."""
        out: dict[str, int] = {}
        for i, sid in enumerate(self.stimulus_id.tolist()):
            out.setdefault(str(sid), i)
        return out

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Maps ``rows`` (k, H, W) as a fresh array, read map by map from the file when there is one."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self.source is None:
            return np.asarray(self.relevance[rows])
        out = np.empty((len(rows), *self.relevance.shape[1:]), dtype=self.relevance.dtype)
        for i, row in enumerate(rows):
            out[i] = self.source.take(row)
        return out

    def by_id(self, stimulus_id: str) -> np.ndarray:
        row = self.index.get(str(stimulus_id))
        if row is None:
            raise InputError(f"no relevance map for stimulus '{stimulus_id}'")
        return self.source.take(row) if self.source is not None else self.relevance[row]


def _per_map_arrays(path: str | os.PathLike, n: int, stimulus_id: Any, target: Any, prediction: Any,
                    logit: Any) -> dict[str, np.ndarray]:
    arrays = {
        "stimulus_id": np.asarray(stimulus_id, dtype=str),
        "target": np.asarray(target, dtype=np.int64),
        "prediction": np.asarray(prediction, dtype=np.int64),
        "logit": np.asarray(logit, dtype=np.float32),
    }
    for key, value in arrays.items():
        if value.shape != (n,):
            raise InputError(f"{path}: '{key}' must have {n} entries, got shape {value.shape}")
    return arrays


class _ContractWriter:
    """:class:`stimuli.contracts.relevance_file.RelevanceWriter` finishing with the contract's arrays and meta."""

    def __init__(self, path: str | os.PathLike, n: int, shape: Sequence[int]) -> None:
        self._writer = RelevanceWriter(path, n, shape)
        self.path, self.n = Path(path), int(n)

    def write(self, maps: np.ndarray) -> None:
        self._writer.write(maps)

    @property
    def written(self) -> int:
        return self._writer.written

    def finish(self, stimulus_id: Any, target: Any, prediction: Any, logit: Any, meta: Mapping[str, Any]) -> Path:
        arrays = _per_map_arrays(self.path, self.n, stimulus_id, target, prediction, logit)
        return self._writer.finish(arrays, json.dumps(dict(meta)))

    def __enter__(self) -> _ContractWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._writer.__exit__(*exc)


def relevance_writer(path: str | os.PathLike, n: int, shape: Sequence[int]) -> _ContractWriter:
    """Write a relevance file of ``n`` maps of ``shape`` (H, W) batch by batch: THE writer of relevance files.

    ``write(maps)`` appends (k, H, W) maps; ``finish(stimulus_id, target, prediction, logit,
    meta)`` writes the rest and moves the file into place. Used as a context manager, an
    unfinished write leaves nothing at ``path``. :func:`save_relevance` writes through it.

    Parameters
    ----------
    path : str or path-like
        The file (:func:`relevance_path`).
    n : int
        How many maps the file will hold.
    shape : sequence of int
        (H, W) of one map.

    Returns
    -------
    writer
        An object with ``write(maps)``, ``written`` and ``finish(...) -> Path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "v" / "set.npz"
    >>> with relevance_writer(path, 2, (3, 3)) as out:
    ...     for batch in np.ones((2, 1, 3, 3), np.float32):
    ...         out.write(batch)
    ...     _ = out.finish(["a", "b"], [0, 1], [0, 1], [1.0, 2.0], {"variant": "v"})
    >>> load_relevance(path).mean_map().sum()
    np.float32(9.0)
    """
    if len(shape) != 2:
        raise InputError(f"{path}: a map is (H, W), got shape {tuple(shape)}")
    return _ContractWriter(path, n, shape)


def save_relevance(
    path: str | os.PathLike,
    relevance: np.ndarray,
    stimulus_id: Any,
    target: Any,
    prediction: Any,
    logit: Any,
    meta: Mapping[str, Any],
) -> Path:
    """Write the relevance npz of the contract (atomically), all maps at once, through :func:`relevance_writer`.

    Parameters
    ----------
    path : str or path-like
        The file (:func:`relevance_path`).
    relevance : numpy.ndarray
        (N, H, W) maps.
    stimulus_id, target, prediction, logit : array-like
        (N,) each (see :class:`RelevanceMaps`).
    meta : mapping
        Stored as a JSON string.

    Returns
    -------
    Path
        The written file.
    """
    relevance = np.asarray(relevance, dtype=np.float32)
    if relevance.ndim != 3:
        raise InputError(f"{path}: relevance must be (N, H, W), got shape {relevance.shape}")
    arrays = _per_map_arrays(path, len(relevance), stimulus_id, target, prediction, logit)
    with relevance_writer(path, len(relevance), relevance.shape[1:]) as out:
        out.write(relevance)
        return out.finish(meta=meta, **arrays)


def check_relevance_set(maps: RelevanceMaps, prepared: PreparedSet, path: str | os.PathLike,
                        results: str | os.PathLike = "results") -> None:
    """Refuse maps made on another version of ``prepared`` (its content hash differs).

    Maps without a recorded hash (written before it was recorded) pass with a warning
    line on stderr (once per file) holding the command that re-makes them.

    Parameters
    ----------
    maps : RelevanceMaps
        The maps read.
    prepared : PreparedSet
        The set they are used with.
    path : str or path-like
        Their file, for messages.
    results : str or path-like
        The results root, for the command in messages.

    Raises
    ------
    InputError
        When the maps were made on another version of the set.
    """
    recorded = maps.meta.get(SET_HASH_KEY)
    variant = str(maps.meta.get("variant") or Path(path).parent.name)
    remake = explain_command(variant, prepared.name, results)
    if not recorded:
        if str(path) not in _warned:
            _warned.add(str(path))
            print(f"warning: {path}: records no stimulus-set hash (made before hashes were recorded), so "
                  f"it cannot be checked against set '{prepared.name}'; re-make it with: {remake}",
                  file=sys.stderr)
        return
    if recorded != prepared.content_hash:
        raise InputError(f"{path}: made on another version of stimulus set '{prepared.name}' (set hash "
                         f"{str(recorded)[:12]}, the set's is {prepared.content_hash[:12]} now); "
                         f"re-make them with: {remake}")


def load_relevance(
    variant: str | os.PathLike, stimuli: str | None = None, results: str | os.PathLike = "results",
    *, prepared: PreparedSet | None = None,
) -> RelevanceMaps:
    """Read relevance maps by variant and set name (or one npz path as ``variant``).

    Read by set name, the maps are checked against that prepared set (``prepared``, else
    ``<results>/stimuli/<stimuli>`` when it exists) with :func:`check_relevance_set`.

    Parameters
    ----------
    variant : str or path-like
        The variant's name, or a relevance file's path (then ``stimuli`` is None).
    stimuli : str, optional
        The prepared set's name.
    results : str or path-like
        The results root.
    prepared : PreparedSet, optional
        The set the maps are used with (default: read from ``results`` when it exists).

    Returns
    -------
    RelevanceMaps
        The maps; a missing file is an InputError holding the command that makes it.
    """
    path = Path(variant)
    if stimuli is not None:
        path = relevance_path(str(variant), stimuli, results)
    if not path.is_file():
        hint = f"; make them with: {explain_command(str(variant), stimuli, results)}" if stimuli else ""
        raise InputError(f"relevance maps {path} not found{hint}")
    keys = ("stimulus_id", "target", "prediction", "logit", "meta")
    try:
        relevance, fields, source = read_arrays(path, keys)
        meta = json.loads(str(fields.pop("meta")))
    except KeyError as missing:
        raise InputError(f"{path}: missing array {missing.args[0]}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise InputError(f"{path}: not a readable relevance file ({error})") from None
    if relevance.ndim != 3 or len(relevance) != len(fields["stimulus_id"]):
        raise InputError(f"{path}: relevance has shape {relevance.shape}, "
                         f"expected ({len(fields['stimulus_id'])}, H, W)")
    fields["stimulus_id"] = fields["stimulus_id"].astype(str)
    maps = RelevanceMaps(relevance, meta=meta if isinstance(meta, dict) else {}, source=source, **fields)
    if prepared is None and stimuli is not None and (prepared_set_dir(stimuli, results) / "manifest.csv").is_file():
        prepared = load_prepared_set(stimuli, results)
    if prepared is not None:
        check_relevance_set(maps, prepared, path, results)
    return maps
