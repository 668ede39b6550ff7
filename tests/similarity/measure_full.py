"""Measure the issue's numbers at full size (not a test: run it, read the lines it prints).

    .venv/bin/python tests/similarity/measure_full.py [--runs 200] [--method probability]

Recovery: 10 simulated observers x 300 triplets over 20 faces (5-dimensional embedding, the
shipped config's noise_sd 0.1), for several embeddings and both human-RDM methods: RSA of the
known embedding's RDM with the group RDM, and whether the noise ceiling brackets the
embedding's mean RSA with the participants. Null: RSA between the group RDM of observers on
one random embedding and the RDM of another, permutation test (1000 relabellings), alpha 0.05,
over ``--runs`` simulated studies.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))

from similarity_simulation import null_p_values, recovery  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="simulated studies of the null (default 200)")
    parser.add_argument("--embeddings", type=int, default=10, help="embeddings of the recovery (default 10)")
    parser.add_argument("--method", nargs="+", default=["embedding", "probability"],
                        help="human RDM methods (default: embedding probability)")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.1], help="observer noise_sd values")
    parser.add_argument("--seed", type=int, default=0, help="seed of the null's simulated studies (default 0)")
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
        started = time.perf_counter()
        p = null_p_values(runs=args.runs, n=20, observers=10, trials=300, noise_sd=0.1, dims=5, permutations=1000,
                          method=method, seed=args.seed)
        hits = int((p < 0.05).sum())
        low, high = stats.binomtest(hits, len(p)).proportion_ci(0.95)
        print(f"null {method:11s} seed {args.seed}: significant in {hits}/{len(p)} = {hits / len(p):.3f} of studies at alpha 0.05 "
              f"(95% CI {low:.3f}-{high:.3f}); KS test of uniform p: p = {stats.kstest(p, 'uniform').pvalue:.3f} "
              f"[{time.perf_counter() - started:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
