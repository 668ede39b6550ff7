"""``python -m analysis ci``: per-participant and group classification images with Stat4Ci tests.

The command line of :func:`analysis.ci_pipeline.run_ci`: reads the trial files of a task
under ``--data-root``, writes ``maps/*.npz``, ``tables/*.csv``, ``figures/*.png`` and
``provenance.json`` into ``--out`` (made all at once on success; replaced only with
``--force`` and only when an earlier ``analysis ci`` made it).

Examples
--------
>>> main(["--data-root", "results/simulated", "--task", "gender", "--stimuli", "orl64",
...       "--out", "results/analysis/ci"])                                  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from stimuli.contracts.cli import add_force, add_out, add_results, command_parser
from stimuli.contracts.config import from_dict, to_dict
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.outputs import atomic_output_dir, check_replaceable
from stimuli.contracts.prepared import prepared_set_dir
from stimuli.contracts.provenance import Provenance, record_run

from .ci_pipeline import CIConfig, run_ci
from .readers.trials import input_files

__all__ = ["CI_COMMAND", "build_parser"]

CI_COMMAND = "analysis ci"  # recorded in provenance.json: only this command replaces its folders


def build_parser() -> argparse.ArgumentParser:
    """The ``ci`` command's options.

    Returns
    -------
    argparse.ArgumentParser
        The parser of ``python -m analysis ci``.

    Examples
    --------
    >>> build_parser().parse_args(["--data-root", "d", "--task", "g", "--stimuli", "s", "--out", "o"]).force
    False
    """
    parser = command_parser("analysis", "ci",
        "Per-participant and group classification images (CIs) for each condition of a "
        "task, with the Stat4Ci pixel and cluster tests (random field theory) and, "
        "optionally, a max-statistic permutation test. Writes maps/*.npz, tables/*.csv, "
        "figures/*.png and provenance.json into --out.")
    parser.add_argument("--data-root", required=True, help="folder holding sub-*/ses-*/beh/*_beh.tsv trial files")
    parser.add_argument("--task", required=True, help="task label of the trial files (e.g. gender)")
    parser.add_argument("--stimuli", required=True, help="prepared stimulus set the trials were shown on")
    add_results(parser)
    add_out(parser, required=True, what="the output folder")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate (default 0.05)")
    parser.add_argument("--sigma-smooth", type=float, default=0.0,
                        help="extra Gaussian smoothing sigma in pixels on top of the apertures (default 0)")
    parser.add_argument("--cluster-threshold", type=float, default=2.7,
                        help="cluster-forming Z threshold of the cluster test (default 2.7)")
    parser.add_argument("--z", choices=("analytic", "permutation"), default="analytic",
                        help="Z-transform of each CI: analytic null moments or permutation of accuracies")
    parser.add_argument("--z-permutations", type=int, default=1000,
                        help="permutations for --z permutation (default 1000)")
    parser.add_argument("--permutations", type=int, default=0,
                        help="max-statistic permutation test with this many permutations (default 0: RFT only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the permutations (default 0)")
    parser.add_argument("--min-trials", type=int, default=100,
                        help="exclude a participant from a condition with fewer main trials (default 100)")
    parser.add_argument("--require-all-conditions", action="store_true",
                        help="exclude a participant from every condition when excluded from one")
    parser.add_argument("--conditions", nargs="+", default=None,
                        help="conditions to analyse (default: every condition found)")
    parser.add_argument("--search-region", default="auto",
                        help="pixels tested: auto (face aperture if the set has one, else all), all, face, "
                             "a named region (eyes, mouth, ...) or box:top,bottom,left,right (default auto)")
    add_force(parser)
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 2, nothing written) on any bad file or exclusion instead of reporting it")
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m analysis ci`` on ``argv`` (the words after the verb; default ``sys.argv[1:]``)
    and return its exit status: 0 on success (bad input: one line on stderr and exit status 2)."""
    args = build_parser().parse_args(argv)
    values = {k: getattr(args, k) for k in (
        "data_root", "task", "stimuli", "results", "alpha", "sigma_smooth", "cluster_threshold", "z",
        "z_permutations", "permutations", "seed", "min_trials", "require_all_conditions", "conditions",
        "search_region")}
    config = from_dict(CIConfig, values, "command line")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise InputError(f"{out} exists already; pass --force to replace it (or choose another --out)")
    protect = (config.results, config.data_root)
    check_replaceable(out, command=CI_COMMAND, protect=protect)  # before any work: a data root is never replaced
    problems: list[str] = []

    def warn(message: str) -> None:
        problems.append(message)
        if not args.strict:
            print(f"warning: {message}", file=sys.stderr)

    provenance = Provenance(config=to_dict(config), seeds={"permutation": config.seed}, tool=CI_COMMAND)
    with atomic_output_dir(out, replace=args.force, command=CI_COMMAND, protect=protect) as work:
        outputs = run_ci(config, work, warn=warn)
        if args.strict and problems:
            raise InputError(f"{problems[0]} (--strict: nothing written; {len(problems)} problem(s) in all)")
        for path in input_files(outputs.inputs):
            provenance.add_input(path)
        set_folder = prepared_set_dir(config.stimuli, config.results)
        for name in ("manifest.csv", "set.json"):
            if (set_folder / name).is_file():
                provenance.add_input(set_folder / name)
        provenance.extra["problems"] = problems
        provenance.extra["outputs"] = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
        record_run(work, provenance)
    groups = ", ".join(f"{r.condition}: {r.n_pixel_sig} px / {r.n_clusters_sig} cluster(s)"
                       for r in outputs.summary.itertuples())
    print(f"wrote {out} ({len(outputs.maps)} group CI(s); significant {groups}"
          + (f"; {len(problems)} problem(s) reported" if problems else "") + ")")
    return 0
