"""Similarity sessions on a virtual screen (Xvfb), answered with real X key presses and mouse clicks
(xdotool), through ``python -m experiments run`` in its own process as an experimenter would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stimuli.prepared import load_prepared_set
from stimuli.trials import SIMILARITY_COLUMNS, read_trials

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.display,
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                       reason="needs Xvfb and xdotool (apt-get install xvfb xdotool; .ci/run does)"),
]


class Session:
    """``python -m experiments run`` on ``display``; answers through the X keyboard and mouse."""

    def __init__(self, display: str, config: Path, results: Path, root: Path, *extra: str) -> None:
        self.env = {**os.environ, "DISPLAY": display}
        self.trial_file = root / "sub-p1" / "ses-1" / "beh" / "sub-p1_ses-1_task-similarity_beh.tsv"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "experiments", "run", str(config), "--participant", "p1", "--session", "1",
             "--windowed", "--results", str(results), "--data-root", str(root), *extra],
            cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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

    def _until_answered(self, act, patience: float = 60) -> None:
        before = self.rows()
        deadline = time.time() + patience
        while time.time() < deadline:
            self.xdotool("key", "space")  # leaves an instruction or break screen; ignored in a trial
            act()
            waited = time.time() + 1.5
            while time.time() < waited:
                if self.rows() > before:
                    assert self.rows() == before + 1, "one answer answered more than one trial"
                    return
                time.sleep(0.02)
        raise AssertionError(f"no trial was answered within {patience} s")

    def press(self, key: str) -> None:
        self._until_answered(lambda: self.xdotool("key", key))

    def click(self, position: int, spacing: float) -> None:
        """Click the face at ``position`` (0 left, 1 middle, 2 right), from the window's geometry."""
        sidecar = json.loads(self.trial_file.with_suffix(".json").read_text())
        face_px = sidecar["Screen"]["stimulus_px"]
        width, height = sidecar["Screen"]["window_size"]
        x = int(round(width / 2 + (position - 1) * spacing * face_px))
        self._until_answered(lambda: self.xdotool("mousemove", "--window", self.window, str(x), str(height // 2),
                                                  "click", "1"))

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, err


def test_triplets_answered_with_keys_and_a_click(screen, make_config, results, tmp_path):
    config = make_config({"seed": 5, "design": {"trials": 10, "practice_trials": 0, "cover_all_pairs": False},
                          "timing": {"fixation_frames": 2, "stimulus_frames": 3, "iti_frames": 2}})
    capture = tmp_path / "shots"
    session = Session(screen, config, results, tmp_path / "data", "--capture", str(capture))
    answers = [("Left", 0), ("Right", 2), ("Down", 1)]
    for key, _ in answers:
        session.press(key)
    session.click(2, spacing=1.15)
    session.click(0, spacing=1.15)
    session.xdotool("key", "Escape")
    code, err = session.finish()
    assert code == 0 and "session stopped after 5 of 10 trials" in err, err
    table = read_trials(session.trial_file, required=tuple(SIMILARITY_COLUMNS))
    positions = [p for _, p in answers] + [2, 0]
    faces = table[["stimulus_1", "stimulus_2", "stimulus_3"]].to_numpy()
    assert list(table.response) == [faces[i, p] for i, p in enumerate(positions)]
    assert list(table.response_position) == [p + 1 for p in positions]
    assert list(table.response_key) == ["left", "right", "down", "mouse", "mouse"]
    assert (table.rt_s > 0).all() and table.onset_s.is_monotonic_increasing and (table.dropped_frames >= 0).all()
    sidecar = json.loads(session.trial_file.with_suffix(".json").read_text())
    assert sidecar["Observer"]["kind"] == "human" and sidecar["Session"]["status"] == "stopped"

    # each screenshot shows the trial's three faces, left to right, at the stimulus size
    stim = load_prepared_set("orl32", results)
    face_px = sidecar["Screen"]["stimulus_px"]
    for _, row in table.iterrows():
        shot = np.asarray(Image.open(capture / f"trial-{row.trial:04d}.png").convert("L"), dtype=np.float64) / 255
        h, w = shot.shape
        for k in range(3):
            cx, half = w / 2 + (k - 1) * 1.15 * face_px, face_px / 2
            crop = shot[int(round(h / 2 - half)):int(round(h / 2 + half)), int(round(cx - half)):int(round(cx + half))]
            seen = np.asarray(Image.fromarray(crop).resize(stim.shape[::-1], Image.BILINEAR))
            match = {s: np.corrcoef(seen.ravel(), stim.image(s).ravel())[0, 1]
                     for s in (row.stimulus_1, row.stimulus_2, row.stimulus_3)}
            assert max(match, key=match.get) == row[f"stimulus_{k + 1}"] and match[row[f"stimulus_{k + 1}"]] > 0.9


def test_ratings_answered_with_number_keys(screen, make_config, results, tmp_path):
    config = make_config({"seed": 2, "judgement": "rating",
                          "design": {"trials": 3, "practice_trials": 0, "cover_all_pairs": False}})
    session = Session(screen, config, results, tmp_path / "data")
    for key in ("3", "7", "1"):
        session.press(key)
    code, err = session.finish()
    assert code == 0, err
    table = read_trials(session.trial_file, required=tuple(SIMILARITY_COLUMNS))
    assert list(table.response) == ["3", "7", "1"] and list(table.response_key) == ["3", "7", "1"]
    assert table.stimulus_3.isna().all() and table.response_position.isna().all() and (table.rt_s > 0).all()
