"""Relevance-based masking: do one variant's most relevant pixels hold another variant's evidence?

For every ordered pair (source, target) of variants and every fraction f of the stimulus grid,
each of the target's held-out images (its saved split) is masked with the source's relevance
map of that image: ``remove`` replaces the source's top-f most relevant pixels by the fill
(the set's background grey, or a blurred copy of the image), ``keep`` replaces all the others.
The target's accuracy and mean true-class probability on the masked images are recorded.
Baselines: random masks of the same area (``source = random``, averaged over repeats) and the
target's own map (``source = target``).

From those curves (fraction 0 included: unmasked for ``remove``, fully hidden for ``keep``):

* ``aopc``: the area over the perturbation curve (Samek et al., 2017) on the target's balanced
  accuracy (``masking.metric``; accuracy and true-class probability are in the tables too), i.e.
  the mean over fractions of ``score(unmasked) - score(remove f)``; for ``keep`` the mean gain
  ``score(keep f) - score(keep 0)``. Higher means the source's map points at the target's evidence.
  Balanced accuracy is exactly chance (1 / classes) when every image gets the same answer, as
  with everything removed, whatever the class sizes.
* the transfer matrix ``M[a, b]`` = aopc of source a on target b, also relative to the target's
  own map and random masks: ``(M[a, b] - random) / (M[b, b] - random)``;
* its asymmetry ``M[a, b] - M[b, a]``;
* group summaries by how source and target relate (:func:`stimuli.variants.variant_relation`):
  ``same`` (a variant's own map), ``seed`` (across seeds), ``task`` (across finetuning tasks),
  ``pretrain`` (across pretraining data), ...

The config (``python -m model evaluate CONFIG``) may also list ground-truth checks
(:mod:`model.groundtruth`) and sanity checks (:mod:`model.sanity`); see ``model/configs/
demo_evaluate.yaml``.

Examples
--------
>>> maps = np.arange(8.0).reshape(2, 2, 2)
>>> top_fraction_masks(maps, [0.25, 0.5])[1][0].astype(int).tolist()
[[0, 0], [1, 1]]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from stimuli.configfile import load_config, require, to_dict
from stimuli.errors import InputError, cli_errors
from stimuli.provenance import Provenance, atomic_output_dir, atomic_write_json, atomic_write_text
from stimuli.relevance import load_relevance, relevance_path

if TYPE_CHECKING:
    import torch

__all__ = [
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

RANDOM = "random"


# --------------------------------------------------------------------------- config


@dataclass
class MaskingConfig:
    """Relevance-based masking of the targets' held-out images."""

    fractions: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.3, 0.5])
    modes: list[Literal["remove", "keep"]] = field(default_factory=lambda: ["remove", "keep"])
    # hidden pixels become a blurred copy of the image (or the set's background grey: with it,
    # removing everything leaves one blank image and the score is exactly chance)
    fill: Literal["background", "blur"] = "blur"
    blur_sigma: float = 3.0  # px on the stimulus grid, for fill: blur
    random_repeats: int = 3
    # random masks: blobs (thresholded Gaussian noise of this sigma, px), contiguous like relevance
    # masks, so the baseline adds no pixel noise the relevance masks lack; 0 = independent pixels
    random_smoothing: float = 4.0
    within: Literal["grid", "aperture"] = "grid"  # rank pixels of the whole grid or the face aperture
    transfer_mode: Literal["remove", "keep"] = "remove"  # the mode the transfer matrix is made of
    # what AOPC and the transfer matrix measure: balanced accuracy is immune to class imbalance
    # (ORL gender is 90% male) and is exactly chance, 1/classes, for a constant answer
    metric: Literal["balanced_accuracy", "accuracy", "p_true"] = "balanced_accuracy"

    def __post_init__(self):
        require(len(self.fractions) >= 1, "fractions", "needs at least one fraction")
        require(all(0 < f <= 1 for f in self.fractions), "fractions", "must lie in (0, 1] (0 is always added)")
        require(len(set(self.fractions)) == len(self.fractions), "fractions", "lists a fraction twice")
        require(len(self.modes) >= 1 and len(set(self.modes)) == len(self.modes), "modes",
                "must list remove and/or keep once each")
        require(self.transfer_mode in self.modes, "transfer_mode", "must be one of the listed modes")
        require(self.blur_sigma > 0, "blur_sigma", "must be positive")
        require(self.random_repeats >= 1, "random_repeats", "must be at least 1")
        require(self.random_smoothing >= 0, "random_smoothing", "must be 0 (pixels) or a blob sigma in px")


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


