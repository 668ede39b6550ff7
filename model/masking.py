"""Relevance-based masking: its config (the ``masking`` section), the masks and the masked images.

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

A target's scores on the masked images are :mod:`model.scoring` (trunk passes shared between
targets), its masking curves :func:`model.transfer.masking_curves`; scores are kept per image
(true-class probability and correctness), so AOPC (:mod:`model.masking_stats`) is computed per
image and bootstrapped over images.

Examples
--------
>>> maps = np.arange(8.0).reshape(2, 2, 2)
>>> top_fraction_masks(maps, [0.25, 0.5])[1][0].astype(int).tolist()
[[0, 0], [1, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.ndimage import gaussian_filter

from stimuli.contracts.config import require
from stimuli.contracts.errors import InputError

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
]

RANDOM = "random"
SET_MEAN = "setmean:"  # prefix of a set-mean-map source: setmean:<variant>
SCORES = ("accuracy", "balanced_accuracy", "p_true")
METRICS = ("p_true", "accuracy", "balanced_accuracy")  # what AOPC may measure (masking.metric)


# --------------------------------------------------------------------------- config


def uniform_fractions(step: float = 0.05, stop: float = 0.5) -> list[float]:
    """The grid ``step, 2 step, ..., stop`` (fraction 0 is always added).

    Parameters
    ----------
    step : float
        The grid step.
    stop : float
        The largest fraction.

    Returns
    -------
    list of float
        The fractions, rounded to 10 decimals.

    Examples
    --------
    >>> uniform_fractions(0.1, 0.5)
    [0.1, 0.2, 0.3, 0.4, 0.5]
    """
    return [round(step * k, 10) for k in range(1, int(round(stop / step)) + 1)]


@dataclass
class MaskingConfig:
    """Relevance-based masking of the targets' held-out images (the ``masking`` section).

    Parameters
    ----------
    fractions : list of float
        A uniform grid ``step, 2 step, ...`` in (0, 1], so AOPC weighs the curve evenly.
    modes : list of {"remove", "keep"}
        Hide the top pixels, or keep only them.
    fill : {"background", "blur"}
        What hidden pixels become.
    blur_sigma : float
        Blur of ``fill: blur`` (px on the stimulus grid).
    random_repeats : int
        Draws of the random-blob baseline.
    random_smoothing : float
        Blob sigma of the random masks (px; 0: independent pixels).
    random_within : {"aperture", "grid"}
        Where random blobs are drawn.
    set_mean : {"all", "own", "none"}
        Which set-mean-map baselines.
    within : {"grid", "aperture"}
        Where relevance maps rank pixels.
    transfer_mode : {"remove", "keep"}
        The mode the transfer matrix is made of.
    metric : {"p_true", "accuracy", "balanced_accuracy"}
        What AOPC measures per image.
    bootstrap : int
        Resamples of images for every CI and the asymmetry p.
    confidence : float
        Level of the bootstrap CIs.
    """

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
    """The source name of ``variant``'s set-mean-map baseline.

    Parameters
    ----------
    variant : str
        Whose set-mean map.

    Returns
    -------
    str
        ``setmean:<variant>``.

    Examples
    --------
    >>> set_mean_name("v")
    'setmean:v'
    """
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

    Parameters
    ----------
    maps : numpy.ndarray
        Relevance maps (n, H, W).
    fractions : sequence of float
        Fractions of the candidates to mask.
    within : numpy.ndarray, optional
        Boolean (H, W): the candidate pixels (default: the whole grid).
    tie_seed : int
        Seed of the tie order.

    Returns
    -------
    list of numpy.ndarray
        One boolean (n, H, W) mask array per fraction.
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

    Parameters
    ----------
    n_maps : int
        Masks per fraction (one per image).
    shape : sequence of int
        The grid (H, W).
    fractions : sequence of float
        Fractions of ``total`` to mask.
    seed : int or sequence of int
        Seed of the draw.
    within : numpy.ndarray, optional
        Boolean (H, W): where the masks are drawn.
    smoothing : float
        Blob sigma in px (0: independent pixels).
    total : int, optional
        The pixel count a fraction refers to.

    Returns
    -------
    list of numpy.ndarray
        One boolean (n_maps, H, W) array per fraction.
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

    Parameters
    ----------
    mean_map : numpy.ndarray
        The set-mean relevance map (H, W).
    n_images : int
        Images the masks are for.
    fractions : sequence of float
        Fractions to mask.
    within : numpy.ndarray, optional
        Boolean (H, W): where pixels are ranked.
    tie_seed : int
        Seed of the tie order.

    Returns
    -------
    list of numpy.ndarray
        One read-only (n_images, H, W) view per fraction.

    Examples
    --------
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
    """Masks of the baselines: random blobs and one set-mean map per variant.

    Parameters
    ----------
    n_images : int
        Images the masks are for.
    shape : sequence of int
        The grid (H, W).
    fractions : sequence of float
        Fractions to mask.
    seed : int
        Seed of the random draws (repeat r draws from ``[seed, r]``) and of tie orders.
    repeats : int
        Random draws.
    smoothing : float
        Blob sigma of the random masks (px).
    aperture : numpy.ndarray or None
        Where random blobs are drawn (None: the grid).
    within : numpy.ndarray, optional
        Where relevance maps are ranked (its pixel count is what a fraction counts).
    set_means : dict of str to numpy.ndarray, optional
        Variant -> its set-mean map (H, W).

    Returns
    -------
    dict
        ``random`` and ``setmean:<variant>`` -> a list of repeats, each a list of (n, H, W)
        masks, one per fraction.
    """
    total = int(within.sum()) if within is not None else int(shape[0]) * int(shape[1])
    out: dict[str, list[list[np.ndarray]]] = {
        RANDOM: [random_masks(n_images, shape, fractions, seed=[seed, r], within=aperture, smoothing=smoothing,
                              total=total) for r in range(repeats)]}
    for name, mean_map in (set_means or {}).items():
        out[set_mean_name(name)] = [set_mean_masks(mean_map, n_images, fractions, within=within, tie_seed=seed)]
    return out


def fill_images(images: np.ndarray, fill: str, background: float, blur_sigma: float = 3.0) -> np.ndarray:
    """What hidden pixels become: the background grey, or a Gaussian-blurred copy of each image.

    Parameters
    ----------
    images : numpy.ndarray
        Grey images (n, H, W).
    fill : {"background", "blur"}
        The fill.
    background : float
        The set's background grey.
    blur_sigma : float
        Blur in px for ``blur``.

    Returns
    -------
    numpy.ndarray
        The fill images, like ``images``.
    """
    if fill == "background":
        return np.full_like(images, background)
    if fill == "blur":
        return gaussian_filter(images, sigma=(0, blur_sigma, blur_sigma), mode="nearest").astype(images.dtype)
    raise InputError(f"unknown fill '{fill}' (choose background or blur)")


def mask_images(images: np.ndarray, masks: np.ndarray, mode: str, fill: np.ndarray) -> np.ndarray:
    """``remove``: masked pixels take the fill; ``keep``: all other pixels do.

    Parameters
    ----------
    images : numpy.ndarray
        Grey images (n, H, W).
    masks : numpy.ndarray
        Boolean masks (n, H, W).
    mode : {"remove", "keep"}
        Which pixels are hidden.
    fill : numpy.ndarray
        What hidden pixels become (:func:`fill_images`).

    Returns
    -------
    numpy.ndarray
        The masked images.

    Examples
    --------
    >>> mask_images(np.ones((1, 1, 2)), np.array([[[True, False]]]), "remove", np.zeros((1, 1, 2))).tolist()
    [[[0.0, 1.0]]]
    """
    hide = masks if mode == "remove" else ~masks
    return np.where(hide, fill, images)
