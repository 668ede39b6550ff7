"""Run commands as jobs: one per variant, locally or on a SLURM cluster, through ``submitit``.

``python -m model train|explain|evaluate ... --launcher slurm --partition P --gpus-per-job 1
--time 4:00:00`` submits the command's work as a job array (``train``: one job per variant of
the grid, face-pretraining sources first and the variants that start from them after, with a
SLURM dependency; ``explain``: its variant; ``evaluate``: its config), shows the jobs' states
until they are done and exits non-zero, naming each failed job's log, when one fails.
``--launcher local`` runs the same jobs as local processes (submitit's local executor, at most
``--parallel`` at once); ``--launcher none`` (the default) runs in this process, as always.

A job runs ``python -m model <command> <the same arguments> --launcher none`` in the submitting
folder (:mod:`model.jobs` submits and watches them). Preempted or timed-out jobs are requeued by
submitit (a :class:`model.jobs.CommandJob` is ``Checkpointable``); a requeued ``train`` job resumes from the trainer's own checkpoint
(``<out>/models/.<variant>.resume/``), so it ends with the weights of an uninterrupted run.

Job files live in ``<out>/jobs/<stage>/`` (``train-face-sources``, ``train``, ``explain``,
``evaluate``): submitit's pickles and logs (``<job id>_0_log.out`` and ``.err``), ``<variant>.out``
and ``<variant>.err`` (links to each variant's logs) and ``jobs.tsv`` (variant, job id, state,
log paths), rewritten while the jobs run.

Examples
--------
>>> parse_time("4:00:00"), parse_time("1-00:00:00"), parse_time("90")
(240, 1440, 90)
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from stimuli.contracts.errors import InputError

from .config import expand_grid, load_grid, select_variants
from .device import set_amp
from .jobs import JobSpec, LaunchOptions, Stage, run_stages
from .variants import is_trained

__all__ = [
    "LAUNCHERS",
    "parse_time",
    "add_execution_arguments",
    "options_from_args",
    "jobs_folder",
    "train_stages",
    "dispatch",
]

LAUNCHERS = ("none", "local", "slurm")
_LAUNCH_FLAGS = {"--launcher", "--partition", "--gpus-per-job", "--cpus-per-job", "--mem-gb", "--time",
                 "--parallel", "--slurm-option", "--max-requeue"}


# ---------------------------------------------------------------------------- options

def parse_time(text: str) -> int:
    """A SLURM time limit (``MM``, ``H:MM:SS``, ``D-H:MM:SS``, ``D-H``) in whole minutes.

    Parameters
    ----------
    text : str
        The ``--time`` value.

    Returns
    -------
    int
        Minutes, rounded up (InputError when it is not a time or under a minute).
    """
    value = str(text).strip()
    try:
        days, _, clock = value.rpartition("-") if "-" in value else ("0", "", value)
        parts = [int(p) for p in clock.split(":")]
        if "-" in value:
            hours, minutes, seconds = (parts + [0, 0])[:3]
        elif len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        elif len(parts) == 3:
            hours, minutes, seconds = parts
        else:
            raise ValueError(value)
        total = int(days) * 1440 + hours * 60 + minutes + (seconds + 59) // 60
    except ValueError:
        raise InputError(f"--time: '{text}' is not a time limit (use minutes, H:MM:SS or D-H:MM:SS)") from None
    if total < 1 or min(int(days), hours, minutes, seconds) < 0:
        raise InputError(f"--time: '{text}' must be at least one minute")
    return total


def add_execution_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--no-amp`` and the ``--launcher`` options, shared by train, explain, evaluate and pipeline.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.

    Returns
    -------
    argparse.ArgumentParser
        The same parser.
    """
    parser.add_argument("--no-amp", action="store_true",
                        help="no automatic mixed precision on CUDA (float32 everywhere; the CPU always is)")
    group = parser.add_argument_group("jobs (submitit)")
    group.add_argument("--launcher", choices=LAUNCHERS, default="none",
                       help="none: run here (default); local: one local job per variant; slurm: one "
                            "SLURM array job per variant (logs in <out>/jobs/<command>/)")
    group.add_argument("--partition", help="SLURM partition")
    group.add_argument("--gpus-per-job", type=int, default=1, help="GPUs per SLURM job (default 1)")
    group.add_argument("--cpus-per-job", type=int, default=8, help="CPUs per SLURM job (default 8)")
    group.add_argument("--mem-gb", type=int, default=None, help="memory per SLURM job in GB (default: the partition's)")
    group.add_argument("--time", default="4:00:00", help="time limit per job, H:MM:SS (default 4:00:00)")
    group.add_argument("--parallel", type=int, default=None,
                       help="jobs running at once (local default 1, slurm default: no limit)")
    group.add_argument("--max-requeue", type=int, default=3,
                       help="times a preempted or timed-out job is requeued (default 3)")
    group.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                       help="an extra #SBATCH option, e.g. account=mylab or qos=high (repeatable)")
    return parser