# --------------------------------------------------------------------------- masks


def top_fraction_masks(maps: np.ndarray, fractions: Sequence[float], *, within: np.ndarray | None = None,
                       tie_seed: int = 0) -> list[np.ndarray]:
    """Per map, boolean masks of its most relevant ``fraction`` of pixels (one per fraction).

    ``k = round(fraction * n)`` pixels of the ``n`` candidates (the grid, or ``within``);
    equal relevance is ordered by a fixed random permutation (``tie_seed``), non-finite
    values come last.
    """
    maps = np.asarray(maps, dtype=np.float64)
    n_maps, h, w = maps.shape
    candidates = np.flatnonzero(within.reshape(-1)) if within is not None else np.arange(h * w)
    perm = np.random.default_rng(tie_seed).permutation(len(candidates))
    values = maps.reshape(n_maps, -1)[:, candidates[perm]]
    values = np.where(np.isfinite(values), values, -np.inf)
    order = candidates[perm][np.argsort(-values, axis=1, kind="stable")]
    return [_prefix_masks(order, int(round(f * len(candidates))), h * w).reshape(n_maps, h, w)
            for f in fractions]


def _prefix_masks(order: np.ndarray, k: int, size: int) -> np.ndarray:
    masks = np.zeros((len(order), size), dtype=bool)
    if k:
        np.put_along_axis(masks, order[:, :k], True, axis=1)
    return masks


def random_masks(n_maps: int, shape: Sequence[int], fractions: Sequence[float], *, seed: Any,
                 within: np.ndarray | None = None, smoothing: float = 0.0) -> list[np.ndarray]:
    """Random masks of the same areas as :func:`top_fraction_masks` (seeded).

    ``smoothing`` 0 picks independent pixels; a sigma > 0 (px) picks the top of smoothed Gaussian
    noise: random blobs, contiguous like the masks a relevance map gives.
    """
    h, w = int(shape[0]), int(shape[1])
    candidates = np.flatnonzero(within.reshape(-1)) if within is not None else np.arange(h * w)
    rng = np.random.default_rng(seed)
    if smoothing > 0:
        from scipy.ndimage import gaussian_filter

        noise = gaussian_filter(rng.normal(size=(n_maps, h, w)), sigma=(0, smoothing, smoothing), mode="wrap")
        keys = -noise.reshape(n_maps, -1)[:, candidates]
    else:
        keys = rng.random((n_maps, len(candidates)))
    order = candidates[np.argsort(keys, axis=1, kind="stable")]
    return [_prefix_masks(order, int(round(f * len(candidates))), h * w).reshape(n_maps, h, w)
            for f in fractions]


def fill_images(images: np.ndarray, fill: str, background: float, blur_sigma: float = 3.0) -> np.ndarray:
    """What hidden pixels become: the background grey, or a Gaussian-blurred copy of each image."""
    if fill == "background":
        return np.full_like(images, background)
    if fill == "blur":
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(images, sigma=(0, blur_sigma, blur_sigma), mode="nearest").astype(images.dtype)
    raise InputError(f"unknown fill '{fill}' (choose background or blur)")


def mask_images(images: np.ndarray, masks: np.ndarray, mode: str, fill: np.ndarray) -> np.ndarray:
    """``remove``: masked pixels take the fill; ``keep``: all other pixels do."""
    hide = masks if mode == "remove" else ~masks
    return np.where(hide, fill, images)


