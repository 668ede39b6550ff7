"""Jobs through ``submitit``: submit a stage of commands locally or as a SLURM array, watch them.

A :class:`Stage` holds :class:`JobSpec` s (one ``python -m model <command> ...`` each); a
:class:`CommandJob` is what a job runs (requeued on preemption, picking up the trainer's
checkpoint). :func:`run_stages` submits the stages in order (SLURM: all at once, each
``afterok`` the one before), shows their states (``jobs.tsv``, one status line) and names the
log of each failed job. The options are :class:`LaunchOptions` (:mod:`model.launch` reads
them from the command line).

Examples
--------
>>> dependency([])
>>> stage_folder(Path("jobs"), Stage("train face sources", [])).as_posix()
'jobs/train-face-sources'
"""

from __future__ import annotations

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

__all__ = [
    "LaunchOptions",
    "JobSpec",
    "Stage",
    "CommandJob",
    "executor_parameters",
    "make_executor",
    "dependency",
    "submit_stage",
    "watch",
    "stage_folder",
    "run_stages",
]


@dataclass(frozen=True)
class LaunchOptions:
    """Where and with what the jobs run (``--launcher`` and the cluster options).

    Parameters
    ----------
    launcher : {"none", "local", "slurm"}
        Where the jobs run.
    partition : str, optional
        SLURM partition.
    gpus_per_job, cpus_per_job : int
        Resources of one job.
    mem_gb : int, optional
        Memory of one SLURM job (default: the partition's).
    time_min : int
        Time limit of one job in minutes.
    parallel : int, optional
        Jobs at once (slurm array parallelism; local default 1).
    max_requeue : int
        Preemptions or timeouts a job may be requeued after.
    slurm : dict of str to str
        Extra ``#SBATCH`` options (account, qos, ...).
    poll_s : float
        Seconds between state checks (0: 1 s local, 30 s slurm).
    """

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


@dataclass(frozen=True)
class JobSpec:
    """One job: ``python -m model <command> <argv>``, named after its variant (or config).

    Parameters
    ----------
    name : str
        The job's name (its log links are ``<name>.out|.err``).
    command : str
        A verb of ``python -m model``.
    argv : tuple of str
        Its arguments.
    """

    name: str
    command: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    """Jobs that may run at once; a stage starts when the one before it has succeeded.

    Parameters
    ----------
    label : str
        The stage's name (its folder is the label with dashes).
    jobs : list of JobSpec
        Its jobs.
    """

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

    Parameters
    ----------
    command : str
        A verb of ``python -m model``.
    argv : sequence of str
        Its arguments.
    cwd : str or os.PathLike, optional
        Where it runs (default: the submitting folder).
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
    """``AutoExecutor.update_parameters`` keywords of one stage (slurm-prefixed ones only act there).

    Parameters
    ----------
    options : LaunchOptions
        The launch options.
    name : str
        The jobs' name.
    after : str, optional
        A SLURM dependency (``afterok:...``).
    array_size : int
        Jobs in the stage (the default array parallelism).

    Returns
    -------
    dict
        The keywords.
    """
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
    """A configured ``submitit.AutoExecutor`` for ``options.launcher`` (local or slurm).

    Parameters
    ----------
    options : LaunchOptions
        The launch options (no sbatch for slurm, or no submitit, is an InputError).
    folder : Path
        submitit's folder (pickles and logs).
    **params
        :func:`executor_parameters`'s keywords.

    Returns
    -------
    submitit.AutoExecutor
        The executor.
    """
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
    """``afterok:A:B`` over the arrays of ``jobs`` (an array's id covers all its tasks).

    Parameters
    ----------
    jobs : sequence of submitit.Job
        The jobs to wait for.

    Returns
    -------
    str or None
        The dependency; None for no jobs.
    """
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
    """Submit a stage's jobs as one array (slurm) or as local processes.

    Parameters
    ----------
    stage : Stage
        The jobs.
    options : LaunchOptions
        The launch options.
    folder : Path
        The stage's folder (logs, links, ``jobs.tsv``).
    after : str, optional
        A SLURM dependency.

    Returns
    -------
    list of submitit.Job
        The submitted jobs.
    """
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
    """Show the jobs' states (one status line) until all are done, rewriting ``jobs.tsv``.

    Parameters
    ----------
    jobs : sequence of submitit.Job
        The jobs.
    names : sequence of str
        Their names.
    folder : Path
        Where ``jobs.tsv`` is written.
    poll_s : float
        Seconds between checks.
    desc : str
        The status line's label.
    progress : bool
        Show the status line.

    Returns
    -------
    list of str
        Each job's final state (SLURM's names).
    """
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
    """``<root>/<stage label with dashes>``: one submitit folder per stage.

    Parameters
    ----------
    root : Path
        The jobs folder, one subfolder per stage.
    stage : Stage
        The stage; its label names the folder.

    Returns
    -------
    Path
        Its folder.
    """
    return Path(root) / stage.label.replace(" ", "-")


def run_stages(stages: Sequence[Stage], options: LaunchOptions, root: Path, *, progress: bool = True) -> int:
    """Submit and watch the stages in order (files in ``<root>/<stage>/``).

    slurm: every stage is submitted at once, each after the one before (``afterok``), then
    watched; a failed stage cancels the later ones. local: a stage is submitted when the one
    before has succeeded, ``--parallel`` jobs at a time (default 1).

    Parameters
    ----------
    stages : sequence of Stage
        The stages (empty ones are skipped).
    options : LaunchOptions
        The launch options.
    root : Path
        The jobs folder.
    progress : bool
        Show status lines.

    Returns
    -------
    int
        0 when every job succeeded, else 1 (each failed job named with its log).
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
