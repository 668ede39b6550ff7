"""Experiments: Bubbles sessions for people (PsychoPy) and for simulated and model observers.

One engine (:mod:`experiments.engine`) runs any task plugin (:mod:`experiments.task`; the
paradigms :mod:`experiments.bubbles` and :mod:`experiments.similarity` register themselves in
:mod:`experiments.paradigms`) with any observer (:mod:`experiments.observers`), into the one
trial-file format of :mod:`stimuli.contracts.trials`. The command line is
``python -m experiments run|check`` (:mod:`experiments.run`, :mod:`experiments.check`). Only
:mod:`experiments.display` imports psychopy; everything else runs headless.

Examples
--------
>>> from experiments import run_session                                    # doctest: +SKIP
>>> run_session("experiments/bubbles_gender.yaml", "tmpl1", 1, observer="template:eyes",
...             seed=3)                                                    # doctest: +SKIP
"""

from .config import load_experiment
from .engine import SessionResult, load_task, run_session
from .observers import ModelObserver, Observer, TemplateObserver, make_observer
from .session import SessionFiles, update_participants
from .staircase import Quest, QuestParams
from .task import QuitRequested, Response, Task, Trial

__all__ = [
    "ModelObserver",
    "Observer",
    "Quest",
    "QuestParams",
    "QuitRequested",
    "Response",
    "SessionFiles",
    "SessionResult",
    "Task",
    "TemplateObserver",
    "Trial",
    "load_experiment",
    "load_task",
    "make_observer",
    "run_session",
    "update_participants",
]