SCORES = ("accuracy", "balanced_accuracy", "p_true")


def _add_weights(digest, module):
    """``digest`` updated with every parameter and buffer of ``module`` (names and bytes)."""
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest


class SharedTrunk:
    """Logits of image batches with one trunk pass per batch, however many variants share it.

    Head-trained variants of one pretraining arm share their convolutional trunk, and often
    their FC layers too (a face-pretrained arm; the ImageNet arm's seeded FC init differs per
    seed), and a masked batch (source map, mode, fraction) is the same for every target tested
    on the same images. So the convolutions, nearly all of the cost, run once per arm and
    batch, the FC layers once per distinct set of them, and each variant applies its own head.
    Parts are told apart by a hash of their weights (and the input size), batches by a hash of
    their pixels: a variant with its own trunk, or other images, never reuses anything.
    ``tests/explain`` checks the logits equal ``predict_logits``.
    """

    def __init__(self, max_bytes: int = 2 * 1024**3) -> None:
        self.max_bytes = max_bytes  # the oldest batches are dropped beyond this
        # by id(variant), holding the variant too so that its id cannot be reused by another one
        self._keys: dict[int, tuple[Any, tuple[str, str] | None]] = {}
        self._cache: dict[tuple[str, str], torch.Tensor] = {}
        self.hits = self.misses = 0

    def trunk_key(self, variant) -> tuple[str, str] | None:
        """Hashes of the conv trunk and of conv trunk + FC layers but the last (None: not a VGG)."""
        if id(variant) not in self._keys:
            net = variant.net
            keys = None
            if all(hasattr(net, part) for part in ("features", "avgpool", "classifier")):
                digest = hashlib.blake2b(str(variant.input_size).encode(), digest_size=16)
                conv = _add_weights(digest, net.features).hexdigest()
                keys = (conv, _add_weights(digest, net.classifier[:-1]).hexdigest())
            self._keys[id(variant)] = (variant, keys)
        return self._keys[id(variant)][1]

    def _cached(self, key: tuple[str, str], compute) -> torch.Tensor:
        if key in self._cache:
            self.hits += 1
            return self._cache[key]
        self.misses += 1
        self._cache[key] = value = compute()
        while len(self._cache) > 1 and sum(v.nbytes for v in self._cache.values()) > self.max_bytes:
            del self._cache[next(iter(self._cache))]
        return value

    def logits(self, variant, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Logits (N, C) of grey stimuli (N, H, W), as ``variant.predict_logits`` gives them."""
        import torch

        keys = self.trunk_key(variant)
        if keys is None:
            return variant.predict_logits(images, batch_size=batch_size)
        images = np.ascontiguousarray(images, dtype=np.float32)
        pixels = hashlib.blake2b(images.tobytes(), digest_size=16).hexdigest() + str(images.shape)
        net = variant.net

        def batches(values: torch.Tensor | np.ndarray, step) -> torch.Tensor:
            return torch.cat([step(values[start:start + batch_size]) for start in range(0, len(values), batch_size)])

        def conv_features() -> torch.Tensor:
            return batches(images, lambda x: net.features(variant.to_input(x)))

        def fc_features() -> torch.Tensor:
            conv = self._cached((keys[0], pixels), conv_features)
            return batches(conv, lambda f: net.classifier[:-1](torch.flatten(net.avgpool(f), 1)))

        with torch.no_grad():
            penultimate = self._cached((keys[1], pixels), fc_features)
            return net.classifier[-1](penultimate).float().cpu().numpy()


def masked_scores(variant, images: np.ndarray, labels: np.ndarray, batch_size: int = 64,
                  trunks: SharedTrunk | None = None) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall over the classes present) and mean true-class
    probability of ``variant`` on ``images`` (through ``trunks`` when given: shared trunk passes)."""
    logits = (trunks.logits(variant, images, batch_size) if trunks is not None
              else variant.predict_logits(images, batch_size=batch_size))
    logits = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    correct = logits.argmax(1) == labels
    recall = [correct[labels == c].mean() for c in np.unique(labels)]
    return {"accuracy": float(correct.mean()), "balanced_accuracy": float(np.mean(recall)),
            "p_true": float(prob[np.arange(len(labels)), labels].mean())}


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
                device, progress: bool = False) -> np.ndarray:
    """The variant's relevance maps of every stimulus (manifest order), explained if missing.

    Maps already in ``<results>/relevance/<variant>/<set>.npz`` with the same composite and
    target rule are reused; otherwise they are made and written there (the contract file).
    """
    from .explain import _record_provenance, explain_variant, summary_line, write_maps

    path = relevance_path(variant.name, stimuli.name, results)
    ids = list(stimuli.manifest.stimulus_id)
    if path.is_file():
        maps = load_relevance(path)
        if (maps.meta.get("composite") == composite and maps.meta.get("target_rule") == target
                and list(maps.stimulus_id) == ids and maps.relevance.shape[1:] == stimuli.shape):
            return maps.relevance
    explained = explain_variant(variant, stimuli, method=composite, target_rule=target, batch_size=batch_size,
                                device=device, progress=progress)
    prov = Provenance(config={"variant": variant.name, "stimuli": stimuli.name, "composite": composite,
                              "target": target, "by": "model evaluate"})
    prov.add_input(stimuli.folder / "manifest.csv")
    write_maps(explained, path, variant=variant.name, stimuli=stimuli.name, target_rule=target, stimulus_id=ids)
    _record_provenance(path.parent, prov, stimuli.name, path)
    tqdm.write(f"{variant.name}: {summary_line(explained)}")
    return explained.relevance


