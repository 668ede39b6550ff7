"""``python -m model evaluate CONFIG``: relevance-based masking transfer, ground truth, sanity checks.

For every ordered pair (source, target) of variants and every fraction f of a uniform grid
(``masking.fractions``, default 0.05 to 0.5 in steps of 0.05), each of the target's held-out
images (its saved split) is masked with the source's relevance map of that image: ``remove``
replaces the source's top-f most relevant pixels by the fill (the set's background grey, or a
blurred copy of the image), ``keep`` replaces all the others. Baselines, sources like the
variants: random blobs of the same area drawn inside the face aperture (``random``), each
variant's set-mean map applied to every image (``setmean:<variant>``) and the target's own map.
The masks and curves are :mod:`model.masking`; AOPC per image, relative transfer and the
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

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from stimuli.contracts.config import load_config, require, to_dict
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.outputs import atomic_output_dir
from stimuli.contracts.provenance import (
    Provenance,
    atomic_write_json,
    atomic_write_text,
    record_run,
)
from stimuli.contracts.relevance import (
    SET_HASH_KEY,
    RelevanceMaps,
    load_relevance,
    relevance_path,
    set_mean_map,
)

from .launch import add_execution_arguments, dispatch
from .masking import (
    RANDOM,
    SCORES,
    SharedTrunk,
    fill_images,
    mask_images,
    masked_scores,
    masking_curves,
    random_masks,
    top_fraction_masks,
)
from .masking_stats import (
    METRICS,
    aopc_table,
    asymmetry_table,
    baseline_summary,
    group_table,
    image_aopc,
    matrix,
    transfer_table,
)

__all__ = [
    "uniform_fractions",
    "MaskingConfig",
    "GroundTruthEntry",
    "SanityConfig",
    "EvaluateConfig",
    "top_fraction_masks",
    "random_masks",
    "mask_images",
    "fill_images",
    "masked_scores",
    "SharedTrunk",
    "source_maps",
    "masking_curves",
    "aopc_table",
    "transfer_table",
    "asymmetry_table",
    "group_table",
    "evaluate",
    "main",
]


# --------------------------------------------------------------------------- config


def uniform_fractions(step: float = 0.05, stop: float = 0.5) -> list[float]:
    """The grid ``step, 2 step, ..., stop`` (fraction 0 is always added).

    >>> uniform_fractions(0.1, 0.5)
    [0.1, 0.2, 0.3, 0.4, 0.5]
    """
    return [round(step * k, 10) for k in range(1, int(round(stop / step)) + 1)]


@dataclass
class MaskingConfig:
    """Relevance-based masking of the targets' held-out images."""

    # a uniform grid step, 2 step, ..., so that AOPC (a mean over fractions) weighs the curve evenly
    fractions: list[float] = field(default_factory=uniform_fractions)
    modes: list[Literal["remove", "keep"]] = field(default_factory=lambda: ["remove", "keep"])
    # hidden pixels become a blurred copy of the image (or the set's background grey: with it,
    # removing everything leaves one blank image and the score is exactly chance)
    fill: Literal["background", "blur"] = "blur"
    blur_sigma: float = 3.0  # px on the stimulus grid, for fill: blur
    random_repeats: int = 3
    # random masks: blobs (thresholded Gaussian noise of this sigma, px), contiguous like relevance
    # masks, so the baseline adds no pixel noise the relevance masks lack; 0 = independent pixels
    random_smoothing: float = 4.0
    # random blobs inside the face aperture (where the maps can point; blobs on the constant
    # background hide nothing and flatter every face-centred map), or anywhere on the grid
    random_within: Literal["aperture", "grid"] = "aperture"
    # set-mean-map baselines: of every variant (all), of each target's own variant only, or none
    set_mean: Literal["all", "own", "none"] = "all"
    within: Literal["grid", "aperture"] = "grid"  # rank pixels of the whole grid or the face aperture
    transfer_mode: Literal["remove", "keep"] = "remove"  # the mode the transfer matrix is made of
    # what AOPC measures per image: the true-class probability (graded), correctness, or
    # correctness weighted so that its mean is the balanced accuracy
    metric: Literal["p_true", "accuracy", "balanced_accuracy"] = "p_true"
    bootstrap: int = 2000  # resamples of images for every CI and the asymmetry p (seeded by seed)
    confidence: float = 0.95

    def __post_init__(self):
        require(len(self.fractions) >= 1, "fractions", "needs at least one fraction")
        require(all(0 < f <= 1 for f in self.fractions), "fractions", "must lie in (0, 1] (0 is always added)")
        require(len(set(self.fractions)) == len(self.fractions), "fractions", "lists a fraction twice")
        grid = sorted(self.fractions)
        require(np.allclose(grid, grid[0] * np.arange(1, len(grid) + 1), atol=1e-9), "fractions",
                f"must be a uniform grid step, 2 step, ... (AOPC averages over the fractions), e.g. "
                f"{uniform_fractions(0.1, 0.5)}; got {self.fractions}")
        require(len(self.modes) >= 1 and len(set(self.modes)) == len(self.modes), "modes",
                "must list remove and/or keep once each")
        require(self.transfer_mode in self.modes, "transfer_mode", "must be one of the listed modes")
        require(self.metric in METRICS, "metric", f"must be one of {', '.join(METRICS)}")
        require(self.blur_sigma > 0, "blur_sigma", "must be positive")
        require(self.random_repeats >= 1, "random_repeats", "must be at least 1")
        require(self.random_smoothing >= 0, "random_smoothing", "must be 0 (pixels) or a blob sigma in px")
        require(self.bootstrap >= 100, "bootstrap", "needs at least 100 resamples")
        require(0 < self.confidence < 1, "confidence", "must lie in (0, 1)")


