"""Similarity sessions on a virtual screen (Xvfb), answered with real X key presses and mouse clicks
(xdotool), through ``python -m experiments run`` in its own process as an experimenter would run it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.trials import SIMILARITY_COLUMNS, read_trials

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.display,
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                       reason="needs Xvfb and xdotool (apt-get install xvfb xdotool; .ci/run does)"),
]


def test_triplets_answered_with_keys_and_a_click(screen_session, make_config, results, tmp_path):
    config = make_config({"seed": 5, "design": {"trials": 10, "practice_trials": 0, "cover_all_pairs": False},
                          "timing": {"fixation_frames": 2, "stimulus_frames": 3, "iti_frames": 2}})
    capture = tmp_path / "shots"
    session = screen_session(config, results, tmp_path / "data", "--capture", str(capture), task="similarity")
    answers = [("Left", 0), ("Right", 2), ("Down", 1)]
    for key, _ in answers:
        session.answer(key)
    session.click(2, spacing=1.15)
    session.click(0, spacing=1.15)
    session.xdotool("key", "Escape")
    code, err = session.finish()
    assert code == 3 and "session incomplete: stopped after 5 of 10 trials" in err, err  # Escape: exit 3
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


def test_ratings_answered_with_number_keys(screen_session, make_config, results, tmp_path):
    config = make_config({"seed": 2, "judgement": "rating",
                          "design": {"trials": 3, "practice_trials": 0, "cover_all_pairs": False}})
    session = screen_session(config, results, tmp_path / "data", task="similarity")
    for key in ("3", "7", "1"):
        session.answer(key)
    code, err = session.finish()
    assert code == 0, err
    table = read_trials(session.trial_file, required=tuple(SIMILARITY_COLUMNS))
    assert list(table.response) == ["3", "7", "1"] and list(table.response_key) == ["3", "7", "1"]
    assert table.stimulus_3.isna().all() and table.response_position.isna().all() and (table.rt_s > 0).all()
