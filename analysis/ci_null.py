"""The null of a classification image: trial weights, centre densities, analytic moments and
Freedman-Lane permutations (the derivation is in :mod:`analysis.classification`).

Under H0 whether a trial is answered correctly does not depend on where its apertures fell,
given what else the trial was (its face, its number of bubbles). Those are the nuisance
regressors of one participant's trials, the **reduced model**: one intercept per stratum
(the label of the centre density a trial's centres were drawn from, e.g. its face when a
guided condition uses per-image maps; one intercept when all trials share a density) and,
when it varies, the number of bubbles. The CI weights are the residuals of ``correct`` on
it; :class:`TrialNull` holds it for one participant and gives

* the analytic null moments of ``sum_t w_t X_t`` from each trial's own centre density
  (:meth:`TrialNull.analytic_moments`, for one or many weight vectors at once);
* Freedman-Lane permutations: residuals permuted within strata, then residualised again
  on the reduced model (:meth:`TrialNull.permuted_weights`).

Examples
--------
>>> import numpy as np
>>> trial_weights([1, 0, 1, 1, 0, 0], stratum=["a", "a", "a", "b", "b", "b"]).round(3).tolist()
[0.333, -0.667, 0.333, 0.667, -0.333, -0.333]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stimuli.contracts.errors import InputError

from .apertures import BubbleTrials, _check_shape, aperture_sum, centre_histogram, kernel_groups

__all__ = ["CentreDensity", "DensitySpec", "TrialNull", "nuisance_design", "pooled_density", "trial_weights"]


class CentreDensity:
    """Where bubble centres fall (a sampling density), with its aperture moments cached.

    ``moments(sigma)`` gives ``(E[h], E[h^2])`` maps of one aperture of ``sigma`` whose
    centre is drawn from the density: the ingredients of the analytic null. Build one per
    density and reuse it: the moments are computed once per aperture size.

    Parameters
    ----------
    density : array_like
        (H, W) non-negative weights of the centre positions (normalised to sum 1); ignored
        when ``centres`` is given.
    shape : sequence of int, optional
        The grid (H, W) (needed with ``centres``).
    centres : array_like, optional
        (M, 2) centres, each of equal mass: an empirical density.

    Examples
    --------
    >>> density = CentreDensity(np.ones((8, 8)))
    >>> mean, square = density.moments(2.0)
    >>> bool((square <= mean).all())
    True
    """

    def __init__(self, density: Any, shape: Sequence[int] | None = None, *, centres: Any = None) -> None:
        if centres is not None:
            self.shape = _check_shape(shape)
            self.points = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
            self.mass = np.full(len(self.points), 1.0 / max(len(self.points), 1))
        else:
            grid = np.asarray(density, dtype=np.float64)
            if grid.ndim != 2 or (shape is not None and grid.shape != tuple(shape)):
                raise InputError(f"centre density must be an (H, W) map on the grid, got shape {grid.shape}")
            if not np.isfinite(grid).all() or (grid < 0).any() or grid.sum() <= 0:
                raise InputError("centre density must be finite, non-negative and not all zero")
            self.shape = grid.shape
            rr, cc = np.nonzero(grid)
            self.points = np.column_stack([rr, cc]).astype(np.float64)
            self.mass = grid[rr, cc] / grid.sum()
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def moments(self, sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
        key = float(sigma_px)
        if key not in self._cache:
            mean = aperture_sum(self.shape, self.points, key, self.mass)
            # h^2 is an aperture of sigma / sqrt(2)
            square = aperture_sum(self.shape, self.points, key / math.sqrt(2.0), self.mass)
            self._cache[key] = (mean, square)
        return self._cache[key]


# what compute_ci accepts as centre density: one map or density for all trials, or one per stratum
DensitySpec = Any  # np.ndarray | CentreDensity | Mapping[str, np.ndarray | CentreDensity] | None


def _as_density(value: Any, shape: tuple[int, int], what: str) -> CentreDensity:
    density = value if isinstance(value, CentreDensity) else CentreDensity(value, shape)
    if density.shape != shape:
        raise InputError(f"{what} {density.shape} and grid {shape} differ in shape")
    return density


def _strata_codes(stratum: Any, n: int) -> tuple[np.ndarray, list[str]]:
    """Integer code (N,) of each trial's stratum and the labels in code order."""
    if stratum is None:
        return np.zeros(n, dtype=np.int64), [""]
    labels, codes = np.unique(np.asarray(stratum, dtype=str), return_inverse=True)
    if len(codes) != n:
        raise InputError(f"{len(codes)} stratum labels for {n} trials")
    return codes.astype(np.int64), [str(label) for label in labels]