def options_from_args(args: argparse.Namespace) -> LaunchOptions:
    """The launch options of parsed arguments; bad values are InputErrors.

    Parameters
    ----------
    args : argparse.Namespace
        Arguments parsed with :func:`add_execution_arguments`'s options.

    Returns
    -------
    LaunchOptions
        Where and with what the jobs run.
    """
    extra = {}
    for item in getattr(args, "slurm_option", []) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--slurm-option: '{item}' is not KEY=VALUE")
        extra[key.strip().replace("-", "_")] = value.strip()
    for name in ("gpus_per_job", "cpus_per_job", "max_requeue"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name.replace('_', '-')}: must be non-negative")
    if args.parallel is not None and args.parallel < 1:
        raise InputError("--parallel: must be at least 1")
    if args.launcher == "slurm" and not args.partition:
        raise InputError("--launcher slurm needs --partition (the SLURM partition to submit to)")
    return LaunchOptions(launcher=args.launcher, partition=args.partition, gpus_per_job=args.gpus_per_job,
                         cpus_per_job=args.cpus_per_job, mem_gb=args.mem_gb, time_min=parse_time(args.time),
                         parallel=args.parallel, max_requeue=args.max_requeue, slurm=extra)


# ---------------------------------------------------------------------------- the commands

def _job_argv(argv: Sequence[str], *extra: str) -> tuple[str, ...]:
    """The command's own arguments with the launch options dropped, plus ``extra``, run in place."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        flag = item.split("=", 1)[0]
        if flag in _LAUNCH_FLAGS:
            skip = "=" not in item
            continue
        out.append(item)
    return (*out, *extra)


def jobs_folder(results: str | os.PathLike, command: str) -> Path:
    """``<results>/jobs/<command>/``: files a command writes for its jobs (the pipeline's evaluate config).

    Parameters
    ----------
    results : str or os.PathLike
        The results root.
    command : str
        The command.

    Returns
    -------
    Path
        The folder (not created).
    """
    return Path(results) / "jobs" / command


def train_stages(config: str, results: str | os.PathLike, only: Sequence[str] | None,
                 argv: Sequence[str]) -> list[Stage]:
    """``train``: face-pretraining sources, then the other variants; finished variants left out.

    Parameters
    ----------
    config : str
        The grid YAML.
    results : str or os.PathLike
        The results root.
    only : sequence of str or None
        Only these variants.
    argv : sequence of str
        The command's arguments (each job gets them with ``--only <variant> --launcher none``).

    Returns
    -------
    list of Stage
        The face sources' stage and the other variants' stage.
    """
    variants = select_variants(expand_grid(load_grid(config), config), list(only or []), config)
    todo = [v for v in variants if not is_trained(v.variant, results)]
    for v in variants:
        if v not in todo:
            print(f"{v.variant}: done already, not submitted")
    sources = [v for v in todo if v.spec.is_face_source]
    others = [v for v in todo if not v.spec.is_face_source]
    make = lambda v: JobSpec(v.variant, "train", _job_argv(argv, "--only", v.variant, "--launcher", "none"))  # noqa: E731
    return [Stage("train face sources", [make(v) for v in sources]), Stage("train", [make(v) for v in others])]


def dispatch(command: str, args: argparse.Namespace, argv: Sequence[str]) -> int | None:
    """Apply ``--no-amp``; with ``--launcher local|slurm`` run the command as jobs.

    Parameters
    ----------
    command : {"train", "explain", "evaluate"}
        The command.
    args : argparse.Namespace
        Its parsed arguments.
    argv : sequence of str
        Its arguments as typed (the jobs' arguments are made from them).

    Returns
    -------
    int or None
        The jobs' exit code; None with ``--launcher none`` (the caller runs the command here).
    """
    if getattr(args, "no_amp", False):
        set_amp(False)
    if getattr(args, "launcher", "none") == "none":
        return None
    options = options_from_args(args)
    results = getattr(args, "out", "results")
    if command == "train":
        stages = train_stages(args.config, results, args.only, argv)
    elif command == "explain":
        stages = [Stage("explain", [JobSpec(args.variant, "explain", _job_argv(argv, "--launcher", "none"))])]
    elif command == "evaluate":
        stages = [Stage("evaluate", [JobSpec(Path(args.config).stem, "evaluate",
                                             _job_argv(argv, "--launcher", "none"))])]
    else:
        raise ValueError(f"no jobs for command '{command}'")
    if not any(stage.jobs for stage in stages):
        print("nothing to run")
        return 0
    return run_stages(stages, options, Path(results) / "jobs")
