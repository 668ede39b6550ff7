"""Relevance-based masking: masks, masked scores per image, and the per-image masking curves.

For a target variant and its held-out images, every *source* gives one mask per image and
fraction f of the grid: a variant's relevance map of that image (its top-f pixels), two
baselines, and ``remove`` hides the masked pixels (they take the fill) while ``keep`` hides
all the others.

* ``random``: random blobs of the same area, drawn inside the face aperture when the set has
  one (the area the maps can point at: blobs on the constant background would hide nothing
  and flatter every face-centred map), averaged over repeats;
* ``setmean:<variant>``: that variant's set-mean map (its mean over every stimulus of the set)
  ranked once and applied to every image: does a per-image map beat "where faces usually
  matter" for this variant?

Scores are kept per image (true-class probability and correctness), so AOPC
(:mod:`model.masking_stats`) is computed per image and bootstrapped over images.

Examples
--------
>>> maps = np.arange(8.0).reshape(2, 2, 2)
>>> top_fraction_masks(maps, [0.25, 0.5])[1][0].astype(int).tolist()
[[0, 0], [1, 1]]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import gaussian_filter
from tqdm.auto import tqdm

from stimuli.contracts.config import require
from stimuli.contracts.errors import InputError

from .device import autocast

__all__ = [
    "METRICS",
    "SCORES",
    "uniform_fractions",
    "MaskingConfig",
    "RANDOM",
    "SET_MEAN",
    "set_mean_name",
    "top_fraction_masks",
    "random_masks",
    "set_mean_masks",
    "baseline_masks",
    "fill_images",
    "mask_images",
    "SharedTrunk",
    "image_scores",
    "masked_scores",
    "masking_curves",
]

RANDOM = "random"
SET_MEAN = "setmean:"  # prefix of a set-mean-map source: setmean:<variant>
SCORES = ("accuracy", "balanced_accuracy", "p_true")
METRICS = ("p_true", "accuracy", "balanced_accuracy")  # what AOPC may measure (masking.metric)


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


def set_mean_name(variant: str) -> str:
    """The source name of ``variant``'s set-mean-map baseline (``setmean:<variant>``)."""
    return SET_MEAN + variant


# --------------------------------------------------------------------------- masks


def _prefix_masks(order: np.ndarray, k: int, size: int) -> np.ndarray:
    masks = np.zeros((len(order), size), dtype=bool)
    if k:
        np.put_along_axis(masks, order[:, :k], True, axis=1)
    return masks


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


def random_masks(n_maps: int, shape: Sequence[int], fractions: Sequence[float], *, seed: Any,
                 within: np.ndarray | None = None, smoothing: float = 0.0,
                 total: int | None = None) -> list[np.ndarray]:
    """Random masks of the same areas as :func:`top_fraction_masks` (seeded), inside ``within``.

    ``smoothing`` 0 picks independent pixels; a sigma > 0 (px) picks the top of smoothed Gaussian
    noise: random blobs, contiguous like the masks a relevance map gives. A fraction counts
    ``total`` pixels (default: the candidates), so masks drawn inside the aperture can match
    relevance masks ranked over the whole grid; more pixels than ``within`` holds is an error.
    """
    h, w = int(shape[0]), int(shape[1])
    candidates = np.flatnonzero(within.reshape(-1)) if within is not None else np.arange(h * w)
    total = len(candidates) if total is None else int(total)
    counts = [int(round(f * total)) for f in fractions]
    if counts and max(counts) > len(candidates):
        raise InputError(f"masking.fractions: a fraction of {max(fractions):g} is {max(counts)} pixels, more than "
                         f"the {len(candidates)} of the face aperture that random masks are drawn in; use smaller "
                         "fractions, masking.within: aperture, or masking.random_within: grid")
    rng = np.random.default_rng(seed)
    if smoothing > 0:
        noise = gaussian_filter(rng.normal(size=(n_maps, h, w)), sigma=(0, smoothing, smoothing), mode="wrap")
        keys = -noise.reshape(n_maps, -1)[:, candidates]
    else:
        keys = rng.random((n_maps, len(candidates)))
    order = candidates[np.argsort(keys, axis=1, kind="stable")]
    return [_prefix_masks(order, k, h * w).reshape(n_maps, h, w) for k in counts]


def set_mean_masks(mean_map: np.ndarray, n_images: int, fractions: Sequence[float], *,
                   within: np.ndarray | None = None, tie_seed: int = 0) -> list[np.ndarray]:
    """The masks of one set-mean map (H, W), the same for each of ``n_images`` images.

    >>> m = set_mean_masks(np.arange(4.0).reshape(2, 2), 3, [0.5])[0]
    >>> m.shape, bool((m == m[0]).all())
    ((3, 2, 2), True)
    """
    one = top_fraction_masks(np.asarray(mean_map)[None], fractions, within=within, tie_seed=tie_seed)
    return [np.broadcast_to(m, (n_images, *m.shape[1:])) for m in one]


def baseline_masks(n_images: int, shape: Sequence[int], fractions: Sequence[float], *, seed: int,
                   repeats: int, smoothing: float, aperture: np.ndarray | None,
                   within: np.ndarray | None = None,
                   set_means: dict[str, np.ndarray] | None = None) -> dict[str, list[list[np.ndarray]]]:
    """Masks of the baselines: ``random`` (``repeats`` draws, blobs inside ``aperture`` when given)
    and one ``setmean:<variant>`` per map of ``set_means``; each a list of repeats of a list of
    (n, H, W) masks, one per fraction. ``within`` is where relevance maps are ranked (its pixel
    count is what a fraction counts)."""
    total = int(within.sum()) if within is not None else int(shape[0]) * int(shape[1])
    out: dict[str, list[list[np.ndarray]]] = {
        RANDOM: [random_masks(n_images, shape, fractions, seed=[seed, r], within=aperture, smoothing=smoothing,
                              total=total) for r in range(repeats)]}
    for name, mean_map in (set_means or {}).items():
        out[set_mean_name(name)] = [set_mean_masks(mean_map, n_images, fractions, within=within, tie_seed=seed)]
    return out


