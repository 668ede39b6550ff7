"""``python -m model explain``: a variant's relevance maps of a prepared set, into the contract file.

Writes ``<out>/relevance/<variant>/<set>.npz`` (:mod:`stimuli.contracts.relevance`) batch by
batch through :func:`model.explain_stream.explain_variant`, with ``provenance.json`` beside it;
``--baseline untrained|random`` explains the variant's null models instead
(:func:`model.sanity.baseline_variant`), ``--images N`` a seeded subset of the set. The maps
themselves are :mod:`model.lrp`. :func:`ensure_maps` is what the other commands (evaluate,
ground truth) use: the maps already in the contract file when they fit, made there otherwise.

Examples
--------
::

    python -m model explain --variant vgg16-imagenet-gender-s0 --stimuli orl128
    python -m model explain --variant vgg16-imagenet-gender-s0 --stimuli orl128 --baseline untrained --images 40
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from stimuli.contracts.cli import command_parser
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.prepared import PreparedSet, load_prepared_set
from stimuli.contracts.provenance import Provenance, record_run
from stimuli.contracts.relevance import (
    BASELINE_KINDS,
    SET_HASH_KEY,
    RelevanceMaps,
    baseline_set,
    load_relevance,
    relevance_path,
)

from .explain_stream import explain_variant, summary_line
from .launch import add_execution_arguments, dispatch
from .lrp import CONSERVATION_TOLERANCE, DEFAULT_METHOD, check_method, resolve_device
from .options import add_results_root
from .sanity import baseline_variant
from .variants import LoadedVariant, load_variant

__all__ = ["ensure_maps", "image_subset"]


DESCRIPTION = (  # the command's --help text
    "Relevance maps (LRP with zennit, or a gradient baseline) of one variant on a "
    "prepared stimulus set, written to <out>/relevance/<variant>/<set>.npz.")


def ensure_maps(variant: LoadedVariant, stimuli: PreparedSet, results: str | Path, *, composite: str,
                target: str, batch_size: int, device: torch.device | str,
                progress: bool = False) -> RelevanceMaps:
    """The variant's relevance maps of every stimulus (manifest order), explained if missing.

    Maps already in ``<results>/relevance/<variant>/<set>.npz`` with the same composite and
    target rule, made on this version of the set (its content hash), are reused; otherwise
    they are made and written there (the contract file), batch by batch.

    Parameters
    ----------
    variant : LoadedVariant
        The variant (:func:`model.load_variant`).
    stimuli : PreparedSet
        The prepared set (:func:`stimuli.contracts.prepared.load_prepared_set`).
    results : str or Path
        The results root the relevance file lives under.
    composite : str
        The method (:func:`model.lrp.methods`).
    target : {"true", "pred"}
        Explain the true or the predicted class.
    batch_size : int
        Images per batch when maps are made.
    device : torch.device or str
        Where maps are made.
    progress : bool
        Show a progress bar while explaining.

    Returns
    -------
    RelevanceMaps
        The maps, memory-mapped from the contract file: read them with ``take(rows)`` or
        :func:`stimuli.contracts.relevance.set_mean_map`.
    """
    path = relevance_path(variant.name, stimuli.name, results)
    ids = list(stimuli.manifest.stimulus_id)
    if path.is_file():
        maps = load_relevance(path)
        if (maps.meta.get("composite") == composite and maps.meta.get("target_rule") == target
                and maps.meta.get(SET_HASH_KEY) == stimuli.content_hash
                and list(maps.stimulus_id) == ids and maps.relevance.shape[1:] == stimuli.shape):
            return maps
    prov = Provenance(config={"variant": variant.name, "stimuli": stimuli.name, "composite": composite,
                              "target": target, "by": "model evaluate"})
    prov.add_input(stimuli.folder / "manifest.csv")
    explained = explain_variant(variant, stimuli, path, method=composite, target_rule=target, batch_size=batch_size,
                                device=device, progress=progress, set_hash=stimuli.content_hash)
    record_run(path.parent, prov, run=stimuli.name, output=path)
    tqdm.write(f"{variant.name}: {summary_line(explained)}")
    return load_relevance(path)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m model explain`` (its ``--help``)."""
    parser = command_parser("model", "explain", DESCRIPTION)
    parser.add_argument("--variant", required=True, help="variant name, e.g. vgg16-imagenet-gender-s0")
    parser.add_argument("--stimuli", required=True, help="prepared stimulus set name (python -m stimuli prepare)")
    parser.add_argument("--composite", default=DEFAULT_METHOD,
                        help=f"zennit composite name or baseline (default {DEFAULT_METHOD}; "
                             "gradient, gradient_x_input; unknown names list the valid ones)")
    parser.add_argument("--target", choices=("true", "pred"), default="true",
                        help="explain the true class (default) or the predicted one")
    add_results_root(parser)
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch (default 16)")
    parser.add_argument("--tolerance", type=float, default=CONSERVATION_TOLERANCE,
                        help="flag maps with |sum R / logit - 1| above this (default 0.5; 1e-3 for bias-free nets)")
    parser.add_argument("--reference", action="store_true",
                        help="use zennit's hooks even where the fast exact path serves the composite")
    parser.add_argument("--baseline", choices=BASELINE_KINDS, nargs="+", metavar="KIND",
                        help="explain null models instead: 'untrained' (the variant's trained layers "
                             "re-initialised, not trained) and/or 'random' (every layer re-initialised); "
                             "each written to <set>.baseline-<kind>.npz next to the variant's maps")
    parser.add_argument("--baseline-seed", type=int, default=0,
                        help="seed of the baseline's re-initialisation (mixed with the variant name; default 0)")
    parser.add_argument("--images", type=int, default=None,
                        help="explain a seeded random subset of this many images (default: all)")
    parser.add_argument("--image-seed", type=int, default=0, help="seed of the --images subset (default 0)")
    add_execution_arguments(parser)  # --no-amp, --launcher local|slurm: one job for the variant
    return parser


