"""Benchmark: classification images through the apertures' linearity vs stacking every mask.

Reference ("naive"): for every trial, build its unclipped mask (the sum of its Gaussian
apertures, :func:`stimuli.bubbles.aperture_profiles` outer products: what ``bubbles_mask``
computes before clipping to 1), stack the trial masks (N, H, W) and weight them by
``correct - fitted accuracy``. Linear route (:func:`analysis.classification.aperture_ci`):
accumulate the same weights at the bubble centres on the grid and convolve once with the
separable aperture profiles. Both compute the same quantity, ``sum_t w_t sum_i g_i``.

The naive route needs a (trials, H, W) float64 stack per participant (0.5 GB at
1,000 x 256 x 256), so it is timed on a subset of participants and extrapolated linearly
to all of them (said so in the output); the maps of that subset are compared exactly.

Run:  python benchmarks/classification_images.py [--participants 100 --trials 1000 --size 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analysis.classification import BubbleTrials, aperture_ci, compute_ci, trial_weights
from stimuli.bubbles import aperture_profiles, sample_centres


def simulate(rng: np.random.Generator, shape: tuple[int, int], trials: int, sigma: float,
             bubbles: tuple[int, int]) -> BubbleTrials:
    """One participant: a staircase-like bubble count, uniform centres, ~75% correct."""
    n = rng.integers(bubbles[0], bubbles[1] + 1, size=trials)
    centres = sample_centres(shape, int(n.sum()), rng)
    correct = (rng.random(trials) < 0.55 + 0.4 * (n - bubbles[0]) / max(1, bubbles[1] - bubbles[0])).astype(float)
    return BubbleTrials(shape, centres.astype(np.float64), np.repeat(np.arange(trials), n), correct,
                        np.full(trials, sigma))


def naive_ci(bt: BubbleTrials, weights: np.ndarray) -> np.ndarray:
    """Stack every trial's unclipped mask, then weight the stack."""
    stack = np.empty((bt.n_trials, *bt.shape))
    starts = np.concatenate([[0], np.cumsum(bt.n_bubbles)])
    for t in range(bt.n_trials):
        rows, cols = aperture_profiles(bt.shape, bt.centres[starts[t]:starts[t + 1]], bt.sigma_px[t])
        stack[t] = rows.T @ cols
    return np.tensordot(weights, stack, axes=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256, help="grid height and width (pixels)")
    parser.add_argument("--sigma", type=float, default=10.0, help="aperture sigma (pixels)")
    parser.add_argument("--bubbles", type=int, nargs=2, default=(20, 60), help="bubble count range per trial")
    parser.add_argument("--naive-subset", type=int, default=5,
                        help="participants the naive route is timed on (then extrapolated)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    shape = (args.size, args.size)
    people = [simulate(rng, shape, args.trials, args.sigma, tuple(args.bubbles)) for _ in range(args.participants)]
    weights = [trial_weights(bt.correct, bt.n_bubbles) for bt in people]
    print(f"{args.participants} participants x {args.trials} trials, {args.size}x{args.size} grid, "
          f"sigma {args.sigma:g} px, {args.bubbles[0]}-{args.bubbles[1]} bubbles/trial, seed {args.seed}")

    start = time.perf_counter()
    linear = [aperture_ci(bt, w) for bt, w in zip(people, weights)]
    linear_s = time.perf_counter() - start

    subset = min(args.naive_subset, args.participants)
    start = time.perf_counter()
    naive = [naive_ci(bt, w) for bt, w in zip(people[:subset], weights[:subset])]
    naive_subset_s = time.perf_counter() - start
    naive_s = naive_subset_s * args.participants / subset

    diff = max(float(np.abs(a - b).max()) for a, b in zip(linear[:subset], naive))
    scale = max(float(np.abs(b).max()) for b in naive)

    start = time.perf_counter()
    for bt in people:
        compute_ci(bt)
    z_s = time.perf_counter() - start

    extrapolated = "" if subset == args.participants else (
        f" (timed on {subset} participants, {naive_subset_s:.2f} s, extrapolated x{args.participants / subset:g})")
    print(f"naive stack-all-masks (reference): {naive_s:9.2f} s{extrapolated}")
    print(f"linear accumulate-and-convolve   : {linear_s:9.2f} s")
    print(f"speed-up linear vs naive         : {naive_s / linear_s:9.1f}x")
    print(f"max |linear - naive| over {subset} participants: {diff:.3e} (max |CI| {scale:.3e}, "
          f"relative {diff / scale:.3e}); identical to 1e-6: {diff <= 1e-6}")
    print(f"linear CIs with analytic Z-scores (null mean and sd): {z_s:.2f} s for {args.participants} participants")


if __name__ == "__main__":
    main()
