"""``python -m model evaluate CONFIG``: relevance-based masking transfer, ground truth, sanity checks.

For every ordered pair (source, target) of variants and every fraction f of a uniform grid
(``masking.fractions``, default 0.05 to 0.5 in steps of 0.05), each of the target's held-out
images (its saved split) is masked with the source's relevance map of that image: ``remove``
replaces the source's top-f most relevant pixels by the fill (the set's background grey, or a
blurred copy of the image), ``keep`` replaces all the others. Baselines, sources like the
variants: random blobs of the same area drawn inside the face aperture (``random``), each
variant's set-mean map applied to every image (``setmean:<variant>``) and the target's own map.
The masking config, masks and curves are :mod:`model.masking`, the run over the targets
:mod:`model.transfer`; AOPC per image, relative transfer and the
bootstrap over images are :mod:`model.masking_stats`. Tables (``tables/*.csv``):

* ``accuracy``: set-level scores per source, target, mode and fraction;
* ``aopc_per_image``: AOPC of every image (true-class probability, accuracy, balanced accuracy);
* ``aopc``: per (source, target, mode), the mean over images on ``masking.metric`` with a
  bootstrap CI (``n_boot``, ``boot_seed`` recorded);
* ``transfer_<mode>``: M[a, b] with the baselines and the relative transfer
  ``(aopc - random) / (own - random)`` with its CI; ``matrix_<mode>[_relative]`` the wide forms;
* ``asymmetry_<mode>``: per pair, raw ``M[a, b] - M[b, a]`` and ``relative_ab - relative_ba``
  with its bootstrap CI and p over images; ``groups_<mode>``: transfer by relation of the pair
  (:func:`stimuli.contracts.variants.variant_relation`: same, seed, task, pretrain, ...).

The config may also list ground-truth checks (:mod:`model.groundtruth`) and sanity checks
(:mod:`model.sanity`); see ``model/configs/demo_evaluate.yaml``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch

from stimuli.contracts.cli import add_force, command_parser
from stimuli.contracts.config import load_config, require, to_dict
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.outputs import atomic_output_dir
from stimuli.contracts.provenance import (
    Provenance,
    atomic_write_json,
    atomic_write_text,
    record_run,
)

from .config import expand_grid, load_grid
from .groundtruth import groundtruth_entry
from .launch import add_execution_arguments, dispatch
from .lrp import check_method, resolve_device
from .masking import MaskingConfig
from .options import add_results_root
from .sanity import sanity_checks
from .transfer import transfer_tables
from .variants import load_variant

__all__ = [
    "GroundTruthEntry",
    "SanityConfig",
    "EvaluateConfig",
    "evaluate",
]


# --------------------------------------------------------------------------- config


DESCRIPTION = (  # the command's --help text
    "Relevance-based masking of every ordered pair of variants (transfer matrix, "
    "AOPC, asymmetry, group summaries), plus the config's ground-truth and sanity "
    "checks, written to <out>/evaluate/<name>/ (tables/*.csv, summary.json, "
    "provenance.json). Resumes an interrupted run; a finished one is kept.")


@dataclass
class GroundTruthEntry:
    """One ground-truth check: a variant trained on a set whose evidence lies in one region.

    Parameters
    ----------
    variant : str
        The variant (trained on a ``stimuli synth`` set).
    stimuli : str, optional
        The set its maps are scored on (default: the one it was trained on).
    region : str, optional
        A region spec (default: the set's own region mask).
    threshold : float
        Relevance mass accuracy the variant must reach.
    """

    variant: str
    stimuli: str | None = None  # default: the set the variant was trained on
    region: str | None = None  # default: the set's own region mask (stimuli synth)
    threshold: float = 0.8  # relevance mass accuracy the variant must reach

    def __post_init__(self):
        require(0 < self.threshold <= 1, "threshold", "must lie in (0, 1]")


@dataclass
class SanityConfig:
    """Adebayo et al. (2018) randomisation checks on some variants.

    Parameters
    ----------
    variants : list of str
        The variants checked (default: every evaluated variant).
    composites : list of str
        The methods checked (default: the config's composite).
    images : int
        Held-out images whose maps are compared.
    random_labels : bool
        Also retrain each variant's recipe on shuffled labels.
    """

    variants: list[str] = field(default_factory=list)  # default: every evaluated variant
    composites: list[str] = field(default_factory=list)  # default: the config's composite
    images: int = 16  # held-out images whose maps are compared
    random_labels: bool = True  # also retrain each variant's recipe on shuffled labels

    def __post_init__(self):
        require(self.images >= 2, "images", "must be at least 2")


@dataclass
class EvaluateConfig:
    """``python -m model evaluate CONFIG``: which variants, how to explain, how to mask.

    Parameters
    ----------
    variants : list of str
        The evaluated variants.
    grid : str, optional
        A training grid YAML: evaluate all of its (non-source) variants too.
    name : str, optional
        Output folder name (default: the config file's stem).
    stimuli : str, optional
        The set (default: the one the variants were trained on).
    composite : str
        The LRP composite of the maps.
    target : {"true", "pred"}
        Explain the true or the predicted class (a YAML ``true`` is accepted).
    split : {"test", "val", "train", "all"}
        Which of each target's saved images are masked.
    seed : int
        Seed of the random masks and of the bootstrap.
    batch_size : int
        Images per batch.
    masking : MaskingConfig or None
        The masking section (None: no masking).
    groundtruth : list of GroundTruthEntry
        Ground-truth checks.
    sanity : SanityConfig or None
        Randomisation checks.
    """

    variants: list[str] = field(default_factory=list)
    grid: str | None = None  # a training grid YAML: evaluate all of its (non-source) variants
    name: str | None = None  # output folder name (default: the config file's stem)
    stimuli: str | None = None  # default: the set the variants were trained on
    composite: str = "epsilon_plus_flat"
    target: Literal["true", "pred"] | bool = "true"  # YAML reads a bare true as a boolean: accepted
    split: Literal["test", "val", "train", "all"] = "test"
    seed: int = 0
    batch_size: int = 32
    masking: MaskingConfig | None = field(default_factory=MaskingConfig)
    groundtruth: list[GroundTruthEntry] = field(default_factory=list)
    sanity: SanityConfig | None = None

    def __post_init__(self):
        require(self.target is not False, "target", "must be 'true' or 'pred'")
        if self.target is True:
            self.target = "true"
        require(self.batch_size >= 1, "batch_size", "must be at least 1")
        require(len(set(self.variants)) == len(self.variants), "variants", "lists a variant twice")


# --------------------------------------------------------------------------- the command


def _variant_names(config: EvaluateConfig, where: str) -> list[str]:
    names = list(config.variants)
    if config.grid:
        grid_path = Path(config.grid)
        if not grid_path.is_file() and not grid_path.is_absolute():
            grid_path = Path(where).parent / config.grid
        names += [v.variant for v in expand_grid(load_grid(grid_path), str(grid_path))
                  if not v.spec.is_face_source and v.variant not in names]
    return names


def _config_hash(config: EvaluateConfig) -> str:
    return hashlib.sha256(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()[:16]


def evaluate(config: EvaluateConfig, results: str | Path = "results", *, where: str = "config",
             out: str | Path | None = None, device: torch.device | str | None = None, force: bool = False, progress: bool = True,
             command: list[str] | None = None) -> Path:
    """Run an evaluate config: masking tables, ground-truth and sanity checks.

    Per-target results are kept in a work folder as they finish, so an interrupted run resumes
    where it stopped; a finished folder made from the same config is left as it is.

    Parameters
    ----------
    config : EvaluateConfig
        The config.
    results : str or Path
        The results root (variants, sets, relevance files).
    where : str
        The config file (named in errors, its folder resolves a relative ``grid``).
    out : str or Path, optional
        Root of the output (default: ``results``).
    device : torch.device or str, optional
        Where maps are made and targets run.
    force : bool
        Redo a finished evaluation.
    progress : bool
        Show a bar per target and per curve.
    command : list of str, optional
        What ``provenance.json`` records as the command.

    Returns
    -------
    Path
        The output folder ``<out>/evaluate/<name>/`` (``tables/*.csv``, ``summary.json``).
    """
    results = Path(results)
    for method in [config.composite, *(config.sanity.composites if config.sanity else [])]:
        check_method(method)
    names = _variant_names(config, where)
    if not names and not config.groundtruth:
        raise InputError(f"{where}: list 'variants' (or a 'grid') or a 'groundtruth' section")
    name = config.name or Path(where).stem
    final = Path(out or results) / "evaluate" / name
    digest = _config_hash(config)
    if final.is_dir() and not force:
        try:
            done = json.loads((final / "summary.json").read_text()).get("config_hash")
        except (OSError, json.JSONDecodeError):
            done = None
        if done == digest:
            print(f"{final}: up to date (same config); use --force to redo it")
            return final
    device = resolve_device(device)
    work = final.with_name(f".{name}.work")
    if work.is_dir() and _read_hash(work) != digest:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(work / "config_hash", digest)
    prov = Provenance(command=command, config=to_dict(config), seeds={"masking": config.seed, "bootstrap": config.seed})
    if Path(where).is_file():
        prov.add_input(where)
    started = time.perf_counter()
    summary: dict[str, Any] = {"config_hash": digest, "variants": names}
    tables: dict[str, pd.DataFrame] = {}

    variants = {n: load_variant(n, results, device) for n in names}
    if names and config.masking is not None:
        tables.update(transfer_tables(config, variants, results, work, device, prov, progress, summary))
    if config.groundtruth:
        rows, per_image = [], []
        for entry in config.groundtruth:
            scores, row = groundtruth_entry(entry, results, composite=config.composite, device=device,
                                            batch_size=config.batch_size, progress=progress)
            rows.append(row)
            per_image.append(scores)
        tables["groundtruth"] = pd.DataFrame(rows)
        tables["groundtruth_images"] = pd.concat(per_image, ignore_index=True)
    if config.sanity is not None and (config.sanity.variants or names):
        chosen = config.sanity.variants or names
        sanity_rows = [sanity_checks(variants[n] if n in variants else load_variant(n, results, device),
                                     results, composites=config.sanity.composites or [config.composite],
                                     images=config.sanity.images, random_labels=config.sanity.random_labels,
                                     seed=config.seed, split=config.split, progress=progress)
                       for n in chosen]
        tables["sanity"] = pd.concat(sanity_rows, ignore_index=True)
    summary["seconds"] = time.perf_counter() - started
    with atomic_output_dir(final, replace=True) as folder:
        (folder / "tables").mkdir()
        for key, table in tables.items():
            table.to_csv(folder / "tables" / f"{key}.csv", index=key.startswith("matrix"))
        atomic_write_json(folder / "summary.json", summary)
        record_run(folder, prov)
    shutil.rmtree(work, ignore_errors=True)
    return final


def _read_hash(work: Path) -> str | None:
    try:
        return (work / "config_hash").read_text().strip()
    except OSError:
        return None


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m model evaluate`` (its ``--help``)."""
    parser = command_parser("model", "evaluate", DESCRIPTION)
    parser.add_argument("config", help="evaluate YAML, e.g. model/configs/demo_evaluate.yaml")
    add_results_root(parser)
    add_force(parser)
    add_execution_arguments(parser)  # --no-amp, --launcher local|slurm: the evaluation as one job
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m model evaluate`` with ``argv`` (default: the command line); the exit status."""
    args = build_parser().parse_args(argv)
    if (code := dispatch("evaluate", args, sys.argv[1:] if argv is None else argv)) is not None:
        return code
    config = load_config(EvaluateConfig, args.config)
    folder = evaluate(config, args.out, where=args.config, device=args.device, force=args.force,
                      command=["python", "-m", "model", "evaluate", *(argv if argv is not None else sys.argv[1:])])
    summary = json.loads((folder / "summary.json").read_text())
    for row in summary.get("own_vs_random", []):
        m = row["metric"]
        print(f"{row['variant']}: {m.replace('_', ' ')} after removing the top {row['fraction']:.0%}: own map "
              f"{row[f'remove_own_{m}']:.3f}, random {row[f'remove_random_{m}']:.3f} "
              f"(unmasked {row[f'unmasked_{m}']:.3f})")
    for row in summary.get("baselines", []):
        parts = [f"{name} {row[key][0]:.3f} [{row[key][1]:.3f}, {row[key][2]:.3f}]"
                 for key, name in (("own", "own maps"), ("setmean", "set-mean map"), ("random", "random blobs"))
                 if key in row]
        print(f"{row['variant']}: AOPC ({row['metric']}, {row['mode']}, 95% CI over images): {', '.join(parts)}")
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