def image_subset(n_total: int, n: int | None, seed: int = 0) -> np.ndarray:
    """Rows of a seeded subset of ``n`` of ``n_total`` images, in set order (all when ``n`` is None).

    The same ``(n, seed)`` picks the same images for every variant, so maps of a subset pair up.

    Parameters
    ----------
    n_total : int
        Images in the set.
    n : int or None
        Images to pick (None, or at least ``n_total``: all of them).
    seed : int
        Seed of the pick.

    Returns
    -------
    numpy.ndarray
        Sorted row indices.

    Examples
    --------
    >>> image_subset(10, 3, seed=1).tolist() == image_subset(10, 3, seed=1).tolist()
    True
    """
    if n is None or n >= n_total:
        return np.arange(n_total)
    if n < 1:
        raise InputError(f"--images must be at least 1, got {n}")
    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m model explain`` with ``argv`` (default: the command line); the exit status."""
    args = build_parser().parse_args(argv)
    if (code := dispatch("explain", args, sys.argv[1:] if argv is None else argv)) is not None:
        return code
    check_method(args.composite)
    device = resolve_device(args.device)
    stimuli = load_prepared_set(args.stimuli, args.out)
    variant = load_variant(args.variant, args.out, device)
    rows = image_subset(len(stimuli.manifest), args.images, args.image_seed)
    for kind in args.baseline or [None]:  # one run per baseline kind, the variant loaded once
        extra: dict[str, Any] = {}
        explained, set_name = variant, args.stimuli
        if kind:
            explained, extra["baseline"] = baseline_variant(variant, kind, seed=args.baseline_seed)
            set_name = baseline_set(args.stimuli, kind)
        if len(rows) < len(stimuli.manifest):
            extra["images"] = {"n": len(rows), "of": len(stimuli.manifest), "seed": args.image_seed}
        prov = Provenance(config={**vars(args), "baseline": kind},
                          seeds={"baseline": args.baseline_seed, "images": args.image_seed})
        prov.add_input(stimuli.folder / "manifest.csv")
        model_file = Path(args.out) / "models" / args.variant / "model.pt"
        if model_file.is_file():
            prov.add_input(model_file)
        started = time.perf_counter()
        path = relevance_path(args.variant, set_name, args.out)
        maps = explain_variant(explained, stimuli, path, rows=rows, method=args.composite, target_rule=args.target,
                               batch_size=args.batch_size, device=device, fast=not args.reference,
                               tolerance=args.tolerance, progress=True, extra=extra,
                               set_hash=stimuli.content_hash, name=args.variant)
        record_run(path.parent, prov, run=set_name, output=path)
        print(summary_line(maps))
        print(f"wrote {path} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
