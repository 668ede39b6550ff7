"""Guided vs random bubbles under a null observer: why the conditions are compared on revealed area.

An **area-only** observer's accuracy depends only on how much of the face a trial shows
(``p = gamma + (1 - gamma - delta)(1 - exp(-(f / f0)^2))``, ``f`` the revealed fraction of the
face aperture), not on where: model-relevant pixels are no more diagnostic than any others.
Each simulated participant runs a random and a guided block (centres drawn from a two-eye
relevance map), each with its own QUEST staircase (experiments.staircase, the task's
defaults), and is summarised as the analysis does (:mod:`analysis.revealed`: the staircase's
burn-in left out). Across participants a paired t-test compares guided with random

* on the revealed area at the target accuracy (``threshold_revealed_px``, the report's DV):
  under this null it should reject at about alpha;
* on the mean revealed area of the trials after the burn-in (``mean_revealed_px``): the
  staircase holds the two conditions at slightly different accuracies, so it is biased;
* on the mean number of bubbles (the old DV): guided apertures overlap, so the staircase
  gives them more bubbles for the same area, and this test rejects far more often.

An **eyes** observer (accuracy from the area revealed over the eyes only) checks that the
area DV still detects guidance to the diagnostic pixels.

Run at full size (prints one line per DV and observer with Clopper-Pearson intervals)::

    PYTHONPATH=. python benchmarks/area_null_simulation.py --studies 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import stats

from analysis.error_rates import clopper_pearson
from analysis.revealed import condition_summary
from experiments.bubbles_config import Staircase
from experiments.staircase import Quest, QuestParams, bubbles_for_intensity, intensity_for_bubbles
from stimuli.bubbles import (
    CentreSampler,
    aperture_pixels,
    bubbles_mask,
    mask_area,
    max_sensible_bubbles,
)
from stimuli.guided import guidance_density

SHAPE = (64, 64)
SIGMA = 3.0


def face_aperture(shape=SHAPE) -> np.ndarray:
    """An elliptic face aperture."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return ((yy - shape[0] / 2) / (0.45 * shape[0])) ** 2 + ((xx - shape[1] / 2) / (0.36 * shape[1])) ** 2 <= 1


def eyes_map(shape=SHAPE) -> np.ndarray:
    """A two-eye relevance map (what a model's mean relevance often looks like)."""
    relevance = np.zeros(shape)
    relevance[22:28, 16:26] = relevance[22:28, 38:48] = 1.0
    return relevance


def quest_params(shape=SHAPE, sigma=SIGMA) -> QuestParams:
    """QUEST as experiments/bubbles.py sets it up with its default staircase (two answers)."""
    s = Staircase()
    return QuestParams(start=float(np.log10(s.start_bubbles)), start_sd=s.start_sd, target=s.target, beta=s.beta,
                       delta=s.delta, gamma=0.5, grain=s.grain, method=s.method,
                       min_val=float(np.log10(s.min_bubbles)), max_val=float(np.log10(max_sensible_bubbles(shape, sigma))))


def _p_correct(fraction: float, f0: float) -> float:
    return 0.5 + 0.49 * (1.0 - np.exp(-((fraction / f0) ** 2)))


def run_block(sampler, observer, params, rng, *, trials, aperture, eyes, f0):
    """One condition's staircase: rows for analysis.revealed.condition_summary."""
    quest = Quest(params)
    n_face, n_eyes = aperture_pixels(SHAPE, aperture), int(eyes.sum())
    rows = {"staircase": [], "staircase_trial": [], "correct": [], "n_bubbles": [], "revealed_px": []}
    for t in range(trials):
        n = bubbles_for_intensity(quest.next_intensity(), 1, 10 ** params.max_val)
        mask = bubbles_mask(SHAPE, sampler.sample(n, rng), SIGMA)
        area = mask_area(mask, aperture)
        seen = area / n_face if observer == "area" else mask_area(mask, eyes) / n_eyes
        correct = int(rng.random() < _p_correct(seen, f0))
        quest.update(intensity_for_bubbles(n), correct)
        for key, value in zip(rows, ("s", t + 1, correct, n, area)):
            rows[key].append(value)
    frame = pd.DataFrame(rows)
    frame["final_log10_bubbles"] = quest.next_intensity()
    return frame


def simulate_study(seed, *, participants=12, trials=100, observer="area", burn_in=20, f0=0.25):
    """Per-participant summaries (random, guided) of one study: DV name -> (P, 2) array."""
    rng = np.random.default_rng(seed)
    aperture = face_aperture()
    eyes = eyes_map() > 0
    samplers = {"random": CentreSampler(SHAPE, aperture),
                "guided": CentreSampler(SHAPE, guidance_density(eyes_map(), SIGMA, region=aperture))}
    params = quest_params()
    n_face = aperture_pixels(SHAPE, aperture)
    values = {dv: np.empty((participants, 2)) for dv in DVS}
    for p in range(participants):
        for j, condition in enumerate(("random", "guided")):
            trials_ = run_block(samplers[condition], observer, params, rng, trials=trials, aperture=aperture,
                                eyes=eyes, f0=f0)
            summary = condition_summary(trials_, burn_in, aperture_px=n_face)
            for dv, column in DVS.items():
                values[dv][p, j] = summary[column]
    return values


# DV -> condition_summary column
DVS = {"threshold_revealed_px": "threshold_revealed_px", "mean_revealed_px": "mean_revealed_px",
       "mean_n_bubbles": "mean_n_bubbles_after_burn_in"}


def rejection_rates(studies, *, seed=0, alpha=0.05, **options):
    """Counts of studies whose paired t-test (guided vs random, as the report's pingouin test) rejects,
    per DV; and the mean over studies of the guided / random ratio of the participants' means."""
    rejected = dict.fromkeys(DVS, 0)
    ratio = {dv: [] for dv in DVS}
    for s in range(studies):
        values = simulate_study(seed * 100003 + s, **options)
        for dv, v in values.items():
            rejected[dv] += int(stats.ttest_rel(v[:, 1], v[:, 0]).pvalue < alpha)
            ratio[dv].append(v[:, 1].mean() / v[:, 0].mean())
    return rejected, {dv: float(np.mean(r)) for dv, r in ratio.items()}



def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200, help="simulated studies per observer (default 200)")
    parser.add_argument("--participants", type=int, default=12, help="participants per study (default 12)")
    parser.add_argument("--trials", type=int, default=100, help="main trials per condition")
    parser.add_argument("--burn-in", type=int, default=20,
                        help="staircase trials left out of each participant's summary (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the studies (default 0)")
    args = parser.parse_args(argv)
    for observer in ("area", "eyes"):
        start = time.time()
        rejected, ratio = rejection_rates(args.studies, seed=args.seed, participants=args.participants,
                                          trials=args.trials, observer=observer, burn_in=args.burn_in)
        for dv, k in rejected.items():
            low, high = clopper_pearson(k, args.studies)
            print(f"observer={observer} dv={dv}: guided/random = {ratio[dv]:.3f}, paired t rejects "
                  f"{k}/{args.studies} = {k / args.studies:.3f} (95% CI {low:.3f}-{high:.3f}) "
                  f"[participants={args.participants} trials={args.trials} burn_in={args.burn_in} "
                  f"seed={args.seed} {time.time() - start:.0f}s]", flush=True)


if __name__ == "__main__":
    main()
