"""Whether the participant dialog can start here: a screen, and a GUI toolkit that starts.

Headless on purpose (it never imports psychopy): both the command line
(:func:`experiments.participant.ask_participant_for`, before the display is imported) and the
dialog itself (:func:`experiments.display.ask_participant`) ask it, so a missing screen or a
toolkit that cannot start is one clear line instead of an abort.

Examples
--------
>>> require_screen({"DISPLAY": ":0"}, platform="linux")
>>> require_screen({}, platform="linux")
Traceback (most recent call last):
stimuli.contracts.errors.InputError: no screen for the participant dialog: give --participant and --session
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from stimuli.contracts.errors import InputError

__all__ = ["gui_problem", "require_screen"]

# run in a child process (this module never imports psychopy itself)
_GUI_PROBE = """
import importlib
gui = importlib.import_module("psychopy.gui")
if gui.haveQt:
    gui.ensureQtApp()
else:
    import wx
    wx.App(False)
"""


def require_screen(env: Mapping[str, str] | None = None, platform: str | None = None) -> None:
    """Refuse, in one line, a Linux session without a screen (no ``DISPLAY`` or ``WAYLAND_DISPLAY``).

    Parameters
    ----------
    env : mapping, optional
        The environment to look in (default: ``os.environ``).
    platform : str, optional
        ``sys.platform`` (default: this one's); only Linux needs the variables.

    Raises
    ------
    InputError
        No screen for the participant dialog.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        raise InputError("no screen for the participant dialog: give --participant and --session")


def gui_problem(env: dict[str, str] | None = None) -> str | None:
    """Why PsychoPy's dialogs cannot start here, or None when they can.

    A toolkit that cannot start (Qt without its xcb libraries, no wx) aborts the whole
    process, uncatchably; so it is tried in a child process first.

    Parameters
    ----------
    env : dict, optional
        The child's environment (default: this process's).

    Returns
    -------
    str or None
        The first telling line of the child's error (at most 160 characters), or None.
    """
    try:
        probe = subprocess.run([sys.executable, "-c", _GUI_PROBE], capture_output=True, text=True, timeout=60,
                               env=env)
    except (OSError, subprocess.SubprocessError) as error:
        return str(error)
    if probe.returncode == 0:
        return None
    lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
    telling = [line for line in lines if any(w in line.lower() for w in ("could not", "cannot", "error"))]
    return ((telling or lines or [f"the GUI toolkit exited with status {probe.returncode}"])[0])[:160]