# --------------------------------------------------------------------------- curves


def masking_curves(target, images: np.ndarray, labels: np.ndarray, sources: dict[str, np.ndarray], *,
                   masking: MaskingConfig, background: float, seed: int, within: np.ndarray | None = None,
                   batch_size: int = 64, progress: bool = False, desc: str = "",
                   trunks: SharedTrunk | None = None) -> pd.DataFrame:
    """Tidy accuracy rows of one target: every source (and random masks), mode and fraction.

    ``images`` (n, H, W) are the target's held-out images, ``sources`` maps a source name to its
    relevance maps of those same images (n, H, W). Fraction 0 is always included. ``trunks``
    shares trunk passes with the other targets of a run (:class:`SharedTrunk`).
    """
    fractions = [0.0] + sorted(masking.fractions)
    fill = fill_images(images, masking.fill, background, masking.blur_sigma)
    unmasked = masked_scores(target, images, labels, batch_size, trunks)
    mask_sets: dict[str, list[list[np.ndarray]]] = {
        name: [top_fraction_masks(maps, fractions, within=within, tie_seed=seed)] for name, maps in sources.items()}
    mask_sets[RANDOM] = [random_masks(len(images), images.shape[1:], fractions, seed=[seed, r], within=within,
                                      smoothing=masking.random_smoothing)
                         for r in range(masking.random_repeats)]
    rows = []
    todo = [(name, mode) for name in mask_sets for mode in masking.modes]
    for name, mode in tqdm(todo, desc=desc or "masking", unit="curve", disable=not progress, leave=False):
        for repeat, masks in enumerate(mask_sets[name]):
            for fraction, mask in zip(fractions, masks):
                if mode == "remove" and fraction == 0:
                    scores = unmasked  # nothing removed: the images themselves
                else:
                    scores = masked_scores(target, mask_images(images, mask, mode, fill), labels, batch_size,
                                           trunks)
                rows.append({"source": name, "target": target.name, "mode": mode, "fraction": fraction,
                             "repeat": repeat, **scores, "n_images": len(images)})
    table = pd.DataFrame(rows)
    # random masks: the mean over repeats (and their spread)
    keys = ["source", "target", "mode", "fraction"]
    summary = table.groupby(keys, sort=False).agg(
        accuracy=("accuracy", "mean"), accuracy_sd=("accuracy", "std"),
        balanced_accuracy=("balanced_accuracy", "mean"), balanced_accuracy_sd=("balanced_accuracy", "std"),
        p_true=("p_true", "mean"), n_images=("n_images", "first"), repeats=("repeat", "count")).reset_index()
    for column in ("accuracy_sd", "balanced_accuracy_sd"):
        summary[column] = summary[column].fillna(0.0)
    summary["fill"] = masking.fill
    summary["unmasked_accuracy"] = unmasked["accuracy"]
    summary["unmasked_balanced_accuracy"] = unmasked["balanced_accuracy"]
    summary["chance"] = 1.0 / len(target.classes)
    summary["majority"] = float(np.bincount(labels, minlength=len(target.classes)).max() / len(labels))
    return summary