def fill_images(images: np.ndarray, fill: str, background: float, blur_sigma: float = 3.0) -> np.ndarray:
    """What hidden pixels become: the background grey, or a Gaussian-blurred copy of each image."""
    if fill == "background":
        return np.full_like(images, background)
    if fill == "blur":
        return gaussian_filter(images, sigma=(0, blur_sigma, blur_sigma), mode="nearest").astype(images.dtype)
    raise InputError(f"unknown fill '{fill}' (choose background or blur)")


def mask_images(images: np.ndarray, masks: np.ndarray, mode: str, fill: np.ndarray) -> np.ndarray:
    """``remove``: masked pixels take the fill; ``keep``: all other pixels do."""
    hide = masks if mode == "remove" else ~masks
    return np.where(hide, fill, images)


# --------------------------------------------------------------------------- scores


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

        with torch.no_grad(), autocast(variant.device):  # AMP on CUDA only; float32 elsewhere
            penultimate = self._cached((keys[1], pixels), fc_features)
            return net.classifier[-1](penultimate).float().cpu().numpy()


def image_scores(variant, images: np.ndarray, labels: np.ndarray, batch_size: int = 64,
                 trunks=None) -> tuple[np.ndarray, np.ndarray]:
    """Per image: the true-class probability and whether the answer is correct (float 0/1).

    ``trunks`` (a :class:`SharedTrunk`) shares trunk passes between variants.
    """
    logits = (trunks.logits(variant, images, batch_size) if trunks is not None
              else variant.predict_logits(images, batch_size=batch_size))
    logits = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    correct = (logits.argmax(1) == labels).astype(np.float64)
    return prob[np.arange(len(labels)), labels].astype(np.float64), correct


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-image weights whose mean times correctness is the balanced accuracy (mean recall
    over the classes present): ``n / (classes present * n of the image's class)``.

    >>> balanced_weights(np.array([0, 0, 0, 1])).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return len(labels) / (len(classes) * counts[inverse])


def _summary(p_true: np.ndarray, correct: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    recall = [correct[labels == c].mean() for c in np.unique(labels)]
    return {"accuracy": float(correct.mean()), "balanced_accuracy": float(np.mean(recall)),
            "p_true": float(p_true.mean())}


def masked_scores(variant, images: np.ndarray, labels: np.ndarray, batch_size: int = 64,
                  trunks=None) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean recall over the classes present) and mean true-class
    probability of ``variant`` on ``images`` (through ``trunks`` when given: shared trunk passes)."""
    p_true, correct = image_scores(variant, images, labels, batch_size, trunks)
    return _summary(p_true, correct, labels)


# --------------------------------------------------------------------------- curves


def masking_curves(target, images: np.ndarray, labels: np.ndarray, sources: dict[str, np.ndarray], *,
                   masking, background: float, seed: int, within: np.ndarray | None = None,
                   aperture: np.ndarray | None = None, set_means: dict[str, np.ndarray] | None = None,
                   stimulus_id: Sequence[str] | None = None, batch_size: int = 64, progress: bool = False,
                   desc: str = "", trunks=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One target's masking curves: set-level rows and per-image rows, every source, mode, fraction.

    ``images`` (n, H, W) are the target's held-out images, ``sources`` maps a source name to its
    relevance maps of those same images (n, H, W); ``set_means`` maps a variant to its set-mean
    map (H, W) (the ``setmean:`` baselines); random blobs are drawn inside ``aperture``. Fraction
    0 is always included. Returns ``(accuracy, per_image)``: ``accuracy`` has one row per
    (source, mode, fraction) with the scores averaged over the random repeats; ``per_image`` one
    row per image too, with ``p_true`` and ``correct`` (means over repeats) and ``weight`` (the
    balanced-accuracy weight, :func:`balanced_weights`).
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
            spread = [_summary(d[0], d[1], labels) for d in draws]
            row = {"source": name, "target": target.name, "mode": mode, "fraction": fraction,
                   **_summary(p_true, correct, labels), "n_images": n, "repeats": len(draws)}
            for score in ("accuracy", "balanced_accuracy"):
                row[f"{score}_sd"] = float(np.std([s[score] for s in spread], ddof=1)) if len(spread) > 1 else 0.0
            rows.append(row)
            per_image.append(pd.DataFrame({"source": name, "target": target.name, "mode": mode, "fraction": fraction,
                                           "stimulus_id": ids, "label": labels, "p_true": p_true,
                                           "correct": correct, "weight": weights}))
    summary = pd.DataFrame(rows)
    summary["fill"] = masking.fill
    plain = _summary(*unmasked, labels)
    summary["unmasked_accuracy"] = plain["accuracy"]
    summary["unmasked_balanced_accuracy"] = plain["balanced_accuracy"]
    summary["chance"] = 1.0 / len(target.classes)
    summary["majority"] = float(np.bincount(labels, minlength=len(target.classes)).max() / len(labels))
    summary["random_within"] = "aperture" if aperture is not None else "grid"
    return summary, pd.concat(per_image, ignore_index=True)
