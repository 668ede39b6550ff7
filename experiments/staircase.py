"""QUEST staircases (Watson & Pelli, 1983) on log10 of the number of bubbles, in numpy.

The same parameters and update rule as ``psychopy.data.QuestHandler`` (which wraps Pelli's
QUEST through ``psychopy.contrib.quest``): a Weibull psychometric function
``p(x) = delta*gamma + (1-delta)*(1 - (1-gamma)*exp(-10**(beta*(x - T + eps))))`` with
``eps`` chosen so that ``p(T) = target``, a Gaussian prior over the threshold ``T`` centred on
the start value, and the next intensity at the quantile that is most informative
(``method="quantile"``), the posterior mean or its mode, clipped to ``[min_val, max_val]``.
The first trial is at the start value. ``tests/experiments/test_staircase.py`` checks it
step for step against QuestHandler.

Why not QuestHandler itself: only the display may import psychopy (simulated sessions run
headless and fast), and a staircase whose state is a pure replay of the trial file's
``(intensity, correct)`` history can never disagree with the data on resume. One difference
on purpose: the posterior is renormalised after each update (psychopy's is not, and
underflows to zero after a few thousand trials); the intensities are unchanged by it.

Examples
--------
>>> quest = Quest(QuestParams(start=1.5, start_sd=0.5, gamma=0.5, target=0.75))
>>> quest.next_intensity()
1.5
>>> quest.update(1.5, True)
>>> round(quest.next_intensity(), 3) < 1.5
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["QuestParams", "Quest", "bubbles_for_intensity", "intensity_for_bubbles"]


@dataclass(frozen=True)
class QuestParams:
    """QUEST parameters, named as in ``psychopy.data.QuestHandler``.

    ``start`` / ``start_sd`` are ``startVal`` / ``startValSd`` and ``target`` is
    ``pThreshold``; intensities are log10 units (here: log10 of the number of bubbles).

    Parameters
    ----------
    start, start_sd : float
        Prior mean and sd of the threshold (log10 units): ``startVal``, ``startValSd``.
    target : float
        The accuracy the staircase aims at (``pThreshold``).
    beta, delta, gamma : float
        Weibull slope, lapse rate and guess rate (chance).
    grain, range : float
        Step and width of the intensity grid.
    method : {"quantile", "mean", "mode"}
        Which statistic of the posterior is tested next.
    min_val, max_val : float or None
        Bounds of the intensities asked for.
    """

    start: float
    start_sd: float
    target: float = 0.75
    beta: float = 3.5
    delta: float = 0.01
    gamma: float = 0.5
    grain: float = 0.01
    range: float | None = None
    method: Literal["quantile", "mean", "mode"] = "quantile"
    min_val: float | None = None
    max_val: float | None = None


class Quest:
    """One QUEST staircase; its whole state is the list of ``(intensity, correct)`` updates.

    Parameters
    ----------
    params : QuestParams
        The staircase's settings.
    """

    def __init__(self, params: QuestParams) -> None:
        self.params = params
        grain = float(params.grain)
        if params.range is None:
            dim = 500
        else:
            if params.range <= 0:
                raise ValueError('argument "range" must be greater than zero.')
            dim = 2 * math.ceil(params.range / grain / 2.0)
        gamma = params.gamma
        if gamma > params.target:  # as QuestObject.recompute
            gamma = 0.5
        self.gamma = gamma
        self.dim = dim
        self.i = np.arange(-dim / 2, dim / 2 + 1)
        self.x = self.i * grain
        pdf = np.exp(-0.5 * (self.x / params.start_sd) ** 2)
        self.pdf = pdf / pdf.sum()
        x2 = np.arange(-dim, dim + 1) * grain
        p2 = params.delta * gamma + (1 - params.delta) * (1 - (1 - gamma) * np.exp(-(10 ** (params.beta * x2))))
        if p2[0] >= params.target or p2[-1] <= params.target:
            raise ValueError(f"psychometric function range [{p2[0]:.2f} {p2[-1]:.2f}] "
                             f"omits the {params.target:.2f} threshold")
        index = np.nonzero(p2[1:] - p2[:-1])[0]
        self.epsilon = float(np.interp([params.target], p2[index], x2[index])[0])
        p2 = params.delta * gamma + (1 - params.delta) * (
            1 - (1 - gamma) * np.exp(-(10 ** (params.beta * (x2 + self.epsilon)))))
        self.x2, self.p2 = x2, p2
        self.s2 = np.array(((1 - p2)[::-1], p2[::-1]))
        pl, ph = p2[0], p2[-1]
        eps = 1e-14
        pe = (ph * math.log(ph + eps) - pl * math.log(pl + eps) + (1 - ph + eps) * math.log(1 - ph + eps)
              - (1 - pl + eps) * math.log(1 - pl + eps))
        pe = 1 / (1 + math.exp(pe / (pl - ph)))
        self.quantile_order = (pe - pl) / (ph - pl)
        self.history: list[tuple[float, int]] = []

    @classmethod
    def replay(cls, params: QuestParams, history: Iterable[tuple[float, bool | int]]) -> Quest:
        """A staircase after the given ``(intensity, correct)`` updates, in order."""
        quest = cls(params)
        for intensity, correct in history:
            quest.update(intensity, correct)
        return quest

    def update(self, intensity: float, correct: bool | int) -> None:
        """Add one trial: the intensity shown and whether the answer was correct."""
        response = int(bool(correct))
        inten = max(-1e10, min(1e10, float(intensity)))
        ii = len(self.pdf) + self.i - round((inten - self.params.start) / self.params.grain) - 1
        # out of the table: shift to its edge (as QuestObject.recompute)
        if ii[0] < 0:
            ii = ii - ii[0]
        if ii[-1] >= self.s2.shape[1]:
            ii = ii + self.s2.shape[1] - ii[-1] - 1
        pdf = self.pdf * self.s2[response, ii.astype(np.int64)]
        self.pdf = pdf / pdf.sum()  # renormalise: no underflow in long sessions
        self.history.append((float(intensity), response))

    def __len__(self) -> int:
        return len(self.history)

    def quantile(self, p: float | None = None) -> float:
        """A quantile of the posterior (default: QUEST's most informative one)."""
        order = self.quantile_order if p is None else p
        cdf = np.cumsum(self.pdf)
        m1p = np.concatenate(([-1], cdf))
        index = np.nonzero(m1p[1:] - m1p[:-1])[0]
        return float(self.params.start + np.interp([order * cdf[-1]], cdf[index], self.x[index])[0])

    def mean(self) -> float:
        """Posterior mean of the threshold."""
        return float(self.params.start + np.sum(self.pdf * self.x) / np.sum(self.pdf))

    def mode(self) -> float:
        """Posterior mode of the threshold."""
        return float(self.x[np.argsort(self.pdf)[-1]] + self.params.start)

    def sd(self) -> float:
        """Posterior standard deviation of the threshold."""
        p = np.sum(self.pdf)
        return float(math.sqrt(np.sum(self.pdf * self.x**2) / p - (np.sum(self.pdf * self.x) / p) ** 2))

    def next_intensity(self) -> float:
        """The intensity to test next: the start value first, then the chosen estimate, clipped."""
        if not self.history:
            return float(self.params.start)
        method = self.params.method
        value = self.quantile() if method == "quantile" else self.mean() if method == "mean" else self.mode()
        if self.params.max_val is not None and value > self.params.max_val:
            value = self.params.max_val
        elif self.params.min_val is not None and value < self.params.min_val:
            value = self.params.min_val
        return float(value)

    def threshold(self) -> float:
        """The current threshold estimate (posterior mean)."""
        return self.mean()


def bubbles_for_intensity(intensity: float, low: int, high: int) -> int:
    """The number of bubbles shown for a log10 intensity: rounded and clipped to [low, high].

    Parameters
    ----------
    intensity : float
        log10 of the number of bubbles.
    low, high : int
        The fewest and most bubbles shown.

    Returns
    -------
    int
        The number of bubbles shown.
    """
    return int(min(high, max(low, round(10 ** float(intensity)))))


def intensity_for_bubbles(n_bubbles: int) -> float:
    """The log10 intensity of a shown number of bubbles (what the staircase is updated with).

    Parameters
    ----------
    n_bubbles : int
        The number of bubbles shown (below 1 counts as 1).

    Returns
    -------
    float
        ``log10(n_bubbles)``.
    """
    return math.log10(max(1, int(n_bubbles)))
