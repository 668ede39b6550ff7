"""Explaining a prepared set into its relevance file, batch by batch (bounded memory, issue #15).

:func:`explain_variant` reads a batch of stimuli, explains it (:func:`model.lrp.explain_batches`)
and appends its maps to the contract file (:func:`stimuli.contracts.relevance.relevance_writer`), so
memory holds one batch of images and maps whatever the set's size; the file appears at its
path only once every map is in it. The returned :class:`~model.lrp.ExplainedMaps` holds
the maps memory-mapped from that file. :func:`write_maps` writes maps already in memory
through the same metadata. Also here: the per-folder provenance record and the summary line.

Examples
--------
>>> from model.architecture import build_vgg16
>>> from model.preprocess import to_model_input
>>> import tempfile, pathlib
>>> images = np.random.default_rng(0).random((5, 40, 40), dtype=np.float32)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "v" / "set.npz"
>>> maps = explain_to_file(build_vgg16(2, width=0.0625), lambda a, b: images[a:b], 5, (40, 40),
...                        lambda im: to_model_input(im, 32), path, stimulus_id=list("abcde"),
...                        meta={"variant": "v", "stimuli": "set", "target_rule": "pred"}, batch_size=2)
>>> type(maps.relevance).__name__, maps.relevance.shape
('memmap', (5, 40, 40))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zennit
from torch import nn

from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set, prepared_set_dir
from stimuli.contracts.relevance import (
    SET_HASH_KEY,
    load_relevance,
    relevance_writer,
    save_relevance,
)

from .grid import ToInput
from .lrp import (
    CONSERVATION_TOLERANCE,
    DEFAULT_METHOD,
    ExplainedMaps,
    collect_maps,
    explain_batches,
)

__all__ = ["explain_to_file", "explain_variant", "true_targets", "maps_meta", "write_maps", "summary_line"]


def true_targets(variant, manifest) -> np.ndarray:
    """Class index of each manifest row's true label for ``variant``'s task.

    Parameters
    ----------
    variant : LoadedVariant
        The variant (its task and classes).
    manifest : pandas.DataFrame
        Rows of a prepared set's manifest.

    Returns
    -------
    numpy.ndarray
        int64 class indices; a label that is not a class of the variant is an InputError naming it.
    """
    task = variant.task
    if task not in manifest.columns:
        raise InputError(f"the stimulus manifest has no '{task}' column for the true class; use --target pred")
    classes = [str(c) for c in variant.classes]
    lookup = {c: i for i, c in enumerate(classes)}
    labels = manifest[task].astype(str).tolist()
    missing = [(sid, lab) for sid, lab in zip(manifest.stimulus_id, labels) if lab not in lookup]
    if missing:
        sid, lab = missing[0]
        raise InputError(f"stimulus '{sid}': {task} '{lab}' is not a class of the variant "
                         f"({len(missing)} such stimuli); use --target pred")
    return np.array([lookup[lab] for lab in labels], dtype=np.int64)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _set_hash(path: Path, stimuli: str) -> str | None:
    """Content hash of the set the maps are of: ``<results>/stimuli/<set>`` next to the contract path."""
    results = Path(path).parent.parent.parent
    if not (prepared_set_dir(stimuli, results) / "manifest.csv").is_file():
        return None
    return load_prepared_set(stimuli, results).content_hash


def maps_meta(maps: ExplainedMaps, path: Path, *, variant: str, stimuli: str, target_rule: str,
              stimulus_id: Sequence[str], extra: dict[str, Any] | None = None,
              set_hash: str | None = None) -> dict[str, Any]:
    """The relevance file's ``meta``: how the maps were made, the conservation check, the set's hash.

    Parameters
    ----------
    maps : ExplainedMaps
        The run's maps.
    path : Path
        The relevance file (its set's hash is read next to it when ``set_hash`` is None).
    variant, stimuli : str
        The names recorded.
    target_rule : {"true", "pred"}
        Which class was explained.
    stimulus_id : sequence of str
        Ids of the maps (flagged maps are named by them).
    extra : dict, optional
        More keys (a baseline's record, an image subset).
    set_hash : str, optional
        The prepared set's content hash, so maps of an older version of the set are refused later.

    Returns
    -------
    dict
        The JSON-ready ``meta``.
    """
    check = dict(maps.conservation)
    check["far_off_ids"] = [str(stimulus_id[i]) for i in check["far_off"]]
    check["nonfinite_ids"] = [str(stimulus_id[i]) for i in check["nonfinite"]]
    return {
        "variant": variant,
        "stimuli": stimuli,
        "composite": check["method"],
        "canonizer": maps.info.get("canonizer"),
        "target_rule": target_rule,
        "backend": maps.backend,
        "zennit": getattr(zennit, "__version__", None) or _version("zennit"),
        "resampling": "adjoint of the preprocessing resize, colour channels summed (sum-preserving)",
        "conservation": check,
        "flagged": len(maps.flagged),
        SET_HASH_KEY: set_hash or _set_hash(path, stimuli),
        **maps.info,
        **(extra or {}),
    }


def write_maps(maps: ExplainedMaps, path: Path, *, variant: str, stimuli: str, target_rule: str,
               stimulus_id: Sequence[str], extra: dict[str, Any] | None = None,
               set_hash: str | None = None) -> Path:
    """Save maps held in memory through the contract's writer, :func:`maps_meta` as ``meta``.

    Parameters
    ----------
    maps : ExplainedMaps
        Maps in memory.
    path : Path
        The relevance file to write.
    variant, stimuli, target_rule, stimulus_id, extra, set_hash
        As :func:`maps_meta`.

    Returns
    -------
    Path
        The written file.
    """
    meta = maps_meta(maps, path, variant=variant, stimuli=stimuli, target_rule=target_rule,
                     stimulus_id=stimulus_id, extra=extra, set_hash=set_hash)
    return save_relevance(path, maps.relevance, stimulus_id, maps.target, maps.prediction, maps.logit, meta)


def explain_to_file(net: nn.Module, read: Callable[[int, int], np.ndarray], n: int, grid_shape: Sequence[int],
                    to_input: ToInput, path: str | Path, *, stimulus_id: Sequence[str], meta: dict[str, Any],
                    method: str = DEFAULT_METHOD, target: np.ndarray | None = None, batch_size: int = 16,
                    device: torch.device | str = "cpu", fast: bool = True,
                    tolerance: float = CONSERVATION_TOLERANCE, progress: bool = False) -> ExplainedMaps:
    """Explain ``n`` images read a batch at a time straight into relevance file ``path``.

    An error midway leaves no file at ``path``.

    Parameters
    ----------
    net, read, n, grid_shape, to_input
        As :func:`model.lrp.explain_batches`.
    path : str or Path
        The relevance file.
    stimulus_id : sequence of str
        One id per image.
    meta : dict
        ``variant``, ``stimuli``, ``target_rule`` and optionally ``set_hash`` and ``extra``
        (see :func:`maps_meta`).
    method, target, batch_size, device, fast, tolerance, progress
        As :func:`model.lrp.explain_images`.

    Returns
    -------
    ExplainedMaps
        The run's maps, ``relevance`` memory-mapped from the finished file.
    """
    path = Path(path)
    stimulus_id = [str(s) for s in stimulus_id]
    if len(stimulus_id) != n:
        raise InputError(f"{len(stimulus_id)} stimulus ids for {n} images")
    # per-map sums and logits go into arrays made once: nothing long-lived is allocated between
    # the batches' large transient buffers, which would pin the heap and let it creep with N
    totals, logits, info = np.zeros(n), np.zeros((n, 0), np.float32), {}
    with relevance_writer(path, n, grid_shape) as out:
        for start, maps, batch_logits in explain_batches(
                net, read, n, grid_shape, to_input, method=method, target=target, batch_size=batch_size,
                device=device, fast=fast, ids=stimulus_id, progress=progress, info=info):
            out.write(maps)
            if logits.shape[1] != batch_logits.shape[1]:
                logits = np.zeros((n, batch_logits.shape[1]), np.float32)
            totals[start:start + len(maps)] = maps.sum(axis=(1, 2), dtype=np.float64)
            logits[start:start + len(maps)] = batch_logits
            del maps, batch_logits
        explained = collect_maps(net, totals, logits if n else np.zeros((0, 0), np.float32), target, info,
                                 method=method, tolerance=tolerance)
        out.finish(stimulus_id, explained.target, explained.prediction, explained.logit,
                   maps_meta(explained, path, stimulus_id=stimulus_id, **meta))
    explained.relevance = load_relevance(path).relevance
    return explained


def explain_variant(variant, stimuli, path: str | Path, *, rows: np.ndarray | None = None,
                    method: str = DEFAULT_METHOD, target_rule: str = "true", batch_size: int = 16,
                    device: torch.device | str = "cpu", fast: bool = True,
                    tolerance: float = CONSERVATION_TOLERANCE, progress: bool = False,
                    extra: dict[str, Any] | None = None, set_hash: str | None = None,
                    name: str | None = None) -> ExplainedMaps:
    """Maps of a loaded variant on a prepared set (or its ``rows``), written to ``path`` as they are made.

    Parameters
    ----------
    variant : LoadedVariant
        The variant (:func:`model.load_variant`), or a baseline of it.
    stimuli : PreparedSet
        The set (``load_prepared_set``).
    path : str or Path
        The relevance file.
    rows : numpy.ndarray, optional
        Explain only these manifest rows.
    method : str
        The method.
    target_rule : {"true", "pred"}
        Explain the true or the predicted class.
    batch_size, device, fast, tolerance, progress
        As :func:`model.lrp.explain_images`.
    extra : dict, optional
        More ``meta`` keys.
    set_hash : str, optional
        The set's content hash.
    name : str, optional
        The variant recorded in ``meta`` (a baseline's maps record the variant's own name).

    Returns
    -------
    ExplainedMaps
        As :func:`explain_to_file`.
    """
    if target_rule not in ("true", "pred"):
        raise InputError(f"target must be 'true' or 'pred', got '{target_rule}'")
    rows = np.arange(len(stimuli.manifest)) if rows is None else np.asarray(rows, dtype=np.int64)
    manifest = stimuli.manifest.iloc[rows].reset_index(drop=True)
    target = true_targets(variant, manifest) if target_rule == "true" else None
    meta = {"variant": name or variant.name, "stimuli": stimuli.name, "target_rule": target_rule, "extra": extra,
            "set_hash": set_hash}
    return explain_to_file(variant.net, lambda a, b: stimuli.read_images(rows[a:b]), len(rows), stimuli.shape,
                           variant.to_input, path, stimulus_id=list(manifest.stimulus_id), meta=meta, method=method,
                           target=target, batch_size=batch_size, device=device, fast=fast, tolerance=tolerance,
                           progress=progress)


def summary_line(maps: ExplainedMaps) -> str:
    """One printed line: how many maps, backend, conservation, flags.

    Parameters
    ----------
    maps : ExplainedMaps
        What :func:`explain_to_file` returned (maps, backend, conservation check).

    Returns
    -------
    str
        The line.
    """
    c = maps.conservation
    head = f"{len(maps.target)} maps ({c['method']}, {maps.backend})"
    if not c["applicable"]:
        cons = "conservation: not applicable"
    elif c["median_ratio"] is None:
        cons = "conservation: no finite map"
    else:
        cons = (f"sum R / logit: median {c['median_ratio']:.4f}, max |ratio - 1| {c['max_abs_error']:.2e} "
                f"(tolerance {c['tolerance']:g})")
    flags = f"FLAGGED {len(maps.flagged)} map(s): {len(c['nonfinite'])} not finite, {len(c['far_off'])} far off" \
        if maps.flagged else "none flagged"
    return f"{head}; {cons}; {flags}"
