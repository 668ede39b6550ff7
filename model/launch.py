"""Run commands as jobs: one per variant, locally or on a SLURM cluster, through ``submitit``.

``python -m model train|explain|evaluate ... --launcher slurm --partition P --gpus-per-job 1
--time 4:00:00`` submits the command's work as a job array (``train``: one job per variant of
the grid, face-pretraining sources first and the variants that start from them after, with a
SLURM dependency; ``explain``: its variant; ``evaluate``: its config), shows the jobs' states
until they are done and exits non-zero, naming each failed job's log, when one fails.
``--launcher local`` runs the same jobs as local processes (submitit's local executor, at most
``--parallel`` at once); ``--launcher none`` (the default) runs in this process, as always.

A job runs ``python -m model <command> <the same arguments> --launcher none`` in the submitting
folder. Preempted or timed-out jobs are requeued by submitit (a :class:`CommandJob` is
``Checkpointable``); a requeued ``train`` job resumes from the trainer's own checkpoint
(``<out>/models/.<variant>.resume/``), so it ends with the weights of an uninterrupted run.

Job files live in ``<out>/jobs/<stage>/`` (``train-face-sources``, ``train``, ``explain``,
``evaluate``): submitit's pickles and logs (``<job id>_0_log.out`` and ``.err``), ``<variant>.out``
and ``<variant>.err`` (links to each variant's logs) and ``jobs.tsv`` (variant, job id, state,
log paths), rewritten while the jobs run.

Examples
--------
>>> parse_time("4:00:00"), parse_time("1-00:00:00"), parse_time("90")
(240, 1440, 90)
>>> dependency([]) is None
True
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import atomic_write_text

from .__main__ import COMMANDS
from .config import expand_grid, load_grid, select_variants
from .device import set_amp
from .variants import is_trained

__all__ = [
    "LAUNCHERS",
    "LaunchOptions",
    "JobSpec",
    "Stage",
    "CommandJob",
    "parse_time",
    "add_execution_arguments",
    "options_from_args",
    "executor_parameters",
    "make_executor",
    "dependency",
    "submit_stage",
    "watch",
    "stage_folder",
    "run_stages",
    "jobs_folder",
    "train_stages",
    "dispatch",
]

LAUNCHERS = ("none", "local", "slurm")
_LAUNCH_FLAGS = {"--launcher", "--partition", "--gpus-per-job", "--cpus-per-job", "--mem-gb", "--time",
                 "--parallel", "--slurm-option", "--max-requeue"}


# ---------------------------------------------------------------------------- options

def parse_time(text: str) -> int:
    """A SLURM time limit (``MM``, ``H:MM:SS``, ``D-H:MM:SS``, ``D-H``) in whole minutes."""
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


@dataclass(frozen=True)
class LaunchOptions:
    """Where and with what the jobs run (``--launcher`` and the cluster options)."""

    launcher: str = "none"
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    mem_gb: int | None = None
    time_min: int = 240
    parallel: int | None = None  # jobs at once: slurm array parallelism; local default 1
    max_requeue: int = 3  # preemptions/timeouts a job may be requeued after
    slurm: dict[str, str] = field(default_factory=dict)  # extra #SBATCH options (account, qos, ...)
    poll_s: float = 0.0  # seconds between state checks (0: 1 s local, 30 s slurm)


def add_execution_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--no-amp`` and the ``--launcher`` options, shared by train, explain, evaluate and pipeline."""
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
    """The launch options of parsed arguments; bad values are InputErrors."""
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


# ---------------------------------------------------------------------------- jobs

@dataclass(frozen=True)
class JobSpec:
    """One job: ``python -m model <command> <argv>``, named after its variant (or config)."""

    name: str
    command: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    """Jobs that may run at once; a stage starts when the one before it has succeeded."""

    label: str
    jobs: list[JobSpec]


try:  # submitit is the optional 'cluster' extra; without it only --launcher none runs
    from submitit.helpers import Checkpointable as _JobBase
except ImportError:  # pragma: no cover
    _JobBase = object  # type: ignore[assignment,misc]


class CommandJob(_JobBase):
    """The callable a job runs: one model command, in the folder it was submitted from.

    On preemption or timeout submitit calls :meth:`checkpoint` and requeues what it returns:
    the same command, which picks up the trainer's checkpoint file (a train job resumes after
    its last saved epoch; finished variants are skipped).
    """

    def __init__(self, command: str, argv: Sequence[str], cwd: str | os.PathLike | None = None) -> None:
        self.command, self.argv = command, list(argv)
        self.cwd = str(cwd or os.getcwd())

    def __call__(self) -> int:
        os.chdir(self.cwd)
        module = importlib.import_module(COMMANDS[self.command][0])
        main = getattr(module.main, "__wrapped__", module.main)  # an InputError fails the job, message kept
        code = int(main(self.argv) or 0)
        if code:
            raise RuntimeError(f"python -m model {self.command} {' '.join(self.argv)} exited with {code}")
        return code

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit  # lazy: submitit is the optional 'cluster' extra

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"CommandJob(python -m model {self.command} {' '.join(self.argv)})"


