"""``python -m model pipeline GRID --stimuli SET``: train -> explain -> evaluate as chained jobs.

The stages, each a set of jobs (:mod:`model.jobs`):

1. ``train``: the grid's face-pretraining sources, then its variants (one job per variant);
2. ``explain``: each trained (non-source) variant's relevance maps of prepared set ``SET``;
3. ``evaluate``: the evaluate config (``--evaluate``, or one written from the grid to
   ``<out>/jobs/pipeline/<grid>-<set>.yaml``: masking transfer between the grid's variants
   with the default masking settings), which reuses the maps of step 2.

``--launcher slurm`` submits all three at once, each stage after the one before
(``--dependency=afterok:<job ids>``), and shows the jobs' states until the end; ``local`` runs
each stage's jobs as local processes once the stage before has succeeded; ``none`` (the
default) runs everything in this process, one after the other. A failed stage stops the chain.

Examples
--------
::

    python -m model pipeline model/configs/demo.yaml --stimuli orl128
    python -m model pipeline model/configs/seed_study.yaml --stimuli seed_faces \\
        --launcher slurm --partition gpu --gpus-per-job 1 --time 4:00:00
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from stimuli.contracts.cli import command_parser
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.prepared import prepared_set_dir

from .__main__ import COMMANDS
from .config import expand_grid, load_grid, select_variants
from .device import set_amp
from .jobs import JobSpec, Stage, run_stages
from .launch import add_execution_arguments, jobs_folder, options_from_args, train_stages
from .options import add_results_root

__all__ = ["pipeline_stages"]


DESCRIPTION = (  # the command's --help text
    "Train a grid's variants, explain each on a prepared set and evaluate them "
    "(relevance-based masking), as chained jobs (--launcher local|slurm) or here.")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m model pipeline`` (its ``--help``)."""
    parser = command_parser("model", "pipeline", DESCRIPTION)
    parser.add_argument("config", help="grid YAML, e.g. model/configs/seed_study.yaml")
    parser.add_argument("--stimuli", required=True, help="prepared set the variants are explained on")
    parser.add_argument("--evaluate", metavar="YAML",
                        help="evaluate config (default: one written from the grid, default masking settings)")
    parser.add_argument("--composite", default="epsilon_plus_flat",
                        help="LRP composite of the maps (default epsilon_plus_flat; --evaluate's wins)")
    parser.add_argument("--target", choices=("true", "pred"), default="true",
                        help="explain the true (default) or the predicted class (--evaluate's wins)")
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="only these variants of the grid")
    add_results_root(parser)
    add_execution_arguments(parser)
    return parser


def _evaluate_config(args: argparse.Namespace, variants: list[str], grid_stimuli: str) -> tuple[Path, str, str]:
    """The evaluate config's path, composite and target rule (written from the grid when not given)."""
    if args.evaluate:
        path = Path(args.evaluate)
        if not path.is_file():
            raise InputError(f"--evaluate: {path} not found")
        raw = yaml.safe_load(path.read_text()) or {}
        if raw.get("stimuli") not in (None, args.stimuli, grid_stimuli):
            raise InputError(f"{path}: key 'stimuli' is {raw['stimuli']}, but the pipeline explains "
                             f"{args.stimuli}; make them the same or leave 'stimuli' out")
        target = raw.get("target", "true")
        return path, str(raw.get("composite", "epsilon_plus_flat")), "true" if target is True else str(target)
    name = f"{Path(args.config).stem}-{args.stimuli}"
    config: dict = {"name": name}
    if args.only:
        config["variants"] = variants
    else:
        config["grid"] = str(Path(args.config).resolve())
    if args.stimuli == grid_stimuli:  # masking scores each variant's held-out images of its own set
        config["stimuli"] = args.stimuli
    config.update(composite=args.composite, target=args.target)
    path = jobs_folder(args.out, "pipeline") / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# written by python -m model pipeline\n" + yaml.safe_dump(config, sort_keys=False))
    return path, args.composite, args.target


def pipeline_stages(args: argparse.Namespace, argv: Sequence[str]) -> list[Stage]:
    """The stages of a pipeline run: train (sources, variants), explain, evaluate.

    Parameters
    ----------
    args : argparse.Namespace
        The pipeline's parsed arguments.
    argv : sequence of str
        Its arguments as typed.

    Returns
    -------
    list of Stage
        The stages, in order.
    """
    where = str(args.config)
    grid = load_grid(where)
    variants = select_variants(expand_grid(grid, where), list(args.only or []), where)
    if not (prepared_set_dir(args.stimuli, args.out) / "manifest.csv").is_file():
        raise InputError(f"--stimuli: prepared set '{args.stimuli}' not found under {Path(args.out) / 'stimuli'}; "
                         f"make it with: python -m stimuli prepare --faces DIR --size N --name {args.stimuli}"
                         f" --out {args.out}")
    explained = [v.variant for v in variants if not v.spec.is_face_source]
    evaluate, composite, target = _evaluate_config(args, explained, grid.stimuli)
    common = ["--out", str(args.out), "--device", str(args.device), *(["--no-amp"] if args.no_amp else [])]
    train_argv = [where, *common, *(["--only", *args.only] if args.only else [])]
    stages = train_stages(where, args.out, args.only, train_argv)
    stages.append(Stage("explain", [JobSpec(v, "explain", ("--variant", v, "--stimuli", args.stimuli,
                                                           "--composite", composite, "--target", target,
                                                           *common, "--launcher", "none"))
                                    for v in explained]))
    stages.append(Stage("evaluate", [JobSpec(evaluate.stem, "evaluate",
                                             (str(evaluate), *common, "--launcher", "none"))]))
    return stages


def _run_here(stages: Sequence[Stage]) -> int:
    """``--launcher none``: every job's command in this process, in order; stops at a failure."""
    for stage in stages:
        for job in stage.jobs:
            print(f"{stage.label}: python -m model {job.command} {' '.join(job.argv)}")
            code = int(importlib.import_module(COMMANDS[job.command][0]).main(list(job.argv)) or 0)
            if code:
                print(f"{stage.label}: {job.name} failed (exit {code}); the later stages did not run",
                      file=sys.stderr)
                return code
    return 0


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m model pipeline`` with ``argv`` (default: the command line); the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    options = options_from_args(args)
    if args.no_amp:
        set_amp(False)
    stages = pipeline_stages(args, argv)
    if options.launcher == "none":
        return _run_here(stages)
    return run_stages(stages, options, Path(args.out) / "jobs")
