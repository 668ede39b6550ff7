"""Measure the issue's numbers at full size (not a test: run it, read the lines it prints).

    .venv/bin/python benchmarks/similarity_full.py [--runs 200] [--method probability]
    .venv/bin/python benchmarks/similarity_full.py --skip-recovery --method embedding --seed 2026 --studies 11 --jobs 2

Recovery: 10 simulated observers x 300 triplets over 20 faces (5-dimensional embedding, the
shipped config's noise_sd 0.1), for several embeddings and both human-RDM methods: RSA of the
known embedding's RDM with the group RDM, and whether the noise ceiling brackets the
embedding's mean RSA with the participants. Null: RSA between the group RDM of observers on
one random embedding and the RDM of another, permutation test (1000 relabellings), alpha 0.05,
over ``--runs`` simulated runs per study; ``--studies K`` measures K disjoint studies (seeds
``--seed`` .. ``--seed`` + K - 1) and compares their counts with Binomial(runs, alpha), which is what
an exact test gives.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analysis"))  # the simulation helper

from similarity_simulation import null_p_value, recovery  # noqa: E402

ALPHA = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="simulated runs per null study (default 200)")
    parser.add_argument("--embeddings", type=int, default=10, help="embeddings of the recovery (default 10)")
    parser.add_argument("--method", nargs="+", default=["embedding", "probability"],
                        help="human RDM methods (default: embedding probability)")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.1], help="observer noise_sd values")
    parser.add_argument("--seed", type=int, default=0, help="seed of the null's simulated studies (default 0)")
    parser.add_argument("--studies", type=int, default=1, help="disjoint null studies, seeds --seed onwards (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the null's runs (default 1)")
    parser.add_argument("--skip-recovery", action="store_true", help="measure the null only")
    args = parser.parse_args()
    for method in [] if args.skip_recovery else args.method:
        for noise in args.noise:
            started = time.perf_counter()
            rows = [recovery(n=20, observers=10, trials=300, noise_sd=noise, dims=5, method=method, seed=s)
                    for s in range(args.embeddings)]
            group = np.array([r["rsa_group"] for r in rows])
            bracketed = [r["ceiling_lower"] <= r["rsa_subjects"] <= r["ceiling_upper"] for r in rows]
            print(f"recovery {method:11s} noise {noise:.2f}: RSA(group RDM, embedding RDM) min {group.min():.3f} "
                  f"mean {group.mean():.3f} over {len(rows)} embeddings; ceiling brackets the embedding's mean "
                  f"subject RSA in {sum(bracketed)}/{len(rows)} (e.g. {rows[0]['ceiling_lower']:.3f} <= "
                  f"{rows[0]['rsa_subjects']:.3f} <= {rows[0]['ceiling_upper']:.3f}) [{time.perf_counter() - started:.0f} s]",
                  flush=True)
    for method in args.method:
        counts = [null_study(method, seed, args.runs, args.jobs) for seed in range(args.seed, args.seed + args.studies)]
        if len(counts) > 1:
            total = sum(counts)
            low, high = stats.binomtest(total, args.runs * len(counts)).proportion_ci(0.95)
            within = sum(c <= ALPHA * args.runs for c in counts)
            expected = stats.binom.cdf(int(ALPHA * args.runs), args.runs, ALPHA)
            print(f"null {method:11s} {len(counts)} studies (seeds {args.seed}-{args.seed + len(counts) - 1}): counts "
                  f"{' '.join(map(str, counts))}; pooled {total}/{args.runs * len(counts)} = "
                  f"{total / (args.runs * len(counts)):.4f} (95% CI {low:.4f}-{high:.4f}); studies <= {ALPHA:.0%}: "
                  f"{within}/{len(counts)} (an exact test: {expected:.2f} of studies)", flush=True)


def null_study(method: str, seed: int, runs: int, jobs: int) -> int:
    """One simulated null study of ``runs`` runs; prints its line and returns its significant count."""
    started = time.perf_counter()
    one_run = partial(null_p_value, n=20, observers=10, trials=300, noise_sd=0.1, dims=5, permutations=1000,
                      method=method, seed=seed)
    with ProcessPoolExecutor(jobs) as pool:
        p = np.array(list(pool.map(one_run, range(runs), chunksize=max(1, runs // (4 * jobs)))))
    hits = int((p < ALPHA).sum())
    low, high = stats.binomtest(hits, runs).proportion_ci(0.95)
    inflated = stats.binomtest(hits, runs, ALPHA, alternative="greater").pvalue
    print(f"null {method:11s} seed {seed}: significant in {hits}/{runs} = {hits / runs:.3f} of runs at alpha "
          f"{ALPHA} (95% CI {low:.3f}-{high:.3f}; <= {ALPHA:.0%}: {'yes' if hits <= ALPHA * runs else 'no'}; "
          f"one-sided binomial test of a rate above {ALPHA}: p = {inflated:.3f}); KS test of uniform p: "
          f"p = {stats.kstest(p, 'uniform').pvalue:.3f} [{time.perf_counter() - started:.0f} s]", flush=True)
    return hits


if __name__ == "__main__":
    main()