def aopc_table(accuracy: pd.DataFrame, metric: str = "balanced_accuracy") -> pd.DataFrame:
    """AOPC per (source, target, mode) on ``metric`` (``aopc``) and on the true-class probability.

    ``remove``: mean over fractions (0 included) of the drop from the unmasked images;
    ``keep``: mean gain over fully hidden images (keep 0).
    """
    rows = []
    for (source, target, mode), curve in accuracy.groupby(["source", "target", "mode"], sort=False):
        curve = curve.sort_values("fraction")
        value, prob = curve[metric].to_numpy(), curve.p_true.to_numpy()
        sign = 1.0 if mode == "remove" else -1.0
        rows.append({"source": source, "target": target, "mode": mode, "metric": metric,
                     "aopc": float(np.mean(sign * (value[0] - value))),
                     "aopc_p": float(np.mean(sign * (prob[0] - prob))), "fractions": len(curve)})
    return pd.DataFrame(rows)


def transfer_table(aopc: pd.DataFrame, mode: str) -> pd.DataFrame:
    """M[source, target] with the target's own-map and random baselines and the relative transfer."""
    table = aopc[aopc["mode"] == mode]
    own = {r.target: r.aopc for r in table.itertuples() if r.source == r.target}
    rand = {r.target: r.aopc for r in table.itertuples() if r.source == RANDOM}
    rows = []
    for r in table.itertuples():
        if r.source == RANDOM:
            continue
        span = own.get(r.target, math.nan) - rand.get(r.target, math.nan)
        rows.append({"source": r.source, "target": r.target, "mode": mode, "aopc": r.aopc,
                     "aopc_own": own.get(r.target, math.nan), "aopc_random": rand.get(r.target, math.nan),
                     "relative": (r.aopc - rand.get(r.target, math.nan)) / span if span else math.nan})
    return pd.DataFrame(rows)


def asymmetry_table(transfer: pd.DataFrame) -> pd.DataFrame:
    """For each unordered pair {a, b}: M[a, b], M[b, a] and M[a, b] - M[b, a] (raw and relative)."""
    value = {(r.source, r.target): r for r in transfer.itertuples()}
    names = sorted(set(transfer.source) | set(transfer.target))
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if (a, b) in value and (b, a) in value:
                ab, ba = value[(a, b)], value[(b, a)]
                rows.append({"a": a, "b": b, "mode": ab.mode, "m_ab": ab.aopc, "m_ba": ba.aopc,
                             "asymmetry": ab.aopc - ba.aopc, "relative_ab": ab.relative,
                             "relative_ba": ba.relative, "relative_asymmetry": ab.relative - ba.relative})
    return pd.DataFrame(rows)


