"""How often do the map-similarity findings say "agrees" when training adds nothing?

End to end on simulated maps: 8 variants (imagenet/faces x gender/identity x seeds 0, 1) and
their untrained and random baselines are drawn from the *same* process (a face pattern, an
image-specific pattern and per-variant noise, so trained pairs correlate at r about 0.8, which
the old rule "r >= 0.5 and r > 0" always called stable). The report's path is then run:
per-image similarity, paired levels, bootstrap contrasts over images, verdicts. The rate of
"agrees" for the seed and task rows must stay at or below the nominal one-sided 2.5% (the CI
of the difference above 0); the pretraining row's rate likewise. Prints each rate with its
Clopper-Pearson interval.

    python benchmarks/similarity_null.py --runs 400 --images 80 --boot 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from analysis.model_stats import per_image_similarity, relevance_maps
from analysis.similarity_null import (
    baseline_contrasts,
    level_contrasts,
    oriented,
    paired_levels,
    pretrain_verdict,
    similarity_verdict,
)

VARIANTS = [f"vgg16-{p}-{t}-s{s}" for p in ("imagenet", "faces") for t in ("gender", "identity") for s in (0, 1)]


def simulate(rng: np.random.Generator, n_images: int, side: int = 16) -> dict[str, dict]:
    """One study's trained and baseline maps, all from the same process (no training signal)."""
    yy, xx = np.mgrid[0:side, 0:side]
    face = np.exp(-((yy - side / 2) ** 2 + (xx - side / 2) ** 2) / (2 * (side / 4) ** 2))
    images = rng.normal(size=(n_images, side, side))  # each image's own pattern, shared by all variants
    ids = [f"im{i:03d}" for i in range(n_images)]

    def arm() -> dict:
        return {v: oriented(relevance_maps(face + 0.5 * images + 0.35 * rng.normal(size=images.shape), v, ids))
                for v in VARIANTS}

    return {"trained": arm(), "untrained": arm(), "random": arm()}


def one_study(rng: np.random.Generator, n_images: int, n_boot: int) -> dict[str, str]:
    maps = simulate(rng, n_images)
    trained = per_image_similarity(maps["trained"])
    pairs = list(zip(trained["variant_a"], trained["variant_b"]))
    pairs = list(dict.fromkeys(pairs))
    paired = {kind: paired_levels(trained, per_image_similarity(maps[kind], pairs=pairs))
              for kind in ("untrained", "random")}
    seed = int(rng.integers(1 << 31))
    contrasts = baseline_contrasts(paired, n_boot=n_boot, seed=seed)
    verdicts = {level: similarity_verdict(contrasts[contrasts.relation == level]) for level in ("seed", "task")}
    verdicts["pretrain"] = pretrain_verdict(level_contrasts(paired["untrained"], n_boot=n_boot, seed=seed))
    verdicts["r_seed"] = float(contrasts[contrasts.relation == "seed"].effect_r.iloc[0])
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="null studies simulated (default 400)")
    parser.add_argument("--images", type=int, default=80, help="images per study (default 80)")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples per contrast (default 1000)")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the whole simulation (default 2026)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    results = [one_study(rng, args.images, args.boot) for _ in range(args.runs)]
    print(f"{args.runs} null studies, {args.images} images, {args.boot} bootstrap resamples, seed {args.seed}, "
          f"{time.perf_counter() - started:.0f} s; mean trained seed r = "
          f"{np.mean([r['r_seed'] for r in results]):.2f}")
    for level in ("seed", "task", "pretrain"):
        k = sum(r[level] == "agrees" for r in results)
        ci = stats.binomtest(k, args.runs).proportion_ci(0.95, method="exact")
        print(f"{level:8s} 'agrees' {k}/{args.runs} = {k / args.runs:.3f} (Clopper-Pearson 95% "
              f"{ci.low:.3f}-{ci.high:.3f}; nominal <= 0.025)")


if __name__ == "__main__":
    main()
