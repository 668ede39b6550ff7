"""Where key presses come from: the ``keys.backend`` of an experiment YAML.

- ``event``: ``psychopy.event.getKeys`` (pyglet events, timestamped when the window dispatches
  them, i.e. once a frame: one frame of RT resolution). The default, and what the
  virtual-display (Xvfb + xdotool) tests drive.
- ``ptb``: ``psychopy.hardware.keyboard.Keyboard`` on PsychToolbox's HID backend, which
  timestamps each press on its own thread, independently of the frame loop. Needs the
  ``psychtoolbox`` package and its system libraries; without them the session is refused in
  one line before a window opens.

This module does not import psychopy (the display does, :mod:`experiments.display`); the
sources below wrap the psychopy objects the display hands them, so that both backends answer
the same two calls: ``clear()`` and ``get(keys, clock)``.

Examples
--------
>>> class FakeEvent:                      # what psychopy.event offers, for the example
...     def getKeys(self, keyList, timeStamped=False):
...         return [("f", 0.25)] if timeStamped else ["f"]
>>> EventKeys(FakeEvent()).get(["f", "j"], clock=object())
[('f', 0.25)]
"""

from __future__ import annotations

from typing import Any

__all__ = ["EventKeys", "PtbKeys", "ptb_problem"]


class EventKeys:
    """Keys from ``psychopy.event`` (pyglet's event queue, polled once a frame).

    Parameters
    ----------
    event : module
        ``psychopy.event``.
    """

    name = "event"
    description = "psychopy.event.getKeys (pyglet events, polled every frame)"

    def __init__(self, event: Any) -> None:
        self._event = event

    def clear(self) -> None:
        self._event.clearEvents(eventType="keyboard")

    def get(self, keys: list[str], clock: Any = None) -> list[tuple[str, float | None]]:
        """Presses of ``keys`` since the last call, as (name, seconds on ``clock``) in order."""
        if clock is None:
            return [(k, None) for k in self._event.getKeys(keyList=keys)]
        return [(k, float(t)) for k, t in self._event.getKeys(keyList=keys, timeStamped=clock)]


class PtbKeys:
    """Keys from ``psychopy.hardware.keyboard.Keyboard`` with the PsychToolbox backend.

    A press's time is its HID timestamp (``KeyPress.tDown``, on psychopy's ``core.getTime``
    time base, which ``now`` reads) carried onto ``clock``: the clock's reading now minus the
    press's age, so a press before the stimulus onset is negative. (``Clock.getLastResetTime``
    is on another time base, the epoch, so it cannot be subtracted from ``tDown``.)

    Parameters
    ----------
    keyboard : psychopy.hardware.keyboard.Keyboard
        A keyboard on the ``ptb`` backend.
    now : callable
        The clock of its timestamps (``psychopy.core.getTime``).
    """

    name = "ptb"
    description = "psychopy.hardware.keyboard.Keyboard, PsychToolbox HID backend (press times from the device)"

    def __init__(self, keyboard: Any, now: Any) -> None:
        self._keyboard = keyboard
        self._now = now  # psychopy.core.getTime: the time base of KeyPress.tDown

    def clear(self) -> None:
        self._keyboard.clearEvents()

    def get(self, keys: list[str], clock: Any = None) -> list[tuple[str, float | None]]:
        presses = self._keyboard.getKeys(keyList=keys, waitRelease=False, clear=True)
        if clock is None:
            return [(p.name, None) for p in presses]
        now, on_clock = float(self._now()), float(clock.getTime())
        return [(p.name, on_clock - (now - float(p.tDown))) for p in presses]


def ptb_problem() -> str | None:
    """Why ``psychtoolbox`` (and its HID module) cannot be imported here, or None when it can.

    Returns
    -------
    str or None
        The import error, at most 200 characters.

    Examples
    --------
    >>> import sys, unittest.mock
    >>> with unittest.mock.patch.dict(sys.modules, {"psychtoolbox": None}):  # as if not installed
    ...     print(ptb_problem().split(':')[0])
    ModuleNotFoundError
    """
    try:
        import psychtoolbox  # noqa: F401  (a probe: can it be imported here at all?)
        from psychtoolbox import hid  # noqa: F401  (its HID module needs system libraries)
    except Exception as error:  # not installed, or a system library missing (libjack, libportaudio)
        return f"{type(error).__name__}: {error}"[:200]
    return None
