"""Fixtures shared by every part's tests: an Xvfb display, a session run on it and answered through
X (xdotool), YAML configs made from a base, and the similarity sessions' set and base config."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stimuli.prepare import prepare_set

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # tests/cli_checks.py: checks shared by the attack tests


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, nested mappings key by key (None deletes a key)."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@pytest.fixture
def config_writer(tmp_path) -> Callable[[dict[str, Any]], Callable[..., Path]]:
    """``config_writer(BASE)`` -> ``make(changes=None, name=None)``: writes BASE with the changes
    merged in as a YAML file under tmp_path and returns its path."""

    def writer(base: dict[str, Any]) -> Callable[..., Path]:
        counter = iter(range(1000))

        def make(changes: dict[str, Any] | None = None, name: str | None = None) -> Path:
            path = tmp_path / (name or f"experiment{next(counter)}.yaml")
            path.write_text(yaml.safe_dump(merge(base, changes or {}), sort_keys=False))
            return path

        return make

    return writer


def start_xvfb(size: str = "1024x768") -> tuple[subprocess.Popen, str]:
    """Start Xvfb with one screen of ``size`` (WxH) pixels; its display number is chosen by Xvfb itself."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                              pass_fds=[write], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    number = b""
    with os.fdopen(read, "rb") as pipe:
        while not number.endswith(b"\n"):
            chunk = pipe.read(1)
            if not chunk:
                break
            number += chunk
    assert number.strip(), "Xvfb did not start"
    return server, f":{number.decode().strip()}"


@pytest.fixture
def screen():
    """A fresh 1024x768 Xvfb display."""
    server, display = start_xvfb()
    yield display
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def screen_of() -> Callable[[str], str]:
    """``screen_of("1920x1080")``: a fresh Xvfb display of that size (stopped after the test)."""
    servers = []

    def start(size: str) -> str:
        server, display = start_xvfb(size)
        servers.append(server)
        return display

    yield start
    for server in servers:
        server.terminate()
        server.wait(timeout=10)


class ScreenSession:
    """``python -m experiments run`` in its own process on an X display, as an experimenter runs it,
    answered through the X keyboard and mouse (xdotool). Participant p1, session 1, windowed unless
    ``windowed=False`` (then full screen, as the YAML says)."""

    def __init__(self, display: str, config: Path, results: Path, root: Path, *extra: str, task: str,
                 participant: str = "p1", windowed: bool = True) -> None:
        self.env = {**os.environ, "DISPLAY": display}
        name = f"sub-{participant}_ses-1_task-{task}_beh.tsv"
        self.trial_file = root / f"sub-{participant}" / "ses-1" / "beh" / name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "experiments", "run", str(config), "--participant", participant, "--session", "1",
             *(["--windowed"] if windowed else []), "--results", str(results), "--data-root", str(root), *extra],
            cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pressed: list[str] = []  # the keys that answered a trial, in order
        self.window = self.xdotool("search", "--sync", "--onlyvisible", "--name", "PsychoPy", timeout=120).split()[0]
        for _ in range(40):  # the window may be mapped a moment before it can take the focus
            try:
                self.xdotool("windowfocus", "--sync", self.window, timeout=5)
                return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                time.sleep(0.25)
        raise AssertionError("could not focus the PsychoPy window")

    def xdotool(self, *args: str, timeout: float = 20) -> str:
        if self.process.poll() is not None:
            raise AssertionError(f"the session ended early: {self.process.stderr.read()}")
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, check=True,
                              timeout=timeout).stdout

    def rows(self) -> int:
        return self.trial_file.read_bytes().count(b"\n") - 1 if self.trial_file.exists() else 0

    def _until_answered(self, act, what: str, patience: float = 60) -> None:
        """Repeat ``act`` until its trial's row is on disk (the trial may not be asking yet)."""
        before = self.rows()
        deadline = time.time() + patience
        while time.time() < deadline:
            self.xdotool("key", "space")  # leaves an instruction or break screen; ignored in a trial
            act()
            waited = time.time() + 1.5
            while time.time() < waited:
                if self.rows() > before:
                    assert self.rows() == before + 1, f"{what} answered more than one trial"
                    return
                time.sleep(0.02)
        raise AssertionError(f"no trial was answered by {what} within {patience} s")

    def answer(self, key: str) -> None:
        """Press ``key`` once the trial asks for it."""
        self._until_answered(lambda: self.xdotool("key", key), f"key '{key}'")
        self.pressed.append(key)

    def click(self, position: int, spacing: float) -> None:
        """Click the face at ``position`` (0 left, 1 middle, 2 right), from the window's geometry."""
        sidecar = json.loads(self.trial_file.with_suffix(".json").read_text())
        face_px = sidecar["Screen"]["stimulus_px"]
        width, height = sidecar["Screen"]["window_size"]
        x = int(round(width / 2 + (position - 1) * spacing * face_px))
        self._until_answered(lambda: self.xdotool("mousemove", "--window", self.window, str(x), str(height // 2),
                                                  "click", "1"), f"a click on face {position}")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, err


@pytest.fixture
def screen_session(screen) -> Callable[..., ScreenSession]:
    """``screen_session(config, results, root, *extra, task=...)``: a :class:`ScreenSession` on ``screen``."""
    return lambda *args, task: ScreenSession(screen, *args, task=task)


@pytest.fixture
def screen_session_on() -> Callable[..., ScreenSession]:
    """``screen_session_on(display, config, results, root, *extra, task=..., windowed=...)``: a
    :class:`ScreenSession` on a display of the test's choosing (e.g. from ``screen_of``)."""
    return lambda display, *args, **options: ScreenSession(display, *args, **options)


SIMILARITY_BASE: dict[str, Any] = {
    "paradigm": "similarity",
    "task": "similarity",
    "stimuli": "orl32",
    "judgement": "triplet",
    "faces": {"n_identities": 8, "images_per_identity": 1},
    "design": {"trials": 24, "trials_per_block": 12, "practice_trials": 2},
    "stimulus_deg": 3.0,
    # Xvfb has no refresh rate (it flips as fast as it can): the screen check compares sizes only
    "screen": {"resolution": [640, 480], "fullscreen": False, "width_cm": 30.0, "distance_cm": 57.0,
               "refresh_tolerance": None},
    "timing": {"fixation_frames": 2, "stimulus_frames": 3, "iti_frames": 2, "feedback_frames": 0},
    "simulated_observer": {"embedding_seed": 3, "dims": 3, "noise_sd": 0.1},
}


@pytest.fixture(scope="session")
def similarity_results(tmp_path_factory) -> Path:
    """A results root with the ORL faces prepared at 32 px, no aperture (the similarity sessions' set)."""
    root = tmp_path_factory.mktemp("similarity-results")
    prepare_set("orl", 32, "orl32", results=root, progress=False)
    return root


@pytest.fixture
def make_similarity_config(config_writer):
    """Write a similarity YAML: SIMILARITY_BASE with changes merged in; returns its path."""
    return config_writer(SIMILARITY_BASE)
