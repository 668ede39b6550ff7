"""The plugin interface between the session engine and a task (bubbles, similarity, ...).

The engine (:mod:`experiments.engine`) owns everything a task must not re-invent: the session
files (:mod:`experiments.session`), refusal to overwrite, resume, crash safety, observers, the
display and the command line. A task only says what its trials are:

- :meth:`Task.columns`: its trial-file columns, in order, with descriptions (the sidecar);
- :meth:`Task.plan`: the whole trial sequence, drawn up front from the session seed;
- :meth:`Task.restore`: its adaptive state (staircases) rebuilt from the finished rows;
- :meth:`Task.groups`: which of the remaining trials may be prepared before any of their
  answers is known (one at a time for people; batches for model observers);
- :meth:`Task.prepare`: a planned row -> a :class:`Trial` (the images to show);
- :meth:`Task.record`: a trial and its :class:`Response` -> the finished row (and state update).

Screenless observers: a task names the ``--observer`` forms it takes in
:attr:`Task.observer_forms` and builds them in :meth:`Task.make_observer`; a task that returns
None there gets the engine's classification observers (template, ``model:VARIANT``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from stimuli.contracts.provenance import file_sha256

__all__ = ["Trial", "Response", "Task", "NA", "QuitRequested", "one_blas_thread", "stimulus_set_record"]

NA = "n/a"  # BIDS: a missing value in a trial file


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread():
    """A context in which numpy's BLAS uses one thread.

    Trial-sized products (a 256x60 by 60x256 mask, a template observer's matrix-vector
    products) run 10-50x faster on one thread than on a pool that competes for busy cores.

    Returns
    -------
    context manager
        threadpoolctl's limit; BLAS threads are restored on exit.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


def stimulus_set_record(prepared: Any) -> dict[str, Any]:
    """What a sidecar records about the prepared stimulus set a session showed.

    Parameters
    ----------
    prepared : stimuli.contracts.prepared.PreparedSet
        The prepared set the session shows.

    Returns
    -------
    dict
        Its name, folder, grid, background and the hashes that resume and analysis check.
    """
    folder = prepared.folder
    return {
        "name": prepared.name,
        "folder": str(folder),
        "shape": list(prepared.shape),
        "background": prepared.background,
        "manifest_sha256": file_sha256(folder / "manifest.csv"),
        "content_sha256": prepared.content_hash,  # pixels, manifest, parameters: resume and analysis check it
        "provenance_sha256": (file_sha256(folder / "provenance.json")
                              if (folder / "provenance.json").is_file() else None),
    }


class QuitRequested(Exception):
    """A quit key was pressed: stop the session cleanly (the trial on screen is not recorded)."""


@dataclass
class Trial:
    """One trial ready to show: the images and what an answer means.

    ``images`` are (H, W) float32 in [0, 1] (row 0 at the top), drawn at ``positions`` (in
    stimulus widths from the screen centre); ``choices`` maps each response key to its answer.
    ``payload`` carries what a simulated observer may use besides the pixels (for bubbles:
    the mask, so a template observer knows where it sees). ``hold`` keeps the images on
    screen until an answer (after ``timing.stimulus_frames``); ``clicks`` gives the answer of
    a mouse click on each image (empty: no mouse answers).

    Parameters
    ----------
    row : dict
        The planned row, filled in as the trial is prepared.
    images : list of (H, W) arrays
        What is shown.
    choices : dict
        Response key -> answer.
    truth : str, optional
        The correct answer (None: no correct answer).
    positions : list of (x, y)
        Where each image is drawn.
    payload : dict
        What simulated observers may use besides the pixels.
    hold : bool
        Keep the images until the answer.
    clicks : list
        The answer of a click on each image (empty: no mouse answers).
    """

    row: dict[str, Any]
    images: list[np.ndarray]
    choices: dict[str, str]
    truth: str | None = None
    positions: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 0.0)])
    payload: dict[str, Any] = field(default_factory=dict)
    hold: bool = False
    clicks: list[str | None] = field(default_factory=list)

    @property
    def number(self) -> int:
        return int(self.row["trial"])


@dataclass
class Response:
    """An observer's answer to one trial (None where there is none, written as ``n/a``).

    Parameters
    ----------
    response : str or None
        The answer.
    rt_s, onset_s : float, optional
        Response time and stimulus onset (seconds).
    dropped_frames : int, optional
        Frames dropped while the stimulus was shown.
    extra : dict
        What else the observer reports (the key, logits, frame times).
    """

    response: str | None
    rt_s: float | None = None
    onset_s: float | None = None
    dropped_frames: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base class of task plugins; see the module docstring for the contract.

    Parameters
    ----------
    config : ExperimentConfig
        The paradigm's loaded config (``config_class``).
    results : str
        The results root holding prepared sets and relevance maps.
    config_path : str
        The YAML, for messages and provenance.
    """

    paradigm: ClassVar[str] = ""
    config_class: ClassVar[type] = object  # the paradigm's config dataclass (experiments.paradigms)
    # screenless observers: kind -> the --observer forms it takes (e.g. "model:VARIANT")
    observer_forms: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, config: Any, *, results: str = "results", config_path: str = "") -> None:
        self.config = config
        self.results = results
        self.config_path = config_path

    @property
    def label(self) -> str:
        """BIDS task label: names the trial file."""
        return str(self.config.task)

    def columns(self) -> dict[str, str]:
        raise NotImplementedError

    def planned_columns(self) -> tuple[str, ...]:
        """Columns fixed by :meth:`plan`; on resume the file must agree with the plan on them."""
        raise NotImplementedError

    def plan(self, seed: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def restore(self, done: pd.DataFrame) -> None:
        """Rebuild adaptive state from the rows already in the trial file (default: none)."""

    def groups(self, todo: Sequence[dict[str, Any]], batch: int = 1) -> Iterator[list[dict[str, Any]]]:
        """Split the remaining planned rows into groups prepared before their answers (default: singles)."""
        for row in todo:
            yield [row]

    def prepare(self, planned: dict[str, Any]) -> Trial:
        raise NotImplementedError

    def record(self, trial: Trial, response: Response) -> dict[str, Any]:
        raise NotImplementedError

    def familiarisation(self) -> list[tuple[np.ndarray, str]]:
        """Images with captions shown to people before practice (default: none)."""
        return []

    def levels(self) -> dict[str, dict[str, str]]:
        """Sidecar ``Levels`` of the task's own categorical columns (over the engine's defaults)."""
        return {}

    def key_help(self) -> str:
        """The response keys as text for instructions, e.g. 'F = female, J = male'."""
        return ""

    def sidecar(self) -> dict[str, Any]:
        """What the trial file's JSON sidecar records about this task (set, masks, ...)."""
        return {}

    def inputs(self) -> list[str]:
        """Input files whose hashes go into provenance."""
        return []

    def make_observer(self, kind: str, argument: str | None, *, seed: int,
                      results: str = "results") -> Any:
        """A screenless observer of this task for ``--observer kind[:argument]``, or None for
        the engine's classification observers (:func:`experiments.observers.make_observer`).

        Returns
        -------
        experiments.observers.Observer or None
            The task's own observer (task.py does not import observers: they import its trials).
        """
        return None
