"""The session engine: runs any task plugin with any observer into one trial-file format.

:func:`run_session` runs any task plugin (:mod:`experiments.task`) with any observer: it
loads and checks everything first (config, stimulus set, relevance maps, model, existing
session) so that bad input fails with one line before a window opens or a file is written;
then it creates the session files (or reopens them with ``resume``), and runs the
remaining trials of the up-front sequence, appending each finished trial to the trial file.
Its command line is ``python -m experiments run`` (:mod:`experiments.run`).

Importing the engine registers the built-in paradigms (:mod:`experiments.bubbles`,
:mod:`experiments.similarity`) in :data:`experiments.paradigms.PARADIGMS`.

Examples
--------
>>> from experiments.engine import run_session                             # doctest: +SKIP
>>> run_session("experiments/bubbles_gender.yaml", "tmpl1", 1, observer="template:eyes",
...             seed=3)                                                    # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from stimuli.contracts.config import from_dict, to_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.names import NAME_RULE, is_name
from stimuli.contracts.provenance import Provenance, file_sha256, git_commit, package_versions
from stimuli.contracts.set_hash import CONTENT_HASH_KEY, set_record_mismatch
from stimuli.contracts.trials import SESSION_PROVENANCE_KEY, check_trials

from . import bubbles, similarity  # noqa: F401  (importing them registers the paradigms)
from .bids import ensure_dataset, task_keys
from .config import check_seed, load_experiment
from .frames import FrameLog
from .observers import Observer, make_observer, parse_observer
from .paradigms import PARADIGMS
from .participant import check_participant_fields
from .sequence import new_seed
from .session import SessionFiles, format_value, read_participants, update_participants
from .task import NA, QuitRequested, Task, one_blas_thread

__all__ = ["DEFAULT_ROOTS", "SessionResult", "check_data_root", "load_task", "run_session"]

DEFAULT_ROOTS = {"human": "participants", "simulated": os.path.join("results", "simulated")}
_LEVELS = {
    "phase": {"practice": "practice trials (fixed number of bubbles, no staircase)", "main": "main trials"},
    "correct": {"1": "correct", "0": "incorrect or no answer"},
}
_UNITS = {"rt_s": "s", "onset_s": "s", "sigma_px": "pixel", "intensity": "log10(number of bubbles)"}
# keys of the config that may change between a session's start and its resume
_MUTABLE_ON_RESUME = ("text", "description")


@dataclass(frozen=True)
class SessionResult:
    """How a session ended: where its trials went and how many were done.

    Parameters
    ----------
    path : Path
        The trial file (``*_beh.tsv``).
    status : str
        ``complete`` or ``stopped`` (the quit key: incomplete, resumable).
    trials_done, trials_planned : int
        Trials in the file, trials in the session's sequence.
    seed : int
        The session seed (recorded in the sidecar).
    """

    path: Path
    status: str  # complete | stopped
    trials_done: int
    trials_planned: int
    seed: int


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def load_task(config_path: str | os.PathLike, results: str | os.PathLike = "results") -> Task:
    """Load an experiment YAML and build its task (checks the stimulus set and relevance maps).

    Parameters
    ----------
    config_path : str or os.PathLike
        The experiment YAML.
    results : str or os.PathLike
        The results root holding prepared sets and relevance maps.

    Returns
    -------
    Task
        The paradigm's task (:data:`experiments.paradigms.PARADIGMS`), checked against its inputs.
    """
    config = load_experiment(config_path)
    task_class = PARADIGMS[config.paradigm]
    return task_class(config, results=str(results), config_path=str(config_path))


def _describe_columns(task: Task) -> dict[str, Any]:
    described = {}
    for column, text in task.columns().items():
        entry: dict[str, Any] = {"Description": text}
        levels = task.levels().get(column, _LEVELS.get(column))
        if levels:
            entry["Levels"] = levels
        if column in _UNITS:
            entry["Units"] = _UNITS[column]
        described[column] = entry
    return described


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _MUTABLE_ON_RESUME}


def _with_defaults(recorded: Any, task: Task, where: str) -> Any:
    """A recorded config with the keys added since it was written filled in at their defaults
    (a session started before a new setting existed still resumes); as it was if it no longer loads."""
    if not isinstance(recorded, dict):
        return recorded
    try:
        return to_dict(from_dict(type(task.config), recorded, where))
    except (InputError, TypeError, ValueError):
        return recorded


def _check_resume(files: SessionFiles, sidecar: dict[str, Any], task: Task, spec: str,
                  seed: int | None) -> int:
    recorded = _with_defaults(sidecar.get("ExperimentConfig"), task, str(files.sidecar_path))
    current = to_dict(task.config)
    if not isinstance(recorded, dict) or _comparable(recorded) != _comparable(current):
        changed = sorted(k for k in set(current) | set(recorded or {})
                         if k not in _MUTABLE_ON_RESUME and (recorded or {}).get(k) != current.get(k))
        raise InputError(f"{task.config_path}: differs from the config this session started with "
                         f"(key '{changed[0] if changed else '?'}'); resume with the original config")
    was = sidecar.get("Observer", {}).get("spec")
    if was != spec:
        raise InputError(f"{files.path}: the session was run by observer '{was}', not '{spec}'; "
                         f"resume with --observer {was}")
    recorded_seed = sidecar.get("Seed")
    if not isinstance(recorded_seed, int):
        raise InputError(f"{files.sidecar_path}: no 'Seed' recorded; cannot rebuild the sequence")
    if seed is not None and seed != recorded_seed:
        raise InputError(f"--seed {seed}: this session's seed is {recorded_seed}; leave --seed out to resume")
    # the rest of the session must show the very stimuli its start showed (same pixels, same grid)
    prepared, record = getattr(task, "set", None), sidecar.get("StimulusSet")
    mismatch = set_record_mismatch(record, prepared) if prepared is not None else None
    if mismatch:
        raise InputError(f"{files.path}: cannot resume: {mismatch}; restore the set the session started "
                         "with, or start a new --session")
    if prepared is not None and not (record or {}).get(CONTENT_HASH_KEY):
        print(f"warning: {files.sidecar_path}: no content hash of its stimulus set recorded (an older "
              "session); only the set's name, grid and manifest were checked", file=sys.stderr)
    return recorded_seed


def _participant_info(given: dict[str, Any] | None, spec: str, human: bool) -> dict[str, Any]:
    """The participants.tsv row's values, checked now (a tab or newline in one is one line)."""
    info = {"age": NA, "sex": NA, "handedness": NA, **(given or {})}
    if not human:
        info = {**info, "observer": spec}
    for key, value in info.items():
        if not is_name(str(key)):
            raise InputError(f"participants.tsv column {str(key)[:40]!r} must be {NAME_RULE}")
        try:
            format_value(value)
        except ValueError:
            raise InputError(f"--{key} {str(value)[:40]!r}: a participants.tsv value cannot hold tabs or "
                             "newlines") from None
    return info


