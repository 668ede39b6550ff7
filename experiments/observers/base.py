"""The observer interface: what answers a task's trials, with or without a screen.

An observer answers trials (:class:`experiments.task.Trial`) with
:class:`experiments.task.Response`; the human observer is the PsychoPy display
(:mod:`experiments.display`), the others run headless (:mod:`experiments.observers`). All of
them write the same trial file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..task import Response, Trial

__all__ = ["Observer"]


class Observer:
    """An observer: answers trials; screens (instructions, breaks) are no-ops without a screen."""

    kind = "observer"
    batch = 1  # how many trials it answers in one call, at most

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def message(self, text: str, *, wait: bool = True) -> None:
        """Show a text screen (people only)."""

    def familiarise(self, items: Sequence[tuple[np.ndarray, str]]) -> None:
        """Show faces with captions before practice (people only)."""

    def respond(self, trials: Sequence[Trial]) -> list[Response]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the observer holds (a window, a model)."""
