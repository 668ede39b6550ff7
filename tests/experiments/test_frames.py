"""Frame intervals: ``*_events.tsv`` next to a human session's trial file (experiments.frames)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments.frames import COLUMNS, FrameLog, FrameTimes, events_path, frame_rows
from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import read_trials

# the official validator (the bids-validator-deno wheel, a dev dependency) next to this interpreter
VALIDATOR = Path(sys.executable).parent / "bids-validator-deno"


def _trial_file(tmp_path: Path) -> Path:
    folder = tmp_path / "sub-01" / "ses-1" / "beh"
    folder.mkdir(parents=True)
    return folder / "sub-01_ses-1_task-gender_beh.tsv"


SIDECAR = {"TaskName": "gender", "Screen": {"window_size": [640, 480], "refresh_hz_nominal": 60,
                                              "distance_cm": 57.0, "dropped_frame_threshold_s": 0.0207},
           "Software": {"psychopy": "2025.1.1"}}


def test_one_row_per_flip_with_its_interval_and_the_dropped_flag():
    rows = frame_rows(4, [2.0, 2.0167, 2.0334, 2.0835, 2.1001], threshold_s=0.0207, origin=1.5)
    table = [r.split("\t") for r in rows]
    assert len(table) == 4  # the last flip starts the next blank: no interval of this trial
    assert [float(r[0]) for r in table] == pytest.approx([0.5, 0.5167, 0.5334, 0.5835])
    assert [float(r[1]) for r in table] == pytest.approx([0.0167, 0.0167, 0.0501, 0.0166])
    assert [r[4] for r in table] == ["0", "0", "1", "0"] and {r[2] for r in table} == {"frame"}
    assert {r[3] for r in table} == {"4"}
    assert frame_rows(1, [3.0], threshold_s=0.02, origin=0.0) == []
    assert events_path("x/sub-1_ses-2_task-t_beh.tsv") == Path("x/sub-1_ses-2_task-t_events.tsv")


def test_no_frames_no_file(tmp_path):
    """Simulated observers answer without frame times: nothing is written."""
    log = FrameLog(_trial_file(tmp_path), SIDECAR)
    log.append(1, None)
    assert not log.path.exists() and not log.sidecar_path.exists()


def test_appended_kept_on_resume_and_a_torn_tail_cut(tmp_path):
    trial_file = _trial_file(tmp_path)
    log = FrameLog(trial_file, SIDECAR)
    log.append(1, FrameTimes((10.0, 10.02, 10.04), 0.0207))
    log.append(2, FrameTimes((11.0, 11.05), 0.0207))
    described = json.loads(log.sidecar_path.read_text())
    assert described["FirstFlipSessionTime"] == 10.0 and described["TaskName"] == "gender"
    assert set(COLUMNS) <= set(described) and described["onset"]["Units"] == "s"
    assert described["StimulusPresentation"]["ScreenDistance"] == pytest.approx(0.57)
    kept = log.path.read_bytes()
    with open(log.path, "ab") as handle:  # a crash inside the next write: a torn row
        handle.write(b"7.777777\t0.0")
    # a resumed session (another process): the torn row goes, the rest stays byte for byte,
    # and the onsets continue on the first process's clock
    resumed = FrameLog(trial_file, SIDECAR)
    resumed.append(3, FrameTimes((20.0, 20.03), 0.0207))
    data = log.path.read_bytes()
    assert data.startswith(kept) and b"7.777777\t0.0" not in data
    table = pd.read_csv(log.path, sep="\t")
    assert list(table.columns) == list(COLUMNS)
    assert list(table.trial) == [1, 1, 2, 3] and list(table.dropped) == [0, 0, 1, 1]
    assert list(table.onset) == pytest.approx([0.0, 0.02, 1.0, 10.0])
    assert json.loads(log.sidecar_path.read_text()) == described  # written once


def test_a_file_that_is_not_a_frame_log_is_refused(tmp_path):
    trial_file = _trial_file(tmp_path)
    events_path(trial_file).write_text("onset\tduration\tvalue\n0\t1\tx\n")
    with pytest.raises(InputError, match="not a frame-interval file"):
        FrameLog(trial_file, SIDECAR).append(1, FrameTimes((0.0, 0.1), 0.02))


def _validator_issues(root: Path) -> list[dict]:
    done = subprocess.run([str(VALIDATOR), "--format", "json", str(root)], capture_output=True, text=True,
                          timeout=300)
    return json.loads(done.stdout)["issues"]["issues"]


@pytest.mark.display
@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")), reason="needs Xvfb and xdotool")
def test_a_session_on_screen_writes_frame_intervals_the_bids_validator_accepts(screen_session, make_config,
                                                                                results, tmp_path):
    config = make_config({"seed": 3, "design": {"trials_per_block": 3, "practice_trials": 0}})
    root = tmp_path / "data"
    person = screen_session(config, results, root, task="gender")
    for key in ("f", "j", "f"):
        person.answer(key)
    code, err = person.finish()
    assert code == 0, err
    trials = read_trials(person.trial_file)
    frames = pd.read_csv(events_path(person.trial_file), sep="\t")
    assert list(frames.columns) == list(COLUMNS) and set(frames.trial_type) == {"frame"}
    assert list(frames.trial.unique()) == list(trials.trial)
    per_trial = frames.groupby("trial").size()
    # at least the fixation and stimulus frames of every trial, each timed (BASE: 2 + 3 frames)
    assert (per_trial >= 2 + 3).all()
    assert frames.onset.iloc[0] == 0 and frames.onset.is_monotonic_increasing and (frames.duration > 0).all()
    threshold = json.loads(person.trial_file.with_suffix(".json").read_text())["Screen"]["dropped_frame_threshold_s"]
    assert ((frames.duration > threshold).astype(int) == frames.dropped).all()
    # each trial's stimulus onset (trial file) is one of its timed flips, on the same clock
    origin = json.loads(events_path(person.trial_file).with_suffix(".json").read_text())["FirstFlipSessionTime"]
    for _, row in trials.iterrows():
        flips = frames.onset[frames.trial == row.trial] + origin
        assert (flips - row.onset_s).abs().min() < 0.005

    if VALIDATOR.exists():
        # the official BIDS validator: no error about the events files, and no warning about them that it
        # does not also give their trial file (the task's description keys, which the events copy)
        issues = _validator_issues(root)
        about = {kind: {(i["code"], i.get("subCode")) for i in issues if f"_{kind}." in (i.get("location") or "")}
                 for kind in ("events", "beh")}
        assert not [i for i in issues if "_events." in (i.get("location") or "") and i["severity"] == "error"]
        assert about["events"] <= about["beh"], about["events"] - about["beh"]


@pytest.mark.skipif(not VALIDATOR.exists(), reason="needs the bids-validator-deno wheel (a dev dependency)")
def test_with_the_task_described_the_validator_has_nothing_to_say_about_the_events(tmp_path):
    """Once the trial file's sidecar describes the task (TaskName, TaskDescription, Instructions, ...),
    the events files inherit that description and the validator reports nothing about them."""
    trial_file = _trial_file(tmp_path)
    described = {**SIDECAR, "TaskDescription": "gender of faces seen through bubbles",
                 "Instructions": "Is it a woman or a man?", "CogAtlasID": "https://www.cognitiveatlas.org/task/id/x",
                 "CogPOID": "http://www.wiki.cogpo.org/index.php?title=x", "InstitutionName": "a lab",
                 "InstitutionAddress": "a street", "InstitutionalDepartmentName": "psychology"}
    (tmp_path / "dataset_description.json").write_text(json.dumps(
        {"Name": "t", "BIDSVersion": "1.10.0", "DatasetType": "raw", "Authors": ["a"]}))
    (tmp_path / "participants.tsv").write_text("participant_id\nsub-01\n")
    trial_file.write_text("trial\n1\n")
    trial_file.with_suffix(".json").write_text(json.dumps(
        {"trial": {"Description": "trial number"}, **{k: v for k, v in described.items()
                                                      if k not in ("Screen", "Software")}}))
    FrameLog(trial_file, described).append(1, FrameTimes((5.0, 5.0167, 5.0501, 5.0668), 0.0207))
    issues = _validator_issues(tmp_path)
    assert [i for i in issues if "_events." in (i.get("location") or "")] == []
