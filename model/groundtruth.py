"""Ground truth for relevance maps: a variant whose evidence lies in one known region.

A variant trained on a synthetic set (``python -m stimuli synth --region R ...``: the class cue
is drawn only inside region R) can only use that region, so its relevance must sit there. Per
held-out image this module scores the relevance map against the region with
:func:`stimuli.contracts.maps.relevance_mass_accuracy` (share of positive relevance inside the region)
and :func:`stimuli.contracts.maps.relevance_rank_accuracy` (share of the top-|region| pixels inside it),
Arras, Osman & Samek (2022) as implemented in Quantus. The region is a parameter: the set's own
``region`` mask by default, or any :mod:`stimuli.regions` spec. For reference the summary gives
the region's share of the grid: what a map spread evenly over the grid would score.

Command::

    python -m model groundtruth --variant vgg16-w0.25-none-gender-s0 --stimuli synth-eyes

Examples
--------
>>> maps = np.zeros((2, 4, 4)); maps[:, 0, 0] = 1.0; maps[1, 3, 3] = 3.0
>>> region = np.zeros((4, 4), bool); region[0, :2] = True
>>> groundtruth_scores(maps, region)[["mass_accuracy", "rank_accuracy"]].to_numpy().tolist()
[[1.0, 1.0], [0.25, 0.5]]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch

from stimuli.contracts.cli import command_parser
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.maps import relevance_mass_accuracy, relevance_rank_accuracy
from stimuli.contracts.outputs import atomic_output_dir
from stimuli.contracts.prepared import PreparedSet, load_prepared_set
from stimuli.contracts.provenance import Provenance, atomic_write_json, record_run
from stimuli.contracts.relevance import relevance_path
from stimuli.regions import region_mask

from .explain import ensure_maps
from .lrp import DEFAULT_METHOD, check_method, resolve_device
from .options import add_results_root
from .variants import held_out, load_variant

__all__ = ["DEFAULT_COMPOSITE", "region_for", "groundtruth_scores", "groundtruth_entry"]


DEFAULT_COMPOSITE = DEFAULT_METHOD  # the explain command's default


DESCRIPTION = (  # the command's --help text
    "Score a variant's relevance maps against the region that holds its evidence "
    "(relevance mass and rank accuracy), written to "
    "<out>/groundtruth/<variant>/<set>[-<region>][-<composite>]/ (scores.csv, summary.json, provenance.json).")


def region_for(stimuli: PreparedSet, region: str | None) -> np.ndarray:
    """The ground-truth region on the set's grid: ``region`` (a spec) or the set's own mask.

    Parameters
    ----------
    stimuli : PreparedSet
        The prepared set.
    region : str or None
        A :mod:`stimuli.regions` spec (None: the set's ``region`` mask).

    Returns
    -------
    numpy.ndarray
        Boolean (H, W).
    """
    if region:
        return region_mask(region, stimuli.shape)
    try:
        return stimuli.mask("region")
    except InputError:
        raise InputError(f"prepared set '{stimuli.name}' has no region mask (it is not a 'stimuli synth' "
                         "set); name a region, e.g. --region eyes") from None


def groundtruth_scores(maps: np.ndarray, region: np.ndarray) -> pd.DataFrame:
    """Relevance mass and rank accuracy of every map against one boolean region.

    Parameters
    ----------
    maps : numpy.ndarray
        Relevance maps (N, H, W).
    region : numpy.ndarray
        Boolean (H, W).

    Returns
    -------
    pandas.DataFrame
        ``index``, ``mass_accuracy``, ``rank_accuracy`` per map (NaN for a non-finite map).
    """
    rows = []
    for i, relevance in enumerate(np.asarray(maps, dtype=np.float64)):
        if not np.isfinite(relevance).all():
            rows.append({"index": i, "mass_accuracy": np.nan, "rank_accuracy": np.nan})
            continue
        rows.append({"index": i, "mass_accuracy": relevance_mass_accuracy(relevance, region),
                     "rank_accuracy": relevance_rank_accuracy(relevance, region)})
    return pd.DataFrame(rows)


def groundtruth_entry(entry, results: str | Path, *, composite: str = DEFAULT_COMPOSITE,
                      device: torch.device | str | None = None,
                      batch_size: int = 32, progress: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score one variant against its evidence region: per-image table and summary.

    The variant's held-out images are scored when ``stimuli`` is the set it was trained on,
    every image otherwise. Maps come from (or are written to) the relevance contract file.

    Parameters
    ----------
    entry : GroundTruthEntry or namespace
        ``variant``, ``stimuli``, ``region`` and ``threshold``.
    results : str or Path
        The results root.
    composite : str
        The LRP composite of the maps.
    device : torch.device or str, optional
        Where maps are made.
    batch_size : int
        Images per batch.
    progress : bool
        Show a progress bar.

    Returns
    -------
    scores : pandas.DataFrame
        One row per image (mass and rank accuracy, correctness).
    summary : dict
        Means, the region's share of the grid and whether the threshold was reached.
    """
    results = Path(results)
    device = resolve_device(device)
    variant = load_variant(entry.variant, results, device)
    set_name = entry.stimuli or variant.config.get("stimuli")
    stimuli = load_prepared_set(set_name, results)
    region = region_for(stimuli, entry.region)
    maps = ensure_maps(variant, stimuli, results, composite=composite, target="true", batch_size=batch_size,
                       device=device, progress=progress)
    if set_name == variant.config.get("stimuli"):
        rows, _ = held_out(variant, stimuli, "test")
        images = "test split"
    else:
        rows, images = np.arange(len(stimuli)), "all"
    scores = groundtruth_scores(maps.take(rows), region)
    scores.insert(0, "stimulus_id", stimuli.manifest.stimulus_id.to_numpy()[rows])
    scores.insert(0, "variant", variant.name)
    scores["correct"] = maps.prediction[rows] == maps.target[rows]
    scores = scores.drop(columns="index")
    correct = scores[scores.correct]
    threshold = float(getattr(entry, "threshold", 0.8))
    mass = float(scores.mass_accuracy.mean())
    summary = {
        "variant": variant.name, "stimuli": stimuli.name, "region": entry.region or "set region mask",
        "composite": composite, "images": images, "n": int(len(scores)),
        "accuracy": float(scores.correct.mean()),
        "mass_accuracy": mass, "rank_accuracy": float(scores.rank_accuracy.mean()),
        "mass_accuracy_correct": float(correct.mass_accuracy.mean()) if len(correct) else float("nan"),
        "rank_accuracy_correct": float(correct.rank_accuracy.mean()) if len(correct) else float("nan"),
        "region_share": float(region.mean()), "threshold": threshold, "passed": bool(mass >= threshold),
    }
    return scores, summary


def _folder_name(stimuli: str, region: str | None, composite: str = DEFAULT_COMPOSITE) -> str:
    """``<set>[-<region>][-<composite>]``: the region when one is named (box specs made safe), the
    composite when it is not the default, so scores of several composites sit side by side."""
    name = stimuli
    if region:
        name += "-" + "".join(c if c.isalnum() or c in "._" else "_" for c in region)
    if composite != DEFAULT_COMPOSITE:
        name += f"-{composite}"
    return name


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m model groundtruth`` (its ``--help``)."""
    parser = command_parser("model", "groundtruth", DESCRIPTION)
    parser.add_argument("--variant", required=True, help="a variant trained on a synthetic set")
    parser.add_argument("--stimuli", default=None, help="prepared set (default: the set the variant trained on)")
    parser.add_argument("--region", default=None,
                        help="eyes, mouth, ... or box:top,bottom,left,right (default: the set's region mask)")
    parser.add_argument("--composite", default=DEFAULT_COMPOSITE, help=f"zennit composite (default {DEFAULT_COMPOSITE})")
    parser.add_argument("--threshold", type=float, default=0.8,
                        help="relevance mass accuracy the variant must reach (default 0.8)")
    add_results_root(parser)
    parser.add_argument("--batch-size", type=int, default=32)
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m model groundtruth`` with ``argv`` (default: the command line); the exit status."""
    args = build_parser().parse_args(argv)
    check_method(args.composite)
    if not 0 < args.threshold <= 1:
        raise InputError(f"--threshold {args.threshold} must lie in (0, 1]")
    entry = SimpleNamespace(variant=args.variant, stimuli=args.stimuli, region=args.region,
                            threshold=args.threshold)
    prov = Provenance(config=vars(args))
    scores, summary = groundtruth_entry(entry, args.out, composite=args.composite, device=args.device,
                                        batch_size=args.batch_size, progress=True)
    path = relevance_path(args.variant, summary["stimuli"], args.out)
    prov.add_input(path)
    final = Path(args.out) / "groundtruth" / args.variant / _folder_name(summary["stimuli"], args.region, args.composite)
    with atomic_output_dir(final, replace=True) as folder:
        scores.to_csv(folder / "scores.csv", index=False)
        atomic_write_json(folder / "summary.json", summary)
        record_run(folder, prov)
    verdict = "PASS" if summary["passed"] else "FAIL"
    print(f"{args.variant} on {summary['stimuli']} ({summary['region']}, {summary['n']} {summary['images']} images, "
          f"accuracy {summary['accuracy']:.3f}): relevance mass accuracy {summary['mass_accuracy']:.3f} "
          f"(region is {summary['region_share']:.1%} of the grid), rank accuracy {summary['rank_accuracy']:.3f}; "
          f"{verdict} at {summary['threshold']:g}")
    print(f"wrote {final}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
