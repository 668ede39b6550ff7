"""Bubble masks: ours next to the ``bubblemask`` package (1.0.1) computing the same masks.

Prints, for 256x256 masks with sigma 10 px and 10/60/200 bubbles at whole-pixel centres,
masks per second of :func:`stimuli.bubbles_mask` (sum merge) and of bubblemask's
``build.build_mask(..., scale=True, sum_merge=True)``, their ratio and the largest difference
between the two masks; then the time to draw 1,000 guided masks from a 256x256 relevance map.

Usage::

    python benchmarks/bubbles.py [--repeat 7] [--size 256] [--sigma 10]

Times are the best of ``--repeat`` runs (the least disturbed by other processes); the load
average is printed first, because a shared machine slows both sides.
"""

from __future__ import annotations

import argparse
import os
import time
import timeit

import numpy as np
from scipy.ndimage import gaussian_filter

from stimuli.bubbles import CentreSampler, bubbles_mask, sample_centres
from stimuli.guided import guidance_density


def best_seconds(call, number: int, repeat: int) -> float:
    """Best time per call over ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number


def compare_with_bubblemask(size: int, sigma: float, counts: tuple[int, ...], repeat: int) -> None:
    from bubblemask import build

    shape = (size, size)
    print(f"masks {size}x{size}, sigma {sigma:g} px, sum merge, whole-pixel centres; best of {repeat}")
    print(f"{'bubbles':>8} {'ours ms':>9} {'ours/s':>9} {'bubblemask ms':>14} {'bubblemask/s':>13} "
          f"{'ratio':>7} {'max |diff|':>11}")
    for n in counts:
        centres = sample_centres(shape, n, seed=n)
        sigmas = np.full(n, float(sigma))

        def ours(centres=centres):
            return bubbles_mask(shape, centres, sigma)

        def theirs(centres=centres, sigmas=sigmas):
            # bubblemask: mu_y indexes axis 0 (rows), mu_x axis 1 (columns)
            return build.build_mask(mu_y=centres[:, 0], mu_x=centres[:, 1], sigma=sigmas, sh=shape,
                                    scale=True, sum_merge=True)

        diff = float(np.abs(ours().astype(np.float64) - theirs()).max())
        t_ours = best_seconds(ours, number=200, repeat=repeat)
        t_theirs = best_seconds(theirs, number=3, repeat=repeat)
        print(f"{n:>8} {t_ours * 1e3:>9.3f} {1 / t_ours:>9.0f} {t_theirs * 1e3:>14.2f} {1 / t_theirs:>13.1f} "
              f"{t_theirs / t_ours:>6.0f}x {diff:>11.2e}")


def guided_sampling(size: int, sigma: float, n_bubbles: int, n_masks: int, repeat: int) -> None:
    shape = (size, size)
    relevance = gaussian_filter(np.random.default_rng(0).standard_normal(shape), 8)

    def draw(build_masks: bool) -> None:
        density = guidance_density(relevance, sigma)
        sampler = CentreSampler(shape, weights=density)
        rng = np.random.default_rng(1)
        for _ in range(n_masks):
            centres = sampler.sample(n_bubbles, rng)
            if build_masks:
                bubbles_mask(shape, centres, sigma)

    for build_masks, what in ((False, "centres only"), (True, "centres + masks")):
        seconds = best_seconds(lambda b=build_masks: draw(b), number=1, repeat=max(1, repeat // 2))
        print(f"guided sampling of {n_masks} masks ({n_bubbles} bubbles, {size}x{size} relevance map, "
              f"{what}): {seconds:.3f} s (target < 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timing repeats (best is reported)")
    parser.add_argument("--size", type=int, default=256, help="mask side in pixels")
    parser.add_argument("--sigma", type=float, default=10.0, help="bubble sigma in pixels")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs "
          f"({time.strftime('%Y-%m-%d %H:%M')})")
    compare_with_bubblemask(args.size, args.sigma, (10, 60, 200), args.repeat)
    guided_sampling(args.size, args.sigma, 60, 1000, args.repeat)


if __name__ == "__main__":
    main()
