"""The masking run of ``python -m model evaluate``: every target's curves, then the transfer tables.

For each target variant its held-out images (:func:`model.variants.held_out`) are masked with
every source's relevance maps (:func:`model.explain.ensure_maps`) and the baselines
(:func:`masking_curves`, trunk passes shared between targets, :mod:`model.scoring`); each finished
target's rows are kept in the run's work folder, so an interrupted run resumes. The per-image
AOPC then gives the tables of :mod:`model.masking_stats` (AOPC, transfer, asymmetry, groups).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.provenance import Provenance
from stimuli.contracts.relevance import relevance_path, set_mean_map

from .explain import ensure_maps
from .masking import (
    RANDOM,
    SCORES,
    baseline_masks,
    fill_images,
    mask_images,
    random_masks,
    top_fraction_masks,
)
from .masking_stats import (
    aopc_table,
    asymmetry_table,
    baseline_summary,
    group_table,
    image_aopc,
    matrix,
    transfer_table,
)
from .scoring import SharedTrunk, balanced_weights, image_scores, score_summary
from .variants import LoadedVariant, held_out

__all__ = ["masking_curves", "transfer_tables", "own_vs_random"]


def masking_curves(target, images: np.ndarray, labels: np.ndarray, sources: dict[str, np.ndarray], *,
                   masking, background: float, seed: int, within: np.ndarray | None = None,
                   aperture: np.ndarray | None = None, set_means: dict[str, np.ndarray] | None = None,
                   stimulus_id: Sequence[str] | None = None, batch_size: int = 64, progress: bool = False,
                   desc: str = "", trunks=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One target's masking curves: set-level rows and per-image rows, every source, mode, fraction.

    Fraction 0 is always included. The scores of ``accuracy`` rows are averaged over the random
    repeats; per-image rows hold ``p_true`` and ``correct`` (means over repeats) and ``weight``
    (the balanced-accuracy weight, :func:`balanced_weights`).

    Parameters
    ----------
    target : LoadedVariant
        The variant whose scores are measured.
    images : numpy.ndarray
        The target's held-out images (n, H, W).
    labels : numpy.ndarray
        Their class indices.
    sources : dict of str to numpy.ndarray
        Source name -> its relevance maps of those same images (n, H, W).
    masking : MaskingConfig
        Fractions, modes, fill and the random baseline's settings.
    background : float
        The set's background grey.
    seed : int
        Seed of random masks and tie orders.
    within : numpy.ndarray, optional
        Where relevance maps rank pixels.
    aperture : numpy.ndarray, optional
        Where random blobs are drawn.
    set_means : dict of str to numpy.ndarray, optional
        Variant -> its set-mean map (H, W) (the ``setmean:`` baselines).
    stimulus_id : sequence of str, optional
        Ids of the images (default: their positions).
    batch_size : int
        Images per forward pass.
    progress : bool
        Show a progress bar.
    desc : str
        Its label.
    trunks : SharedTrunk, optional
        Shares trunk passes between targets.

    Returns
    -------
    accuracy : pandas.DataFrame
        One row per (source, mode, fraction).
    per_image : pandas.DataFrame
        One row per (source, mode, fraction, image).
    """
    fractions = [0.0] + sorted(masking.fractions)
    n = len(images)
    ids = np.asarray(stimulus_id if stimulus_id is not None else [str(i) for i in range(n)], dtype=str)
    weights = balanced_weights(labels)
    fill = fill_images(images, masking.fill, background, masking.blur_sigma)
    unmasked = image_scores(target, images, labels, batch_size, trunks)
    mask_sets: dict[str, list[list[np.ndarray]]] = {
        name: [top_fraction_masks(maps, fractions, within=within, tie_seed=seed)] for name, maps in sources.items()}
    mask_sets.update(baseline_masks(n, images.shape[1:], fractions, seed=seed, repeats=masking.random_repeats,
                                    smoothing=masking.random_smoothing, aperture=aperture, within=within,
                                    set_means=set_means))
    rows, per_image = [], []
    todo = [(name, mode) for name in mask_sets for mode in masking.modes]
    for name, mode in tqdm(todo, desc=desc or "masking", unit="curve", disable=not progress, leave=False):
        for fraction_index, fraction in enumerate(fractions):
            draws = []
            for masks in mask_sets[name]:
                if mode == "remove" and fraction == 0:
                    draws.append(unmasked)  # nothing removed: the images themselves
                else:
                    draws.append(image_scores(target, mask_images(images, masks[fraction_index], mode, fill), labels,
                                              batch_size, trunks))
            p_true = np.mean([d[0] for d in draws], axis=0)
            correct = np.mean([d[1] for d in draws], axis=0)
            spread = [score_summary(d[0], d[1], labels) for d in draws]
            row = {"source": name, "target": target.name, "mode": mode, "fraction": fraction,
                   **score_summary(p_true, correct, labels), "n_images": n, "repeats": len(draws)}
            for score in ("accuracy", "balanced_accuracy"):
                row[f"{score}_sd"] = float(np.std([s[score] for s in spread], ddof=1)) if len(spread) > 1 else 0.0
            rows.append(row)
            per_image.append(pd.DataFrame({"source": name, "target": target.name, "mode": mode, "fraction": fraction,
                                           "stimulus_id": ids, "label": labels, "p_true": p_true,
                                           "correct": correct, "weight": weights}))
    summary = pd.DataFrame(rows)
    summary["fill"] = masking.fill
    plain = score_summary(*unmasked, labels)
    summary["unmasked_accuracy"] = plain["accuracy"]
    summary["unmasked_balanced_accuracy"] = plain["balanced_accuracy"]
    summary["chance"] = 1.0 / len(target.classes)
    summary["majority"] = float(np.bincount(labels, minlength=len(target.classes)).max() / len(labels))
    summary["random_within"] = "aperture" if aperture is not None else "grid"
    return summary, pd.concat(per_image, ignore_index=True)