def nuisance_design(n_trials: int, n_bubbles: Any = None, stratum: Any = None) -> np.ndarray:
    """The reduced model (N, p): one intercept per stratum, then ``n_bubbles`` if it varies.

    Parameters
    ----------
    n_trials : int
        Trials N.
    n_bubbles : array_like, optional
        (N,) bubbles per trial (a column when it varies).
    stratum : array_like, optional
        (N,) density label of each trial.

    Returns
    -------
    numpy.ndarray
        The (N, p) design.

    Examples
    --------
    >>> nuisance_design(4, [5, 6, 5, 6], ["a", "a", "b", "b"]).tolist()
    [[1.0, 0.0, 5.0], [1.0, 0.0, 6.0], [0.0, 1.0, 5.0], [0.0, 1.0, 6.0]]
    """
    codes, labels = _strata_codes(stratum, n_trials)
    columns = [np.eye(len(labels))[codes]]
    if n_bubbles is not None and np.ptp(np.asarray(n_bubbles)) > 0:
        columns.append(np.asarray(n_bubbles, dtype=np.float64)[:, None])
    return np.hstack(columns)


def _residualise(y: np.ndarray, design: np.ndarray, pinv: np.ndarray) -> np.ndarray:
    # y - design @ pinv(design) @ y, for y (N,) or (K, N); pinv copes with collinear columns
    return y - (y @ pinv.T) @ design.T


def trial_weights(correct: Any, n_bubbles: Any = None, stratum: Any = None) -> np.ndarray:
    """Per-trial CI weights: the residuals of ``correct`` on the reduced model
    (:func:`nuisance_design`): ``correct - mean`` with one stratum and a fixed count.

    Parameters
    ----------
    correct : array_like
        (N,) 0/1 answers.
    n_bubbles : array_like, optional
        (N,) bubbles per trial.
    stratum : array_like, optional
        (N,) density label of each trial.

    Returns
    -------
    numpy.ndarray
        (N,) weights.

    Examples
    --------
    >>> trial_weights([1, 0, 1, 1]).tolist()
    [0.25, -0.75, 0.25, 0.25]
    """
    correct = np.asarray(correct, dtype=np.float64)
    design = nuisance_design(len(correct), n_bubbles, stratum)
    return _residualise(correct, design, np.linalg.pinv(design))


