"""Luminance and contrast equalisation of a face set inside a region (SHINE's ``lumMatch`` and
``histMatch``), one image at a time: the set-level targets are accumulated in one pass
(:class:`EqualiseTargets`), then applied per image, so a set of any size is equalised without
holding it. :func:`equalise` does both on an (N, H, W) stack. See :mod:`stimuli.prepare`.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> out, info = equalise(rng.random((3, 8, 8)), np.ones((8, 8), bool), mean=0.5, contrast=0.1)
>>> info["method"], round(info["contrast"], 3)
('meanstd', 0.1)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .contracts.errors import InputError

__all__ = ["EQUALISE_METHODS", "Method", "equalise", "EqualiseTargets"]

EQUALISE_METHODS = ("meanstd", "histogram", "none")
Method = Literal["meanstd", "histogram", "none"]


def _standardise(values: np.ndarray, mean: float, contrast: float, iterations: int = 20) -> tuple[np.ndarray, float]:
    """Set mean and std of ``values``, keeping them in [0, 1]; returns them and the clipped share.

    A plain rescale can push a few pixels past black or white, and clipping them moves the
    mean and std again; re-standardising the clipped values converges in a few rounds.
    """
    x = values.astype(np.float64)
    for _ in range(iterations):
        std = x.std()
        x = mean + (x - x.mean()) * (contrast / std) if std > 0 else np.full_like(x, mean)
        clipped = (x < 0) | (x > 1)
        np.clip(x, 0.0, 1.0, out=x)
        if abs(x.mean() - mean) < 1e-5 and abs(x.std() - contrast) < 1e-5:
            break
    return x, float(clipped.mean())


def _check_targets(method: str, mean: float, contrast: float | None) -> None:
    if method not in EQUALISE_METHODS:
        raise InputError(f"unknown equalisation '{method}' (choose {', '.join(EQUALISE_METHODS)})")
    if not 0 < mean < 1:
        raise InputError(f"target mean luminance {mean!r} must lie strictly between 0 and 1")
    if contrast is not None and not 0 < contrast <= 0.5:
        raise InputError(f"target RMS contrast {contrast!r} must lie in (0, 0.5] (std of [0, 1] values)")


def equalise(
    images: np.ndarray,
    region: np.ndarray,
    method: Method = "meanstd",
    *,
    mean: float = 0.5,
    contrast: float | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Equalise luminance (mean) and RMS contrast (std) of (N, H, W) images inside ``region``.

    Parameters
    ----------
    images : (N, H, W) float images in [0, 1].
    region : (H, W) bool: the pixels that are measured and changed (others are left as they are).
    method : ``"meanstd"`` (every image gets mean ``mean`` and std ``contrast``),
        ``"histogram"`` (every image gets the set's average histogram, rescaled to ``mean`` and
        ``contrast``; exact specification by rank) or ``"none"``.
    mean : target mean on [0, 1].
    contrast : target standard deviation; None takes the set's average (SHINE's default).

    Returns
    -------
    The equalised images (float32) and a record of what was done (targets, clipped share).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> out, info = equalise(rng.random((3, 8, 8)), np.ones((8, 8), bool), mean=0.5, contrast=0.1)
    >>> np.allclose(out.mean(axis=(1, 2)), 0.5, atol=1e-4), np.allclose(out.std(axis=(1, 2)), 0.1, atol=1e-4)
    (True, True)
    """
    _check_targets(method, mean, contrast)
    region = np.asarray(region, dtype=bool)
    out = np.array(images, dtype=np.float32, copy=True)
    targets = EqualiseTargets.of(out, region, method, mean=mean, contrast=contrast)
    for i in range(len(out)):
        out[i] = targets.apply(out[i])
    return out, targets.record()


class EqualiseTargets:
    """What :func:`equalise` gives every image, from one pass over the set; then applied per image.

    The set-level part (the average contrast when none is asked for, the average quantile
    function for ``"histogram"``) is accumulated an image at a time (:meth:`add`), so a set of
    any size is equalised without holding it: :meth:`apply` equalises one image.

    Parameters
    ----------
    region : numpy.ndarray
        Boolean (H, W) equalisation region.
    method : {"meanstd", "histogram", "none"}
        How images are equalised.
    mean : float
        Target mean luminance in [0, 1].
    contrast : float, optional
        Target RMS contrast (default: the set's average).
    """

    def __init__(self, region: np.ndarray, method: Method = "meanstd", *, mean: float = 0.5,
                 contrast: float | None = None) -> None:
        _check_targets(method, mean, contrast)
        self.region, self.method, self.mean, self.contrast = np.asarray(region, dtype=bool), method, mean, contrast
        self._stds: list[float] = []
        self._sorted_sum: np.ndarray | None = None
        self._target: np.ndarray | None = None
        self._clipped: list[float] = []

    @classmethod
    def of(cls, images, region: np.ndarray, method: Method = "meanstd", *, mean: float = 0.5,
           contrast: float | None = None) -> EqualiseTargets:
        """Targets accumulated over ``images`` (any iterable of (H, W) images)."""
        targets = cls(region, method, mean=mean, contrast=contrast)
        for image in images:
            targets.add(image)
        return targets

    def add(self, image: np.ndarray) -> None:
        """Count one image of the set (float32 (H, W) in [0, 1], as it will be equalised)."""
        pixels = np.asarray(image, dtype=np.float32)[self.region].astype(np.float64)
        self._stds.append(float(pixels.std()))
        if self.method == "histogram":
            ordered = np.sort(pixels)
            self._sorted_sum = ordered if self._sorted_sum is None else self._sorted_sum + ordered

    def _ready(self) -> None:
        if self.contrast is None:
            self.contrast = float(np.mean(self._stds)) if self._stds else float("nan")
        if self.method == "histogram" and self._target is None and self._sorted_sum is not None:
            # the set's average quantile function, standardised to the targets, assigned by rank
            self._target, share = _standardise(self._sorted_sum / len(self._stds), self.mean, self.contrast)
            self._target.sort()
            self._clipped = [share]

    def apply(self, image: np.ndarray) -> np.ndarray:
        """One image equalised inside the region (float32; pixels outside left as they are)."""
        self._ready()
        out = np.array(image, dtype=np.float32, copy=True)
        if self.method == "none":
            return out
        pixels = out[self.region].astype(np.float64)
        if self.method == "meanstd":
            pixels, share = _standardise(pixels, self.mean, self.contrast)
            self._clipped.append(share)
        else:
            order = np.argsort(pixels, kind="stable")
            pixels[order] = self._target
        out[self.region] = pixels.astype(np.float32)
        return out

    def restart(self) -> None:
        """Forget the clipped shares of images equalised so far (before equalising the set again)."""
        if self.method == "meanstd":
            self._clipped = []

    def record(self) -> dict[str, Any]:
        """What was done, for ``set.json`` (targets, the clipped share)."""
        self._ready()
        if self.method == "none":
            return {"method": "none", "mean": None, "contrast": None, "clipped_fraction": 0.0}
        clipped = float(np.mean(self._clipped)) if self._clipped else 0.0
        return {"method": self.method, "mean": float(self.mean), "contrast": float(self.contrast),
                "clipped_fraction": clipped}