def transfer_tables(config, variants: dict[str, LoadedVariant], results: Path, work: Path,
                    device: torch.device | str, prov: Provenance, progress: bool,
                    summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The masking tables of an evaluate config: every target's curves, then AOPC and transfer.

    Parameters
    ----------
    config : model.evaluate.EvaluateConfig
        The config (its ``masking`` section must be set).
    variants : dict of str to LoadedVariant
        The evaluated variants by name: each is a target, and a source of maps.
    results : Path
        The results root (prepared sets, relevance files).
    work : Path
        Where each finished target's rows are kept, so an interrupted run resumes.
    device : torch.device or str
        Where maps are made and targets run.
    prov : Provenance
        The run's record; the set's manifest and the relevance files are added as inputs.
    progress : bool
        Show progress bars.
    summary : dict
        The run's ``summary.json``; the set, the random blobs' area, the bootstrap settings,
        :func:`own_vs_random` and the baselines are added.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``accuracy``, ``aopc_per_image``, ``aopc`` and per mode ``transfer_<mode>``,
        ``matrix_<mode>[_relative]``, ``asymmetry_<mode>``, ``groups_<mode>``.
    """
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
    maps = {n: ensure_maps(v, stimuli, results, composite=config.composite, target=config.target,
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
    summary["own_vs_random"] = own_vs_random(accuracy, masking.metric)
    summary["baselines"] = baseline_summary(tables["aopc"], masking.transfer_mode)
    return tables


def own_vs_random(accuracy: pd.DataFrame, metric: str, fraction: float = 0.2) -> list[dict[str, Any]]:
    """Per variant: scores after removing its own top pixels vs random pixels,
    at the grid's fraction nearest to ``fraction``.

    Parameters
    ----------
    accuracy : pandas.DataFrame
        The set-level masking rows (:func:`model.masking.masking_curves`, all targets).
    metric : str
        The score ``own_lowers_more`` compares (``masking.metric``).
    fraction : float
        The fraction looked at (the grid's nearest one is used).

    Returns
    -------
    list of dict
        One row per variant: unmasked, own-map and random scores, and whether its own map
        lowers each score more than random blobs do.
    """
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
