"""The template observer: a noisy ideal template matcher restricted to a diagnostic region.

**Template observer** (:class:`TemplateObserver`): a noisy ideal observer restricted to a
diagnostic region R. It sees the stimulus ``S = M*F + (1-M)*bg`` plus internal Gaussian
pixel noise ``n`` (sd ``noise_sd``), knows where it sees (the mask ``M``), and for each stored
template ``E`` (every image of the set, or each class's mean) computes the log-likelihood that
``S + n`` is ``E`` seen through ``M``, over the pixels of R only::

    ll_E = ( <(S + n - bg)[R], (M*(E - bg))[R]> - ||(M*(E - bg))[R]||^2 / 2 ) / noise_sd^2

i.e. it correlates the masked stimulus with the equally masked templates inside R. A class's
evidence is the log of the mean likelihood of its templates (equal priors); the answer is
the class with the most evidence. The decision is a function of ``S[R]``, ``M[R]`` and the
noise only -- pixels outside R never enter it (``tests/experiments/observers/test_template.py``
changes them and checks that nothing changes) -- so a classification image built from its
trials must recover R. The noise is drawn from ``derive_seed(seed, "observer", trial)``: the same
trial gets the same answer, also after a resume. Unless ``noise_sd`` is given, it is
calibrated (bisection, common random numbers) so that the observer is ``full_view_accuracy``
correct with no mask, which leaves room for the staircase's target below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stimuli.contracts.errors import InputError
from stimuli.regions import region_mask

from ..sequence import derive_seed
from ..task import Response, Trial, one_blas_thread
from .base import Observer

__all__ = ["TemplateObserver"]


class TemplateObserver(Observer):
    """Noisy ideal template matcher restricted to a diagnostic region (see the module docstring).

    Parameters
    ----------
    images : (N, H, W) templates' source images in [0, 1].
    labels : the answer of each image.
    classes : the answers, in the task's order.
    background : the grey that hidden pixels take.
    region : a :mod:`stimuli.regions` spec (``eyes``, ``box:...``) or a boolean (H, W) mask.
    templates : ``"exemplars"`` (every image) or ``"means"`` (one mean image per class).
    noise_sd : internal noise per pixel (grey levels); None calibrates it.
    full_view_accuracy : the accuracy with no mask that the calibration aims at.
    seed : session seed; each trial's noise comes from ``derive_seed(seed, "observer", trial)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> faces = rng.random((6, 16, 16)); labels = ["a", "b"] * 3
    >>> observer = TemplateObserver(faces, labels, ["a", "b"], 0.5, "box:0,1,0,1", seed=1)
    >>> 0.9 < observer.calibrated_accuracy < 1.0
    True
    """

    kind = "template"

    def __init__(
        self,
        images: np.ndarray,
        labels: Sequence[str],
        classes: Sequence[str],
        background: float,
        region: str | np.ndarray,
        *,
        templates: str = "exemplars",
        noise_sd: float | None = None,
        full_view_accuracy: float = 0.95,
        seed: int = 0,
    ) -> None:
        images = np.asarray(images, dtype=np.float64)
        self.shape = images.shape[1:]
        self.region_spec = region if isinstance(region, str) else "mask"
        self.region = region_mask(region, self.shape) if isinstance(region, str) else np.asarray(region, bool)
        if self.region.shape != self.shape or not self.region.any():
            raise InputError(f"template observer: region must be a non-empty {self.shape} mask")
        self.classes = list(classes)
        self.background = float(background)
        self.templates = templates
        label_index = np.array([self.classes.index(str(label)) for label in labels])
        # the images themselves, grouped by class: what calibration trials show
        by_class = np.argsort(label_index, kind="stable")
        self.shown = (images[by_class] - self.background)[:, self.region]
        self.shown_counts = np.bincount(label_index, minlength=len(self.classes))
        self.shown_starts = np.concatenate(([0], np.cumsum(self.shown_counts)[:-1]))
        if templates == "means":
            images = np.stack([images[label_index == c].mean(axis=0) for c in range(len(self.classes))])
            label_index = np.arange(len(self.classes))
        elif templates != "exemplars":
            raise InputError(f"template observer: templates must be exemplars or means, got {templates!r}")
        order = np.argsort(label_index, kind="stable")  # group each class's templates together
        self.label_index = label_index[order]
        self.A = (images[order] - self.background)[:, self.region]  # (T, |R|)
        self.A2 = self.A**2
        counts = np.bincount(self.label_index, minlength=len(self.classes))
        if (counts == 0).any():
            raise InputError(f"template observer: no image of class '{self.classes[int(np.argmin(counts))]}'")
        self.counts = counts
        self.starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.log_counts = np.log(counts)
        self.seed = int(seed)
        self.full_view_accuracy = float(full_view_accuracy)
        with one_blas_thread():
            if noise_sd is None:
                noise_sd = self._calibrate(self.full_view_accuracy)
            self.noise_sd = float(noise_sd)
            self.calibrated_accuracy = self._full_view_accuracy(self.noise_sd, *self._calibration_draws())

    # --- decision --------------------------------------------------------------------------
    def evidence(self, stimulus: np.ndarray, mask: np.ndarray | None, noise: np.ndarray) -> np.ndarray:
        """Log evidence of each class for one stimulus (only pixels in the region are read)."""
        s = stimulus[self.region].astype(np.float64) - self.background + self.noise_sd * noise
        m = np.ones(s.shape) if mask is None else mask[self.region].astype(np.float64)
        ll = (self.A @ (s * m) - 0.5 * (self.A2 @ (m * m))) / self.noise_sd**2
        return self._pool(ll[:, None])[:, 0]

    def _pool(self, ll: np.ndarray) -> np.ndarray:
        """(T, B) template log-likelihoods -> (C, B) class log evidence (log-mean-exp per class)."""
        peak = np.maximum.reduceat(ll, self.starts, axis=0)
        summed = np.add.reduceat(np.exp(ll - peak[self.label_index]), self.starts, axis=0)
        return peak + np.log(summed) - self.log_counts[:, None]

    def noise_for(self, trial: int) -> np.ndarray:
        return np.random.default_rng(derive_seed(self.seed, "observer", trial)).standard_normal(len(self.A[0]))

    def respond(self, trials: Sequence[Trial]) -> list[Response]:
        responses = []
        with one_blas_thread():
            for trial in trials:
                evidence = self.evidence(trial.images[0], trial.payload.get("mask"), self.noise_for(trial.number))
                responses.append(Response(self.classes[int(np.argmax(evidence))]))
        return responses

    # --- calibration -----------------------------------------------------------------------
    def _calibration_draws(self, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fixed full-view trials (balanced classes) as Gram terms: ll = (G + sd*H - A2/2) / sd^2."""
        rng = np.random.default_rng(derive_seed(self.seed, "observer", "calibration"))
        truth = np.arange(n) % len(self.classes)
        pick = self.shown_starts[truth] + rng.integers(0, self.shown_counts[truth])
        z = rng.standard_normal((n, self.A.shape[1]))
        gram = self.A @ self.shown[pick].T  # signal part of <s, E>
        noise = self.A @ z.T
        return gram, noise, truth

    def _full_view_accuracy(self, sd: float, gram: np.ndarray, noise: np.ndarray, truth: np.ndarray) -> float:
        ll = (gram + sd * noise - 0.5 * self.A2.sum(axis=1)[:, None]) / sd**2
        return float(np.mean(np.argmax(self._pool(ll), axis=0) == truth))

    def _calibrate(self, target: float) -> float:
        gram, noise, truth = self._calibration_draws()
        chance = 1.0 / len(self.classes)
        if not chance < target < 1:
            raise InputError(f"template observer: full_view_accuracy {target} must lie between chance "
                             f"({chance:.2f}) and 1")
        scale = float(np.sqrt(np.mean(self.A2))) or 1.0
        low, high = np.log(scale * 1e-3), np.log(scale * 1e3)
        if self._full_view_accuracy(np.exp(low), gram, noise, truth) < target:
            raise InputError(f"template observer: even without noise it is below {target:.0%} correct with "
                             f"the whole face in region '{self.region_spec}'; lower full_view_accuracy or "
                             "choose a larger region")
        for _ in range(40):
            middle = 0.5 * (low + high)
            if self._full_view_accuracy(np.exp(middle), gram, noise, truth) >= target:
                low = middle
            else:
                high = middle
        return float(np.exp(low))

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "region": self.region_spec,
            "region_pixels": int(self.region.sum()),
            "templates": self.templates,
            "noise_sd": self.noise_sd,
            "full_view_accuracy_target": self.full_view_accuracy,
            "full_view_accuracy_calibrated": self.calibrated_accuracy,
            "decision": "argmax over classes of log-mean-exp of masked-template log-likelihoods over the "
                        "region's pixels (experiments.observers.TemplateObserver)",
            "noise_seed": "derive_seed(session seed, 'observer', trial)",
        }
