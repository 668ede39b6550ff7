"""Measurement: the error rates of the masking asymmetry test (bootstrap over images).

:func:`model.masking_stats.asymmetry_bootstrap` tests ``relative_ab - relative_ba`` = 0 for one
pair of variants a, b tested on the same images. Synthetic per-image AOPC: every image has an
effect shared by both targets (some faces are easier to break), target b is twice as fragile
as a (every AOPC doubled), and each target's own map, random blobs and the other's map have
their own per-image noise. Under the null both relative transfers are 0.5 (raw asymmetry
about 0.125, the issue's example); under the alternatives a's map keeps 0.6 (0.8) of b's
own-map advantage and b's map 0.4 (0.3) of a's. Prints the rejection rate at alpha with its Clopper-Pearson
interval; tests/model/test_masking_stats.py runs a smaller null.

Run:  python benchmarks/masking_asymmetry_null.py [--runs 1000 --images 80 --boot 2000 --seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analysis.error_rates import clopper_pearson
from model.masking_stats import asymmetry_bootstrap


def synthetic_pair(rng: np.random.Generator, n_images: int, relative_ab: float, relative_ba: float,
                   fragility: tuple[float, float] = (1.0, 2.0)) -> dict[str, np.ndarray]:
    """Per-image AOPC of a pair: ``ab`` (a's maps on b), ``random_b``, ``own_b``, and the same on a."""
    effect = rng.gamma(4.0, 0.25, n_images)  # mean 1: how easily each face breaks, for both targets

    def target(fragile: float, relative: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        random = fragile * (0.05 * effect + rng.normal(0, 0.03, n_images))
        own = fragile * (0.30 * effect + rng.normal(0, 0.08, n_images))
        other = fragile * ((0.05 + relative * 0.25) * effect + rng.normal(0, 0.08, n_images))
        return other, random, own

    ab, random_b, own_b = target(fragility[1], relative_ab)
    ba, random_a, own_a = target(fragility[0], relative_ba)
    return {"ab": ab, "random_b": random_b, "own_b": own_b, "ba": ba, "random_a": random_a, "own_a": own_a}


def rejection_rate(runs: int, n_images: int, n_boot: int, *, relative: tuple[float, float] = (0.5, 0.5),
                   alpha: float = 0.05, seed: int = 0) -> tuple[int, int]:
    """How many of ``runs`` synthetic pairs the bootstrap test rejects at ``alpha`` (seeded)."""
    rng = np.random.default_rng(seed)
    rejected = 0
    for run in range(runs):
        pair = synthetic_pair(rng, n_images, *relative)
        result = asymmetry_bootstrap(**pair, n_boot=n_boot, seed=[seed, run])
        rejected += result["p"] < alpha
    return int(rejected), runs



def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--images", type=int, default=80)
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for label, relative in (("null (0.5 both ways, b twice as fragile)", (0.5, 0.5)),
                            ("alternative (0.6 vs 0.4)", (0.6, 0.4)), ("alternative (0.8 vs 0.3)", (0.8, 0.3))):
        started = time.perf_counter()
        k, n = rejection_rate(args.runs, args.images, args.boot, relative=relative, alpha=args.alpha, seed=args.seed)
        low, high = clopper_pearson(k, n)
        print(f"{label}: rejected {k}/{n} = {k / n:.3f} at alpha {args.alpha} (95% Clopper-Pearson "
              f"[{low:.3f}, {high:.3f}]); {args.images} images, {args.boot} resamples, seed {args.seed}, "
              f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
