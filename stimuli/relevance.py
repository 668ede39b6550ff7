"""Relevance maps on the stimulus grid: the file between ``model explain`` and everything else.

``<results>/relevance/<variant>/<set>.npz`` holds ``relevance`` float32 (N, H, W) on the
prepared set's grid (summed over colour channels), ``stimulus_id``, ``target``,
``prediction``, ``logit`` and ``meta`` (a JSON string: variant, composite, canonizer,
target rule, conservation check, ``stimulus_set_sha256``: the content hash of the prepared
set the maps were made on, see :mod:`stimuli.prepared`). :func:`save_relevance` is the only
writer and :func:`load_relevance` the only reader.

Maps read by variant and set name are checked against that set as it is now: maps of an
older version of the set (re-prepared since) are refused with the command that re-makes
them. Files written before the hash was recorded cannot be checked: they are used, with a
warning on stderr that says how to re-make them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .prepared import PreparedSet, load_prepared_set, prepared_set_dir
from .provenance import atomic_save_npz

__all__ = ["RelevanceMaps", "set_mean_map", "relevance_path", "save_relevance", "load_relevance", "explain_command",
           "BASELINE_KINDS", "baseline_set", "baseline_command", "SET_HASH_KEY", "check_relevance_set"]

# null models whose maps sit next to a variant's own: the variant's trained layers re-initialised
# and left untrained, or every layer re-initialised (the sanity check's last step)
BASELINE_KINDS = ("untrained", "random")
SET_HASH_KEY = "stimulus_set_sha256"  # in meta: the content hash of the set the maps were made on
_warned: set[str] = set()


def set_mean_map(relevance: np.ndarray, *, positive: bool = False, name: str = "relevance") -> np.ndarray:
    """The set-mean map: the average of the finite maps of (N, H, W) ``relevance``.

    The one definition of "a variant's set-mean map", used by guided ``maps: mean``
    conditions, ``stimuli render --relevance mean`` and the masking baseline.
    """
    relevance = np.asarray(relevance)
    maps = relevance[np.isfinite(relevance).all(axis=(1, 2))]
    if len(maps) == 0:
        raise InputError(f"{name}: no finite maps to average")
    if positive:
        maps = np.clip(maps, 0, None)
    return maps.mean(axis=0)


def relevance_path(variant: str, stimuli: str, results: str | os.PathLike = "results") -> Path:
    return Path(results) / "relevance" / variant / f"{stimuli}.npz"


def explain_command(variant: str, stimuli: str, results: str | os.PathLike = "results") -> str:
    out = "" if str(results) == "results" else f" --out {results}"
    return f"python -m model explain --variant {variant} --stimuli {stimuli}{out}"


def baseline_set(stimuli: str, kind: str) -> str:
    """The name a variant's baseline maps of set ``stimuli`` are stored under.

    ``relevance_path(variant, baseline_set(set, kind))`` is
    ``<results>/relevance/<variant>/<set>.baseline-<kind>.npz``: next to the variant's own maps,
    never mistaken for them (readers look for ``<set>.npz``).

    Examples
    --------
    >>> baseline_set("orl128", "untrained")
    'orl128.baseline-untrained'
    """
    if kind not in BASELINE_KINDS:
        raise InputError(f"unknown baseline '{kind}' (choose {', '.join(BASELINE_KINDS)})")
    return f"{stimuli}.baseline-{kind}"


def baseline_command(variant: str, stimuli: str, kind: str, results: str | os.PathLike = "results") -> str:
    """The command that makes a variant's baseline maps (for messages); ``kind`` may list several."""
    return f"{explain_command(variant, stimuli, results)} --baseline {kind}"


@dataclass(frozen=True)
class RelevanceMaps:
    relevance: np.ndarray  # (N, H, W) float32
    stimulus_id: np.ndarray  # (N,) str
    target: np.ndarray  # (N,) int: explained class index
    prediction: np.ndarray  # (N,) int
    logit: np.ndarray  # (N,) float: the explained output
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.stimulus_id)

    def finite(self) -> np.ndarray:
        """Which maps hold only finite values."""
        return np.isfinite(self.relevance).all(axis=(1, 2))

    def mean_map(self, *, positive: bool = False) -> np.ndarray:
        """The set-average map over finite maps (optionally of positive relevance only)."""
        return set_mean_map(self.relevance, positive=positive, name=f"relevance of {self.meta.get('variant', '?')}")

    def by_id(self, stimulus_id: str) -> np.ndarray:
        hits = np.flatnonzero(self.stimulus_id == str(stimulus_id))
        if len(hits) == 0:
            raise InputError(f"no relevance map for stimulus '{stimulus_id}'")
        return self.relevance[hits[0]]


def save_relevance(
    path: str | os.PathLike,
    relevance: np.ndarray,
    stimulus_id: Any,
    target: Any,
    prediction: Any,
    logit: Any,
    meta: Mapping[str, Any],
) -> Path:
    """Write the relevance npz of the contract (atomically)."""
    relevance = np.asarray(relevance, dtype=np.float32)
    n = len(relevance)
    if relevance.ndim != 3:
        raise InputError(f"{path}: relevance must be (N, H, W), got shape {relevance.shape}")
    arrays = {
        "stimulus_id": np.asarray(stimulus_id, dtype=str),
        "target": np.asarray(target, dtype=np.int64),
        "prediction": np.asarray(prediction, dtype=np.int64),
        "logit": np.asarray(logit, dtype=np.float32),
    }
    for key, value in arrays.items():
        if value.shape != (n,):
            raise InputError(f"{path}: '{key}' must have {n} entries, got shape {value.shape}")
    return atomic_save_npz(path, relevance=relevance, meta=np.asarray(json.dumps(dict(meta))), **arrays)


def check_relevance_set(maps: RelevanceMaps, prepared: PreparedSet, path: str | os.PathLike,
                        results: str | os.PathLike = "results") -> None:
    """Refuse maps made on another version of ``prepared`` (its content hash differs).

    Maps without a recorded hash (written before it was recorded) pass with a warning
    line on stderr (once per file) holding the command that re-makes them.
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
    """
    path = Path(variant)
    if stimuli is not None:
        path = relevance_path(str(variant), stimuli, results)
    if not path.is_file():
        hint = f"; make them with: {explain_command(str(variant), stimuli, results)}" if stimuli else ""
        raise InputError(f"relevance maps {path} not found{hint}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("relevance", "stimulus_id", "target", "prediction", "logit", "meta")
                       if k not in data.files]
            if missing:
                raise InputError(f"{path}: missing array(s) {', '.join(missing)}")
            fields = {k: data[k] for k in ("relevance", "stimulus_id", "target", "prediction", "logit")}
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable relevance file ({error})") from None
    if fields["relevance"].ndim != 3 or len(fields["relevance"]) != len(fields["stimulus_id"]):
        raise InputError(f"{path}: relevance has shape {fields['relevance'].shape}, "
                         f"expected ({len(fields['stimulus_id'])}, H, W)")
    fields["stimulus_id"] = fields["stimulus_id"].astype(str)
    maps = RelevanceMaps(meta=meta if isinstance(meta, dict) else {}, **fields)
    if prepared is None and stimuli is not None and (prepared_set_dir(stimuli, results) / "manifest.csv").is_file():
        prepared = load_prepared_set(stimuli, results)
    if prepared is not None:
        check_relevance_set(maps, prepared, path, results)
    return maps