def executor_parameters(options: LaunchOptions, *, name: str, after: str | None = None,
                        array_size: int = 1) -> dict[str, Any]:
    """``AutoExecutor.update_parameters`` keywords of one stage (slurm-prefixed ones only act there)."""
    params: dict[str, Any] = {"name": name, "timeout_min": options.time_min}
    if options.launcher == "slurm":
        additional = dict(options.slurm)
        if after:
            additional["dependency"] = after
            additional.setdefault("kill_on_invalid_dep", "yes")  # a failed dependency cancels, never hangs
        params.update(slurm_partition=options.partition, gpus_per_node=options.gpus_per_job,
                      cpus_per_task=options.cpus_per_job, slurm_array_parallelism=options.parallel or max(array_size, 1))
        if options.mem_gb:
            params["mem_gb"] = options.mem_gb
        if additional:
            params["slurm_additional_parameters"] = additional
    elif options.launcher == "local":
        params["gpus_per_node"] = min(options.gpus_per_job, _cuda_count())
    return params


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def make_executor(options: LaunchOptions, folder: Path, **params: Any):
    """A configured ``submitit.AutoExecutor`` for ``options.launcher`` (local or slurm)."""
    try:
        import submitit  # lazy: submitit is the optional 'cluster' extra
    except ImportError:
        raise InputError(f"--launcher {options.launcher} needs submitit: pip install '.[cluster]'") from None

    if options.launcher not in ("local", "slurm"):
        raise ValueError(f"no executor for launcher '{options.launcher}'")
    if options.launcher == "slurm" and shutil.which("sbatch") is None:  # before any folder is made
        raise InputError("--launcher slurm: no 'sbatch' on this machine; submit from a SLURM login node "
                         "(or use --launcher local)")
    folder.mkdir(parents=True, exist_ok=True)
    kwargs = {"slurm_max_num_timeout": options.max_requeue} if options.launcher == "slurm" else {}
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=options.launcher, **kwargs)
    except RuntimeError as error:  # no sbatch/srun here
        raise InputError(f"--launcher {options.launcher}: {error}") from None
    executor.update_parameters(**params)
    return executor


def dependency(jobs: Sequence[Any]) -> str | None:
    """``afterok:A:B`` over the arrays of ``jobs`` (an array's id covers all its tasks)."""
    ids = sorted({str(job.job_id).split("_")[0] for job in jobs}, key=lambda i: (len(i), i))
    return "afterok:" + ":".join(ids) if ids else None


def _link_logs(folder: Path, spec: JobSpec, job: Any) -> None:
    """``<folder>/<name>.out|.err``: links to the job's logs (made before the logs exist)."""
    for suffix, target in ((".out", job.paths.stdout), (".err", job.paths.stderr)):
        link = folder / f"{spec.name}{suffix}"
        if link.is_symlink() or link.exists():
            link.unlink()
        try:
            link.symlink_to(Path(target).name if Path(target).parent == folder else target)
        except OSError:  # a file system without links: jobs.tsv still names the logs
            pass


def submit_stage(stage: Stage, options: LaunchOptions, folder: Path, *, after: str | None = None) -> list[Any]:
    """Submit a stage's jobs as one array (slurm) or as local processes; returns submitit jobs."""
    params = executor_parameters(options, name=f"model-{stage.label}", after=after, array_size=len(stage.jobs))
    executor = make_executor(options, folder, **params)
    cwd = os.getcwd()
    calls = [CommandJob(spec.command, spec.argv, cwd) for spec in stage.jobs]
    with executor.batch():
        jobs = [executor.submit(call) for call in calls]
    for spec, job in zip(stage.jobs, jobs):
        _link_logs(folder, spec, job)
    return jobs


def _state(job: Any) -> str:
    """SLURM's state names for local jobs too (a finished local job that raised is FAILED)."""
    state = str(job.state).upper()
    if state in ("FINISHED", "INTERRUPTED", "NO PROCESS AND NO RESULT"):
        return "FAILED" if state != "FINISHED" or job.exception() is not None else "COMPLETED"
    return state.split()[0] if state else "UNKNOWN"


def _write_table(folder: Path, names: Sequence[str], jobs: Sequence[Any], states: Sequence[str]) -> None:
    lines = ["name\tjob_id\tstate\tstdout\tstderr"]
    lines += [f"{n}\t{j.job_id}\t{s}\t{j.paths.stdout}\t{j.paths.stderr}" for n, j, s in zip(names, jobs, states)]
    table = folder / "jobs.tsv"
    old = table.read_text().splitlines()[1:] if table.is_file() else []
    keep = [row for row in old if row.split("\t")[0] not in set(names)]
    atomic_write_text(table, "\n".join([lines[0], *keep, *lines[1:]]) + "\n")


_DONE = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
         "DEADLINE", "UNKNOWN")


