"""PsychoPy sessions on a virtual screen (Xvfb), answered with real X key presses and mouse clicks
(xdotool): Bubbles sessions, the participant dialog, and similarity triplets and ratings.

Each test starts its own Xvfb and runs ``python -m experiments run`` in its own process, as an
experimenter would; the test presses keys as a participant would and reads the trial file.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from experiments.dialog import gui_problem
from experiments.engine import load_task
from experiments.staircase import Quest, bubbles_for_intensity, intensity_for_bubbles
from stimuli.bubbles import compose, mask_from_trial
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.trials import SIMILARITY_COLUMNS, read_trials

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.display,
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                       reason="needs Xvfb and xdotool (apt-get install xvfb xdotool; .ci/run does)"),
]


def _config(make_config, trials: int, practice: int, feedback: bool = True) -> Path:
    return make_config({"feedback": feedback, "seed": 31,
                        "design": {"trials_per_block": trials, "practice_trials": practice},
                        "timing": {"fixation_frames": 2, "stimulus_frames": 4, "iti_frames": 2,
                                   "feedback_frames": 2}})


def _check_answers(table, pressed):
    assert list(table.response_key) == pressed
    assert list(table.response) == [{"f": "female", "j": "male"}[k] for k in pressed]
    assert ((table.response == table.truth).astype(int) == table.correct).all()
    assert (table.rt_s > 0).all() and table.rt_s.notna().all() and table.onset_s.is_monotonic_increasing
    assert (table.dropped_frames >= 0).all()


def test_session_on_screen_with_real_key_presses(screen_session, make_config, results, tmp_path):
    config = _config(make_config, trials=5, practice=2)
    capture = tmp_path / "shots"
    person = screen_session(config, results, tmp_path / "data", "--capture", str(capture), task="gender")
    keys = ["f", "j", "j", "f", "f", "j", "f"]
    for key in keys:
        person.answer(key)
    code, err = person.finish()
    assert code == 0, err
    table = read_trials(person.trial_file)
    assert list(table.trial) == list(range(1, 8)) and list(table.phase) == ["practice"] * 2 + ["main"] * 5
    _check_answers(table, keys)
    sidecar = json.loads(person.trial_file.with_suffix(".json").read_text())
    assert sidecar["Observer"]["kind"] == "human" and sidecar["Session"]["status"] == "complete"
    shown_px = sidecar["Screen"]["stimulus_px"]
    assert sidecar["Screen"]["keyboard"].startswith("psychopy.event.getKeys") and sidecar["KeysBackend"] == "event"
    assert sidecar["ScreenCheck"]["measured"]["size_px"] == [640, 480] and sidecar["ScreenCheck"]["mismatch"] is False

    # the screenshot of each stimulus is the stimulus rebuilt from its row (row 0 at the top)
    stim = load_prepared_set("orl32", results)
    for _, row in table.iterrows():
        shot = np.asarray(Image.open(capture / f"trial-{row.trial:04d}.png").convert("L"), dtype=np.float64) / 255
        h, w = shot.shape
        half = shown_px / 2
        crop = shot[int(round(h / 2 - half)):int(round(h / 2 + half)), int(round(w / 2 - half)):int(round(w / 2 + half))]
        seen = np.asarray(Image.fromarray(crop).resize(stim.shape[::-1], Image.BILINEAR))
        rebuilt = compose(stim.image(row.stimulus_id), mask_from_trial(row, stim.shape), stim.background)
        other = compose(stim.image(row.stimulus_id)[::-1], mask_from_trial(row, stim.shape), stim.background)
        match = np.corrcoef(seen.ravel(), rebuilt.ravel())[0, 1]
        assert match > 0.9 and match > np.corrcoef(seen.ravel(), other.ravel())[0, 1] + 0.1
        assert np.abs(seen - rebuilt).mean() < 0.03


def test_escape_sigkill_and_resume_on_screen(screen_session, make_config, results, tmp_path):
    config = _config(make_config, trials=8, practice=0, feedback=False)
    root = tmp_path / "data"
    person = screen_session(config, results, root, task="gender")
    person.answer("f")
    person.answer("j")
    person.xdotool("key", "Escape")
    code, err = person.finish()
    # exit 3 and one line: incomplete, and the exact command that resumes it
    line = err.strip().splitlines()[-1]
    assert code == 3 and line.startswith("session incomplete: stopped after 2 of 8 trials"), err
    command = shlex.split(line.split("resume it with: ")[1])
    assert command[:5] == ["python", "-m", "experiments", "run", str(config)] and command[-1] == "--resume"
    sidecar = json.loads(person.trial_file.with_suffix(".json").read_text())
    assert sidecar["Session"]["status"] == "stopped"
    pressed = list(person.pressed)
    frames_before = person.trial_file.with_name("sub-p1_ses-1_task-gender_events.tsv").read_bytes()

    # without --resume: refused, nothing touched
    before = person.trial_file.read_bytes()
    refused = subprocess.run([sys.executable, "-m", "experiments", "run", str(config), "--participant", "p1",
                              "--session", "1", "--windowed", "--results", str(results), "--data-root", str(root)],
                             cwd=REPO, env=person.env, capture_output=True, text=True)
    assert refused.returncode == 2 and "exists already; add --resume" in refused.stderr
    assert person.trial_file.read_bytes() == before

    # the printed command holds exactly this session's options (ScreenSession passes the same ones) and --resume
    person = screen_session(config, results, root, *command[command.index("--resume"):], task="gender")
    assert command[5:command.index("--resume")] == ["--participant", "p1", "--session", "1", "--data-root",
                                                     str(root), "--results", str(results), "--windowed"]
    person.answer("j")
    person.answer("f")
    person.answer("f")
    os.kill(person.process.pid, signal.SIGKILL)
    person.process.wait()
    pressed += person.pressed
    table = read_trials(person.trial_file)
    assert list(table.trial) == [1, 2, 3, 4, 5]  # every answered trial is on disk and parses
    _check_answers(table, pressed)

    person = screen_session(config, results, root, "--resume", task="gender")
    for key in ["j", "f", "j"]:
        person.answer(key)
    code, err = person.finish()
    assert code == 0, err
    pressed += person.pressed
    table = read_trials(person.trial_file)
    assert list(table.trial) == list(range(1, 9))  # no trial missing, none twice
    _check_answers(table, pressed)
    # the same sequence as the recorded seed gives, and the staircase continued across the breaks
    task = load_task(config, results)
    plan = task.plan(31)
    assert list(table.stimulus_id) == [r["stimulus_id"] for r in plan]
    assert list(table.mask_seed) == [r["mask_seed"] for r in plan]
    for i in range(1, 8):
        history = [(intensity_for_bubbles(n), c) for n, c in zip(table.n_bubbles[:i], table.correct[:i])]
        expected = bubbles_for_intensity(Quest.replay(task.quest_params, history).next_intensity(), 1,
                                         task.max_bubbles)
        assert table.n_bubbles[i] == expected
    sidecar = json.loads(person.trial_file.with_suffix(".json").read_text())
    assert [r["at_trial"] for r in sidecar["Session"]["resumes"]] == [3, 6]
    assert sidecar["Session"]["status"] == "complete"
    # the frame intervals were kept across the Escape, the SIGKILL and both resumes: never rewritten
    events = person.trial_file.with_name("sub-p1_ses-1_task-gender_events.tsv")
    assert events.read_bytes().startswith(frames_before)
    frames = pd.read_csv(events, sep="\t")
    assert sorted(set(frames.trial)) == list(range(1, 9)) and frames.onset.is_monotonic_increasing


def test_participant_dialog_when_the_id_is_missing(screen, make_config, results, tmp_path):
    env = {**os.environ, "DISPLAY": screen}
    problem = gui_problem(env)
    if problem:
        pytest.skip(f"no GUI toolkit can start here ({problem}; PyQt6 needs libxcb-icccm4 libxcb-keysyms1 "
                    "libxcb-cursor0)")
    config = _config(make_config, trials=3, practice=0)
    root = tmp_path / "data"
    process = subprocess.Popen([sys.executable, "-m", "experiments", "run", str(config), "--windowed",
                                "--results", str(results), "--data-root", str(root)],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def xdotool(*args, timeout=120):
        return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, check=True,
                              timeout=timeout).stdout

    dialog = xdotool("search", "--sync", "--onlyvisible", "--name", "Participant").split()[0]
    for _ in range(40):
        if subprocess.run(["xdotool", "windowfocus", "--sync", dialog], env=env, capture_output=True,
                          timeout=5).returncode == 0:
            break
        time.sleep(0.25)
    time.sleep(0.5)
    xdotool("type", "--delay", "50", "dlg7")  # the first field: participant; session stays 1
    xdotool("key", "Return")
    xdotool("search", "--sync", "--onlyvisible", "--name", "PsychoPy")
    trial_file = root / "sub-dlg7" / "ses-1" / "beh" / "sub-dlg7_ses-1_task-gender_beh.tsv"
    deadline = time.time() + 60
    while not trial_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    window = xdotool("search", "--onlyvisible", "--name", "PsychoPy").split()[0]
    deadline = time.time() + 60
    while process.poll() is None and time.time() < deadline:  # retry: a key may land before the focus
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, capture_output=True, timeout=5)
        subprocess.run(["xdotool", "key", "Escape"], env=env, capture_output=True, timeout=5)
        time.sleep(1.0)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 3 and "session incomplete: stopped after 0 of 3 trials" in err
    assert "--participant dlg7 --session 1" in err
    assert trial_file.is_file()  # the label typed in the dialog named the session
    assert (root / "participants.tsv").read_text().splitlines()[1:] == []  # no answered trial: no row


def test_triplets_answered_with_keys_and_a_click(screen_session, make_similarity_config, similarity_results, tmp_path):
    config = make_similarity_config({"seed": 5, "design": {"trials": 10, "practice_trials": 0, "cover_all_pairs": False},
                          "timing": {"fixation_frames": 2, "stimulus_frames": 3, "iti_frames": 2}})
    capture = tmp_path / "shots"
    session = screen_session(config, similarity_results, tmp_path / "data", "--capture", str(capture), task="similarity")
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
    stim = load_prepared_set("orl32", similarity_results)
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


def test_ratings_answered_with_number_keys(screen_session, make_similarity_config, similarity_results, tmp_path):
    config = make_similarity_config({"seed": 2, "judgement": "rating",
                          "design": {"trials": 3, "practice_trials": 0, "cover_all_pairs": False}})
    session = screen_session(config, similarity_results, tmp_path / "data", task="similarity")
    for key in ("3", "7", "1"):
        session.answer(key)
    code, err = session.finish()
    assert code == 0, err
    table = read_trials(session.trial_file, required=tuple(SIMILARITY_COLUMNS))
    assert list(table.response) == ["3", "7", "1"] and list(table.response_key) == ["3", "7", "1"]
    assert table.stimulus_3.isna().all() and table.response_position.isna().all() and (table.rt_s > 0).all()