@dataclass(frozen=True)
class TrialNull:
    """The null of one participant's CI: reduced model, strata and (for the analytic Z) densities.

    Build it with :meth:`build`; ``densities`` holds one :class:`CentreDensity` per stratum
    (in the order of the codes), or None when only permutations are needed.

    Parameters
    ----------
    design, pinv : numpy.ndarray
        The reduced model (N, p) and its pseudo-inverse.
    codes : numpy.ndarray
        (N,) stratum index of each trial.
    labels : tuple of str
        The strata's labels.
    n_bubbles : numpy.ndarray
        (N,) bubbles per trial.
    densities : tuple of CentreDensity, optional
        One density per stratum (the analytic Z).
    """

    design: np.ndarray  # (N, p) reduced model
    pinv: np.ndarray  # (p, N) its pseudo-inverse
    codes: np.ndarray  # (N,) stratum code of each trial
    labels: tuple[str, ...]  # stratum labels, by code
    n_bubbles: np.ndarray  # (N,)
    densities: tuple[CentreDensity, ...] | None

    @classmethod
    def build(cls, bt: BubbleTrials, *, covariate: bool = True, centre_density: DensitySpec = None,
              analytic: bool = True) -> TrialNull:
        """The null of ``bt``'s trials.

        ``centre_density``: None (estimated from ``bt``'s own centres, per stratum), one
        (H, W) map or :class:`CentreDensity` shared by all trials (only when ``bt`` has one
        stratum), or a mapping from every stratum label of ``bt`` to its density.
        """
        n = bt.n_bubbles
        codes, labels = _strata_codes(bt.stratum, bt.n_trials)
        design = nuisance_design(bt.n_trials, n if covariate else None, bt.stratum)
        densities = _stratum_densities(bt, codes, labels, centre_density) if analytic else None
        return cls(design, np.linalg.pinv(design), codes, tuple(labels), n.astype(np.float64), densities)

    def weights(self, correct: Any) -> np.ndarray:
        """Residuals of ``correct`` on the reduced model: the CI weights."""
        return _residualise(np.asarray(correct, dtype=np.float64), self.design, self.pinv)

    def permutations(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` random permutations (K, N) of the trials, each within its stratum."""
        keys = self.codes + rng.random((int(k), len(self.codes)))
        order = np.argsort(keys, axis=1)  # each row: trials by stratum, randomly within it
        base = np.argsort(self.codes, kind="stable")
        perm = np.empty_like(order)
        perm[:, base] = order  # trial base[j] takes the place of a trial of its own stratum
        return perm

    def permuted_weights(self, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` Freedman-Lane permutations (K, N) of the residuals ``weights``.

        Residuals are permuted within strata, added to the fitted values of the reduced model
        and residualised on it again; as the fitted values' residuals are zero, that is the
        permuted residuals residualised again.
        """
        perm = self.permutations(k, rng)
        return _residualise(np.asarray(weights, dtype=np.float64)[perm], self.design, self.pinv)

    def analytic_moments(self, bt: BubbleTrials, weights: Any, smooth_px: float = 0.0
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Null mean and sd of ``sum_t w_t X_t``, each trial's centres from its own density.

        ``E = sum_t w_t n_t m_d(t)`` and ``Var = sum_t w_t^2 n_t (q_d(t) - m_d(t)^2)``, with
        ``(m, q)`` the density's aperture moments for the trial's kernel. ``weights`` (N,) or
        (K, N) gives (H, W) or (K, H, W) maps.
        """
        if self.densities is None:
            raise InputError("this null was built without centre densities (permutation Z)")
        w = np.asarray(weights, dtype=np.float64)
        single = w.ndim == 1
        w = np.atleast_2d(w)
        onehot = np.eye(len(self.labels))[self.codes]  # (N, S)
        mean = np.zeros((len(w), *bt.shape))
        var = np.zeros((len(w), *bt.shape))
        for sigma, in_group in kernel_groups(bt, smooth_px):
            moments = [d.moments(sigma) for d in self.densities]
            m = np.stack([mo[0] for mo in moments])  # (S, H, W)
            spread = np.stack([np.clip(mo[1] - mo[0] ** 2, 0.0, None) for mo in moments])
            n_in = self.n_bubbles * in_group
            mean += np.tensordot((w * n_in) @ onehot, m, axes=1)
            var += np.tensordot((w**2 * n_in) @ onehot, spread, axes=1)
        sd = np.sqrt(var)
        return (mean[0], sd[0]) if single else (mean, sd)


def _stratum_densities(bt: BubbleTrials, codes: np.ndarray, labels: list[str],
                       centre_density: DensitySpec) -> tuple[CentreDensity, ...]:
    if centre_density is None:  # each stratum's own centres
        return tuple(CentreDensity(None, bt.shape, centres=bt.centres[codes[bt.trial_of] == s])
                     if np.any(codes[bt.trial_of] == s) else CentreDensity(np.ones(bt.shape))
                     for s in range(len(labels)))
    if isinstance(centre_density, Mapping):
        missing = [label for label in labels if label not in centre_density]
        if missing:
            raise InputError(f"{bt.where}: no centre density for stratum '{missing[0]}' "
                             f"({len(missing)} of {len(labels)} missing)")
        return tuple(_as_density(centre_density[label], bt.shape, f"centre density of '{label}'")
                     for label in labels)
    if len(labels) > 1:
        raise InputError(f"{bt.where}: its trials come from {len(labels)} centre densities (strata); "
                         "give one density per stratum, not one for all")
    return (_as_density(centre_density, bt.shape, "centre density"),)


def pooled_density(parts: Sequence[BubbleTrials]) -> CentreDensity:
    """One density from the centres of several participants' trials (a centre histogram).

    Parameters
    ----------
    parts : sequence of BubbleTrials
        The participants' parsed trials.

    Returns
    -------
    CentreDensity
        The pooled density.
    """
    shape = parts[0].shape
    return CentreDensity(centre_histogram(np.concatenate([p.centres for p in parts]), shape))