def watch(jobs: Sequence[Any], names: Sequence[str], folder: Path, *, poll_s: float = 1.0,
          desc: str = "jobs", progress: bool = True) -> list[str]:
    """Show the jobs' states (one status line) until all are done; returns their final states."""
    states = ["SUBMITTED"] * len(jobs)
    bar = tqdm(total=len(jobs), desc=desc, unit="job", disable=not progress, file=sys.stdout)
    try:
        while True:
            for i, job in enumerate(jobs):
                if states[i] not in _DONE:
                    states[i] = _state(job) if job.done() else (str(job.state).upper().split() or ["UNKNOWN"])[0]
            finished = sum(s in _DONE for s in states)
            bar.update(finished - bar.n)
            counts: dict[str, int] = {}
            for s in states:
                counts[s] = counts.get(s, 0) + 1
            bar.set_postfix_str(", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())))
            _write_table(folder, names, jobs, states)
            if finished == len(jobs):
                return states
            time.sleep(poll_s)
    finally:
        bar.close()


def _error_line(error: BaseException | None) -> str:
    """The message of the exception a job's traceback ends in (e.g. an InputError's one line)."""
    if error is None:
        return ""
    found = re.findall(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Interrupt)): (.+)$", str(error), flags=re.M)
    if found:
        return f"{found[-1][0]}: {found[-1][1]}"
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def _failure_lines(jobs: Sequence[Any], names: Sequence[str], states: Sequence[str], folder: Path) -> list[str]:
    lines = []
    for name, job, state in zip(names, jobs, states):
        if state == "COMPLETED":
            continue
        last = _error_line(job.exception()) if job.done() else ""
        lines.append(f"{name}: job {job.job_id} {state}{': ' + last if last else ''} "
                     f"(log {folder / (name + '.err')})")
    return lines


def stage_folder(root: Path, stage: Stage) -> Path:
    """``<root>/<stage label with dashes>``: one submitit folder per stage."""
    return Path(root) / stage.label.replace(" ", "-")


def run_stages(stages: Sequence[Stage], options: LaunchOptions, root: Path, *, progress: bool = True) -> int:
    """Submit and watch the stages in order (files in ``<root>/<stage>/``); 0 when every job succeeded.

    slurm: every stage is submitted at once, each after the one before (``afterok``), then
    watched; a failed stage cancels the later ones. local: a stage is submitted when the one
    before has succeeded, ``--parallel`` jobs at a time (default 1).
    """
    stages = [s for s in stages if s.jobs]
    poll = options.poll_s or (30.0 if options.launcher == "slurm" else 1.0)
    submitted: list[tuple[Stage, list[Any]]] = []
    if options.launcher == "slurm":
        previous: list[Any] = []
        for stage in stages:
            jobs = submit_stage(stage, options, stage_folder(root, stage), after=dependency(previous))
            print(f"{stage.label}: submitted {len(jobs)} job(s) ({', '.join(str(j.job_id) for j in jobs[:3])}"
                  f"{' ...' if len(jobs) > 3 else ''}); logs in {stage_folder(root, stage)}")
            submitted.append((stage, jobs))
            previous = jobs
    for index, stage in enumerate(stages):
        names = [spec.name for spec in stage.jobs]
        folder = stage_folder(root, stage)
        if options.launcher == "slurm":
            jobs = submitted[index][1]
            states = watch(jobs, names, folder, poll_s=poll, desc=stage.label, progress=progress)
        else:
            jobs, states = [], []
            wave = options.parallel or 1
            for start in range(0, len(stage.jobs), wave):
                part = Stage(stage.label, stage.jobs[start:start + wave])
                new = submit_stage(part, options, folder)
                jobs += new
                states.extend(watch(new, [s.name for s in part.jobs], folder, poll_s=poll,
                                    desc=f"{stage.label} {start + 1}-{start + len(part.jobs)}/{len(stage.jobs)}",
                                    progress=progress))
        failed = _failure_lines(jobs, names, states, folder)
        if failed:
            for line in failed:
                print(line, file=sys.stderr)
            for _, later in submitted[index + 1:]:
                for job in later:
                    job.cancel(check=False)
            rest = [s.label for s in stages[index + 1:]]
            print(f"{stage.label}: {len(failed)} of {len(jobs)} job(s) failed"
                  f"{'; not run: ' + ', '.join(rest) if rest else ''}", file=sys.stderr)
            return 1
        print(f"{stage.label}: {len(jobs)} job(s) completed (logs in {folder})")
    return 0


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
    """``<results>/jobs/<command>/``: files a command writes for its jobs (the pipeline's evaluate config)."""
    return Path(results) / "jobs" / command


def train_stages(config: str, results: str | os.PathLike, only: Sequence[str] | None,
                 argv: Sequence[str]) -> list[Stage]:
    """``train``: face-pretraining sources, then the other variants; finished variants left out."""
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
    """Apply ``--no-amp``; with ``--launcher local|slurm`` run the command as jobs and return
    its exit code, else None (the caller runs it in this process)."""
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