def check_data_root(root: Path) -> None:
    """Refuse a data root that is (or lies inside) a file, before anything is created.

    Parameters
    ----------
    root : Path
        The data root a session would write under.

    Raises
    ------
    InputError
        One line naming the file in the way.
    """
    for folder in (root, *root.parents):
        if folder.exists():
            if not folder.is_dir():
                raise InputError(f"--data-root {root}: {folder} is a file, not a folder")
            return


def _check_done(files: SessionFiles, done: pd.DataFrame, plan: list[dict[str, Any]], task: Task) -> None:
    columns = list(task.columns())
    if files.columns != columns:
        raise InputError(f"{files.path}: its columns differ from the task's; it was not written by this task")
    # malformed numbers, trial numbers not 1..n (duplicated or reordered rows), 'correct' against the answers
    check_trials(done, files.path)
    if len(done) > len(plan):
        raise InputError(f"{files.path}: holds {len(done)} trials, the sequence has {len(plan)}")
    for column in task.planned_columns():
        for i, value in enumerate(done[column]):
            if value != format_value(plan[i][column]):
                raise InputError(f"{files.path}, line {i + 2}: column '{column}' is {value!r} but the "
                                 f"sequence from the recorded seed says {format_value(plan[i][column])!r}")


def _screen_keys(described: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's ``ScreenCheck`` (the screen compared with the YAML) and ``KeysBackend``: null
    for observers without a screen."""
    return {"ScreenCheck": (described.get("screen") or {}).get("check"), "KeysBackend": described.get("keys_backend")}


def _open_display(task: Task, **options: Any) -> Observer:
    try:
        from .display import Display  # lazy: the one module that imports psychopy (people only)
    except ImportError as error:
        raise InputError(f"cannot start the PsychoPy display ({error}); install it with "
                         "pip install '.[experiment]'") from None
    except Exception as error:  # pyglet cannot reach a screen at import time
        raise InputError(f"cannot start the PsychoPy display ({type(error).__name__}: {error}); "
                         "is a screen attached (DISPLAY set)?") from None
    return Display(task, **options)


def _text(template: str, **values: Any) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def run_session(
    config_path: str | os.PathLike,
    participant: str,
    session: str | int,
    *,
    observer: str | Observer = "human",
    data_root: str | os.PathLike | None = None,
    results: str | os.PathLike = "results",
    resume: bool = False,
    seed: int | None = None,
    windowed: bool = False,
    progress: bool | None = None,
    participant_info: dict[str, Any] | None = None,
    capture: str | os.PathLike | None = None,
    command: list[str] | None = None,
    allow_screen_mismatch: bool = False,
) -> SessionResult:
    """Run (or resume) one session; returns where the trials went and how it ended.

    Parameters
    ----------
    config_path : str or os.PathLike
        The experiment YAML.
    participant, session : str
        BIDS labels (letters and digits) of the session.
    observer : str or Observer
        Who answers (see below).
    data_root : str or os.PathLike, optional
        Where trial files go (default: :data:`DEFAULT_ROOTS`, people or simulated).
    results : str or os.PathLike
        The results root holding prepared sets, relevance maps and models.
    resume : bool
        Continue an unfinished session at its first unanswered trial.
    seed : int, optional
        Session seed (default: the config's, else a fresh one; recorded in the sidecar).
    windowed, capture, allow_screen_mismatch
        PsychoPy display options (people only).
    progress : bool, optional
        Show a progress bar (default: for screenless observers).
    participant_info : dict, optional
        participants.tsv values (age, sex, handedness).
    command : list of str, optional
        The command line recorded in provenance (default: ``sys.argv``).

    Returns
    -------
    SessionResult
        The trial file, ``complete`` or ``stopped``, and the trials done.

    Notes
    -----
    ``observer`` is ``human`` (the PsychoPy display), ``template[:REGION]``,
    ``model:VARIANT`` or an :class:`~experiments.observers.Observer` instance (its ``kind``
    names it in the sidecar). Everything is checked before the window opens or a file is
    written; an existing session is refused unless ``resume``. The PsychoPy display checks the
    window against the YAML's screen and refuses a mismatch unless ``allow_screen_mismatch``.
    """
    check_seed(seed, "--seed")
    task = load_task(config_path, results)
    if isinstance(observer, Observer):
        spec, kind = observer.kind, "custom"
    else:
        spec = str(observer)
        kind = parse_observer(spec, task.observer_forms or None)[0]
    human = kind == "human"
    root = Path(data_root if data_root is not None else DEFAULT_ROOTS["human" if human else "simulated"])
    check_data_root(root)
    files = SessionFiles(root, participant, session, task.label)
    info = _participant_info(participant_info, spec, human)
    # the dialog's rules for callers that skip main(): participants.tsv stays valid BIDS (age a number)
    check_participant_fields({k: v for k, v in info.items() if k in ("age", "sex", "handedness")})
    read_participants(root)  # a damaged participants.tsv stops us here, before the session exists

    torn = b""
    if files.exists():
        if not resume:
            raise InputError(f"{files.path}: this session exists already; add --resume to continue it "
                             "or choose another --session (nothing was changed)")
        files.lock()  # lock, then look: nothing is read or cut without the session's lock
        try:
            sidecar = files.read_sidecar()
            seed = _check_resume(files, sidecar, task, spec, seed)
            done, torn = files.read()
            plan = task.plan(seed)
            _check_done(files, done, plan, task)
            if len(done) == len(plan):
                raise InputError(f"{files.path}: this session is complete ({len(plan)} trials); nothing to resume")
        except BaseException:
            files.close()
            raise
    else:
        if resume:
            raise InputError(f"{files.path}: no such session to resume (leave out --resume to start it)")
        sidecar = None
        seed = int(seed if seed is not None else task.config.seed if task.config.seed is not None else new_seed())
        done = pd.DataFrame(columns=list(task.columns()))
        plan = task.plan(seed)
    try:
        task.restore(done.replace(NA, np.nan))
        # every check is done: from here on, windows open and files are written
        origin = time.time() if sidecar is None else sidecar["Session"].get("started_unix")
        answerer = _answerer(observer, task, spec, human, seed=seed, results=results, windowed=windowed,
                             capture=capture, origin=origin, allow_screen_mismatch=allow_screen_mismatch)
    except BaseException:
        files.close()
        raise
    try:
        return _run(task, answerer, files, plan, done, torn, sidecar, spec=spec, seed=seed, origin=origin,
                    root=root, config_path=config_path, progress=progress, human=human,
                    participant_info=info, command=command)
    finally:
        try:
            answerer.close()
        finally:
            files.close()  # the lock goes last, after the final sidecar and provenance


def _answerer(observer: str | Observer, task: Task, spec: str, human: bool, *, seed: int,
              results: str | os.PathLike, windowed: bool, capture: str | os.PathLike | None,
              origin: float | None, allow_screen_mismatch: bool = False) -> Observer:
    """The observer that answers: the given instance, the PsychoPy display, or a simulated one."""
    if isinstance(observer, Observer):
        return observer
    if human:
        return _open_display(task, windowed=windowed, capture=capture, origin_unix=origin,
                             allow_screen_mismatch=allow_screen_mismatch)
    return make_observer(spec, task, seed=seed, results=str(results))


def _run(task: Task, answerer: Observer, files: SessionFiles, plan: list[dict[str, Any]], done: pd.DataFrame,
         torn: bytes, sidecar: dict[str, Any] | None, *, spec: str, seed: int, origin: float | None, human: bool,
         root: Path, config_path: str | os.PathLike, progress: bool | None,
         participant_info: dict[str, Any] | None, command: list[str] | None) -> SessionResult:
    """Create or reopen the session files and run the remaining trials (the answerer is open)."""
    started = _now()
    n_done = len(done)
    provenance = Provenance(command=command, config=to_dict(task.config), seeds={"session": seed},
                            inputs=[config_path, *task.inputs()])
    ensure_dataset(root, simulated=not human, columns=read_participants(root)[0])
    texts = task.config.text
    bids_keys = task_keys(task, _text(texts.instructions, keys=task.key_help()))
    if sidecar is None:
        sidecar = {
            **_describe_columns(task),
            **bids_keys,
            "Paradigm": task.paradigm,
            "ExperimentConfig": to_dict(task.config),
            "ConfigFile": str(config_path),
            "ConfigSha256": file_sha256(config_path),
            "Seed": seed,
            "Observer": {**answerer.describe(), "spec": spec},
            "Screen": answerer.describe().get("screen"),
            **_screen_keys(answerer.describe()),
            "Software": package_versions(),
            "GitCommit": git_commit(),
            **task.sidecar(),
            "Session": {"participant": files.participant, "session": files.session, "started": started,
                        "started_unix": origin, "status": "running", "trials_planned": len(plan),
                        "resumes": []},
            SESSION_PROVENANCE_KEY: _provenance_record(provenance, "running", n_done, files),
        }
        files.create(list(task.columns()), sidecar)
    else:
        sidecar["Session"]["resumes"].append({
            "time": started, "at_trial": n_done + 1, "command": command if command is not None else sys.argv,
            "software": package_versions(), "git_commit": git_commit(),
            "screen": answerer.describe().get("screen"),
            "torn_line_dropped": torn.decode("utf-8", errors="replace") or None,
        })
        sidecar["Session"]["status"] = "running"
        for key, value in bids_keys.items():  # a session begun before the sidecar had them
            sidecar.setdefault(key, value)
        files.reopen(torn)
        files.write_sidecar(sidecar)
    status = "crashed"
    bar = tqdm(total=len(plan), initial=n_done, desc=f"sub-{files.participant} ses-{files.session}",
               unit="trial", disable=human if progress is None else not progress)
    texts = task.config.text
    frames = FrameLog(files.path, sidecar)  # the display's frame intervals (*_events.tsv)
    n_blocks = len({r["block"] for r in plan if r["phase"] == "main"})
    listed = False  # participants.tsv gets the row once a trial is answered (never for an empty session)
    try:
        answerer.message(_text(texts.instructions, keys=task.key_help()))
        if n_done == 0:
            answerer.familiarise(task.familiarisation())
        previous = plan[n_done - 1] if n_done else None
        for group in task.groups(plan[n_done:], batch=answerer.batch):
            first = group[0]
            if previous is not None and first["block"] != previous["block"]:
                if previous["phase"] == "practice":
                    answerer.message(_text(texts.practice_end, keys=task.key_help()))
                else:
                    answerer.message(_text(texts.block_break, done=previous["block"], blocks=n_blocks,
                                           keys=task.key_help()))
            with one_blas_thread():
                trials = [task.prepare(row) for row in group]
            for trial, response in zip(trials, answerer.respond(trials)):
                row = task.record(trial, response)
                files.append(row)
                n_done += 1
                frames.append(row["trial"], response.extra.get("frames"))
                bar.update()
                if not listed:
                    update_participants(root, files.participant, participant_info or {})
                    listed = True
            previous = group[-1]
        status = "complete"
        answerer.message(texts.end, wait=False)
    except QuitRequested:
        status = "stopped"
        answerer.message(texts.quit, wait=False)
    except BaseException as error:  # recorded, then raised: the rows on disk are complete
        sidecar["Session"]["error"] = f"{type(error).__name__}: {error}"[:500]
        raise
    finally:  # still under the session's lock: run_session releases it after these writes
        bar.close()
        sidecar["Session"].update(status=status, finished=_now(), trials_done=n_done)
        sidecar[SESSION_PROVENANCE_KEY] = _provenance_record(provenance, status, n_done, files)
        files.write_sidecar(sidecar)
    return SessionResult(files.path, status, n_done, len(plan), seed)


def _provenance_record(provenance: Provenance, status: str, n_done: int, files: SessionFiles) -> dict[str, Any]:
    """The session's provenance as its sidecar keeps it (BIDS names no provenance file in ``beh/``)."""
    provenance.extra = {"session_status": status, "trials_done": n_done, "trial_file": str(files.path)}
    return provenance.as_dict()
