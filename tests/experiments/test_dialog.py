"""Whether the participant dialog can start: a screen on Linux, and a GUI toolkit (in a child process)."""

from __future__ import annotations

import os

import pytest

from experiments.dialog import gui_problem, require_screen
from stimuli.contracts.errors import InputError


@pytest.mark.parametrize("env", [{"DISPLAY": ":1"}, {"WAYLAND_DISPLAY": "wayland-0"}])
def test_a_screen_variable_is_enough(env):
    assert require_screen(env, platform="linux") is None  # no error: a screen is there


def test_no_screen_is_one_line_on_linux_only():
    with pytest.raises(InputError, match="^no screen for the participant dialog: give --participant and --session$"):
        require_screen({"DISPLAY": ""}, platform="linux")
    require_screen({}, platform="darwin")


def test_a_toolkit_that_cannot_start_is_a_reason_not_a_crash():
    """Without a screen (no DISPLAY), Qt or wx aborts the child process; this process gets one line."""
    problem = gui_problem({"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")})
    assert isinstance(problem, str) and 0 < len(problem) <= 160