def group_table(transfer: pd.DataFrame) -> pd.DataFrame:
    """Transfer summarised by how source and target relate (same, seed, task, pretrain, ...)."""
    from stimuli.variants import variant_relation

    if transfer.empty:
        return pd.DataFrame(columns=["mode", "relation", "pairs", "aopc_mean", "aopc_sd", "relative_mean",
                                     "relative_sd"])
    table = transfer.assign(relation=[variant_relation(s, t) for s, t in zip(transfer.source, transfer.target)])
    out = table.groupby(["mode", "relation"], sort=False).agg(
        pairs=("aopc", "size"), aopc_mean=("aopc", "mean"), aopc_sd=("aopc", "std"),
        relative_mean=("relative", "mean"), relative_sd=("relative", "std")).reset_index()
    return out


def matrix(transfer: pd.DataFrame, value: str = "aopc") -> pd.DataFrame:
    """Wide transfer matrix: rows = source, columns = target."""
    return transfer.pivot(index="source", columns="target", values=value)


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
    prov = Provenance(command=command, config=to_dict(config), seeds={"masking": config.seed})
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
        prov.write(folder)
    shutil.rmtree(work, ignore_errors=True)
    return final


def _read_hash(work: Path) -> str | None:
    try:
        return (work / "config_hash").read_text().strip()
    except OSError:
        return None


def _masking(config: EvaluateConfig, variants: dict, results: Path, work: Path, device, prov: Provenance,
             progress: bool, summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    from stimuli.prepared import load_prepared_set

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
    maps = {n: source_maps(v, stimuli, results, composite=config.composite, target=config.target,
                           batch_size=config.batch_size, device=device, progress=progress)
            for n, v in variants.items()}
    for n in variants:
        prov.add_input(relevance_path(n, stimuli.name, results))
    curves = []
    trunks = SharedTrunk()  # the targets of one arm share their frozen trunk's passes
    for n, target in tqdm(variants.items(), desc="targets", unit="variant", disable=not progress):
        part = work / f"accuracy-{n}.csv"
        if part.is_file():  # finished before an interruption
            curves.append(pd.read_csv(part))
            continue
        rows, labels = held_out(target, stimuli, config.split)
        curve = masking_curves(target, stimuli.images[rows], labels, {s: m[rows] for s, m in maps.items()},
                               masking=masking, background=stimuli.background, seed=config.seed,
                               within=within, batch_size=config.batch_size, progress=progress, desc=n,
                               trunks=trunks)
        curve.to_csv(part, index=False)
        curves.append(curve)
    accuracy = pd.concat(curves, ignore_index=True)
    aopc = aopc_table(accuracy, masking.metric)
    tables = {"accuracy": accuracy, "aopc": aopc}
    for mode in masking.modes:
        transfer = transfer_table(aopc, mode)
        tables[f"transfer_{mode}"] = transfer
        tables[f"matrix_{mode}"] = matrix(transfer)
        tables[f"matrix_{mode}_relative"] = matrix(transfer, "relative")
        tables[f"asymmetry_{mode}"] = asymmetry_table(transfer)
        tables[f"groups_{mode}"] = group_table(transfer)
    summary["stimuli"] = set_name
    summary["own_vs_random"] = _own_vs_random(accuracy, masking.metric)
    return tables


def _own_vs_random(accuracy: pd.DataFrame, metric: str, fraction: float = 0.2) -> list[dict[str, Any]]:
    """Per variant: scores after removing its own top pixels vs random pixels (the issue's check)."""
    rows = []
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
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_config(EvaluateConfig, args.config)
    folder = evaluate(config, args.out, where=args.config, device=args.device, force=args.force,
                      command=["python", "-m", "model", "evaluate", *(argv if argv is not None else sys.argv[1:])])
    summary = json.loads((folder / "summary.json").read_text())
    for row in summary.get("own_vs_random", []):
        m = row["metric"]
        print(f"{row['variant']}: {m.replace('_', ' ')} after removing the top {row['fraction']:.0%}: own map "
              f"{row[f'remove_own_{m}']:.3f}, random {row[f'remove_random_{m}']:.3f} "
              f"(unmasked {row[f'unmasked_{m}']:.3f})")
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