@dataclass
class GroundTruthEntry:
    """One ground-truth check: a variant trained on a set whose evidence lies in one region."""

    variant: str
    stimuli: str | None = None  # default: the set the variant was trained on
    region: str | None = None  # default: the set's own region mask (stimuli synth)
    threshold: float = 0.8  # relevance mass accuracy the variant must reach

    def __post_init__(self):
        require(0 < self.threshold <= 1, "threshold", "must lie in (0, 1]")


@dataclass
class SanityConfig:
    """Adebayo et al. (2018) randomisation checks on some variants."""

    variants: list[str] = field(default_factory=list)  # default: every evaluated variant
    composites: list[str] = field(default_factory=list)  # default: the config's composite
    images: int = 16  # held-out images whose maps are compared
    random_labels: bool = True  # also retrain each variant's recipe on shuffled labels

    def __post_init__(self):
        require(self.images >= 2, "images", "must be at least 2")


@dataclass
class EvaluateConfig:
    """``python -m model evaluate CONFIG``: which variants, how to explain, how to mask."""

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


# --------------------------------------------------------------------------- inputs


def held_out(variant, stimuli, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Manifest rows of the variant's ``split`` images in ``stimuli`` and their class labels.

    The split is the one saved with the variant (``split.csv``), so every target is tested on
    images it never trained on.
    """
    path = Path(variant.folder) / "split.csv"
    if not path.is_file():
        raise InputError(f"{path}: the variant's saved split is missing; retrain it")
    table = pd.read_csv(path, dtype={"stimulus_id": str}, keep_default_na=False)
    for column in ("stimulus_id", "split", "label"):
        if column not in table.columns:
            raise InputError(f"{path}: missing column '{column}'")
    if split != "all":
        table = table[table.split == split]
    if len(table) == 0:
        raise InputError(f"{path}: variant {variant.name} has no '{split}' images")
    rows = np.array([stimuli.index_of(sid) for sid in table.stimulus_id], dtype=np.int64)
    return rows, table.label.to_numpy(dtype=np.int64)


def source_maps(variant, stimuli, results: Path, *, composite: str, target: str, batch_size: int,
                device, progress: bool = False) -> RelevanceMaps:
    """The variant's relevance maps of every stimulus (manifest order), explained if missing.

    Maps already in ``<results>/relevance/<variant>/<set>.npz`` with the same composite and
    target rule, made on this version of the set (its content hash), are reused; otherwise
    they are made and written there (the contract file), batch by batch. The maps come back
    memory-mapped from that file: read them with ``take(rows)`` / :func:`set_mean_map`.
    """
    from .explain_stream import explain_variant, summary_line

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


# --------------------------------------------------------------------------- the command


def _variant_names(config: EvaluateConfig, where: str) -> list[str]:
    names = list(config.variants)
    if config.grid:
        from .config import expand_grid, load_grid

        grid_path = Path(config.grid)
        if not grid_path.is_file() and not grid_path.is_absolute():
            grid_path = Path(where).parent / config.grid
        names += [v.variant for v in expand_grid(load_grid(grid_path), str(grid_path))
                  if not v.spec.is_face_source and v.variant not in names]
    return names


def _config_hash(config: EvaluateConfig) -> str:
    return hashlib.sha256(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()[:16]


def evaluate(config: EvaluateConfig, results: str | Path = "results", *, where: str = "config",
             out: str | Path | None = None, device=None, force: bool = False, progress: bool = True,
             command: list[str] | None = None) -> Path:
    """Run an evaluate config; returns the output folder ``<out>/evaluate/<name>/``.

    Per-target results are kept in a work folder as they finish, so an interrupted run resumes
    where it stopped; a finished folder made from the same config is left as it is.
    """
    from . import load_variant
    from .explain import check_method, resolve_device

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
        tables.update(_masking(config, variants, results, work, device, prov, progress, summary))
    if config.groundtruth:
        from .groundtruth import groundtruth_entry

        rows, per_image = [], []
        for entry in config.groundtruth:
            scores, row = groundtruth_entry(entry, results, composite=config.composite, device=device,
                                            batch_size=config.batch_size, progress=progress)
            rows.append(row)
            per_image.append(scores)
        tables["groundtruth"] = pd.DataFrame(rows)
        tables["groundtruth_images"] = pd.concat(per_image, ignore_index=True)
    if config.sanity is not None and (config.sanity.variants or names):
        from .sanity import sanity_checks

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


def _masking(config: EvaluateConfig, variants: dict, results: Path, work: Path, device, prov: Provenance,
             progress: bool, summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    from stimuli.contracts.prepared import load_prepared_set

    masking = config.masking
    assert masking is not None
    sets = {v.config.get("stimuli") for v in variants.values()}
    set_name = config.stimuli or (sets.pop() if len(sets) == 1 else None)
    if set_name is None:
        raise InputError(f"the variants were trained on different sets ({', '.join(sorted(map(str, sets)))}); "
                         "name one with 'stimuli'")
    stimuli = load_prepared_set(set_name, results)
    prov.add_input(stimuli.folder / "manifest.csv")
    within = None
    if masking.within == "aperture":
        within = stimuli.aperture
        if within is None:
            raise InputError(f"masking.within: aperture, but set '{set_name}' has no aperture")
    aperture = stimuli.aperture if masking.random_within == "aperture" else None
    if masking.random_within == "aperture" and aperture is None:
        tqdm.write(f"warning: set '{set_name}' has no face aperture; random masks are drawn over the whole grid")
    if aperture is not None:  # before any map is made: random blobs must fit inside the aperture
        random_masks(0, stimuli.shape, masking.fractions, seed=0, within=aperture,
                     total=int(within.sum()) if within is not None else int(np.prod(stimuli.shape)))
    maps = {n: source_maps(v, stimuli, results, composite=config.composite, target=config.target,
                           batch_size=config.batch_size, device=device, progress=progress)
            for n, v in variants.items()}
    for n in variants:
        prov.add_input(relevance_path(n, stimuli.name, results))
    set_means = {n: set_mean_map(m, name=f"relevance of {n}") for n, m in maps.items()}
    accuracy_parts, image_parts = [], []
    trunks = SharedTrunk()  # the targets of one arm share their frozen trunk's passes
    for n, target in tqdm(variants.items(), desc="targets", unit="variant", disable=not progress):
        parts = work / f"accuracy-{n}.csv", work / f"images-{n}.csv"
        if all(part.is_file() for part in parts):  # finished before an interruption
            accuracy_parts.append(pd.read_csv(parts[0]))
            image_parts.append(pd.read_csv(parts[1], dtype={"stimulus_id": str}, keep_default_na=False))
            continue
        rows, labels = held_out(target, stimuli, config.split)
        means = {} if masking.set_mean == "none" else (
            {n: set_means[n]} if masking.set_mean == "own" else set_means)
        curve, per_image = masking_curves(
            target, stimuli.read_images(rows), labels, {s: m.take(rows) for s, m in maps.items()}, masking=masking,
            background=stimuli.background, seed=config.seed, within=within, aperture=aperture, set_means=means,
            stimulus_id=stimuli.manifest.stimulus_id.to_numpy()[rows], batch_size=config.batch_size,
            progress=progress, desc=n, trunks=trunks)
        images = image_aopc(per_image)
        curve.to_csv(parts[0], index=False)
        images.to_csv(parts[1], index=False)
        accuracy_parts.append(curve)
        image_parts.append(images)
    accuracy = pd.concat(accuracy_parts, ignore_index=True)
    images = pd.concat(image_parts, ignore_index=True)
    stats = {"metric": masking.metric, "n_boot": masking.bootstrap, "seed": config.seed,
             "confidence": masking.confidence}
    tables = {"accuracy": accuracy, "aopc_per_image": images, "aopc": aopc_table(images, **stats)}
    names = list(variants)
    for mode in masking.modes:
        transfer = transfer_table(images, mode, **stats)
        tables[f"transfer_{mode}"] = transfer
        tables[f"matrix_{mode}"] = matrix(transfer, names=names)
        tables[f"matrix_{mode}_relative"] = matrix(transfer, "relative", names=names)
        tables[f"asymmetry_{mode}"] = asymmetry_table(images, mode, **stats)
        tables[f"groups_{mode}"] = group_table(transfer)
    summary["stimuli"] = set_name
    summary["random_within"] = "aperture" if aperture is not None else "grid"
    summary["bootstrap"] = {"resamples": masking.bootstrap, "seed": config.seed, "confidence": masking.confidence,
                            "unit": "images"}
    summary["own_vs_random"] = _own_vs_random(accuracy, masking.metric)
    summary["baselines"] = baseline_summary(tables["aopc"], masking.transfer_mode)
    return tables


def _own_vs_random(accuracy: pd.DataFrame, metric: str, fraction: float = 0.2) -> list[dict[str, Any]]:
    """Per variant: scores after removing its own top pixels vs random pixels (the issue's check),
    at the grid's fraction nearest to ``fraction``."""
    rows = []
    grid = np.unique(accuracy.fraction[accuracy.fraction > 0])
    if not len(grid):
        return rows
    fraction = float(grid[np.argmin(np.abs(grid - fraction))])
    table = accuracy[(accuracy["mode"] == "remove") & np.isclose(accuracy.fraction, fraction)]
    for target, group in table.groupby("target"):
        own, rand = group[group.source == target], group[group.source == RANDOM]
        unmasked = accuracy[(accuracy.target == target) & (accuracy["mode"] == "remove")
                            & (accuracy.fraction == 0) & (accuracy.source == target)]
        if len(own) and len(rand) and len(unmasked):
            row = {"variant": target, "fraction": fraction, "metric": metric}
            for score in SCORES:
                row.update({f"unmasked_{score}": float(unmasked[score].iloc[0]),
                            f"remove_own_{score}": float(own[score].iloc[0]),
                            f"remove_random_{score}": float(rand[score].iloc[0])})
            row["own_lowers_more"] = bool(own[metric].iloc[0] < rand[metric].iloc[0])
            for score in SCORES:  # on every score: balanced accuracy is coarse with few images of a class
                row[f"own_lowers_more_{score}"] = bool(own[score].iloc[0] < rand[score].iloc[0])
            rows.append(row)
    return rows


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m model evaluate")
    parser.description = ("Relevance-based masking of every ordered pair of variants (transfer matrix, "
                          "AOPC, asymmetry, group summaries), plus the config's ground-truth and sanity "
                          "checks, written to <out>/evaluate/<name>/ (tables/*.csv, summary.json, "
                          "provenance.json). Resumes an interrupted run; a finished one is kept.")
    parser.add_argument("config", help="evaluate YAML, e.g. model/configs/demo_evaluate.yaml")
    parser.add_argument("--out", default="results", help="results root: reads models/stimuli/relevance, "
                                                         "writes evaluate/ (default results)")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--force", action="store_true", help="redo a finished evaluation")
    add_execution_arguments(parser)  # --no-amp, --launcher local|slurm: the evaluation as one job
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
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
