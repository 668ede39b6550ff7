"""The screen check: a wrong screen refuses in one line; the sidecar records what ran.

The comparisons are tested as functions; then, as a new lab would meet them, the shipped
experiment YAML (its ``screen`` section untouched) is run full screen on Xvfb displays of
another size and of its own size, answered with real key presses (xdotool).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from experiments.screen import (
    mismatch_line,
    monitor_record,
    screen_problems,
    screen_record,
    suggested_refresh,
)
from stimuli.contracts.trials import read_trials

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "experiments" / "bubbles_gender.yaml"
needs_xvfb = pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                reason="needs Xvfb and xdotool (apt-get install xvfb xdotool; .ci/run does)")


# --- the comparisons ------------------------------------------------------------------------------
def test_any_size_difference_is_a_mismatch():
    assert screen_problems([1920, 1080], 60, [1920, 1080], 60.4, tolerance=0.02) == []
    assert screen_problems([1920, 1080], 60, [1920, 1079], 60.0, tolerance=0.02) == [
        "the window is 1920x1079 px but screen.resolution is [1920, 1080]"]


def test_refresh_beyond_the_tolerance_or_unmeasured_is_a_mismatch_unless_unchecked():
    assert screen_problems([800, 600], 60, [800, 600], 61.1, tolerance=0.02) == []  # 1.8%
    assert "measured refresh rate is 61.30 Hz" in screen_problems([800, 600], 60, [800, 600], 61.3,
                                                                    tolerance=0.02)[0]  # 2.2%
    assert "could not be measured" in screen_problems([800, 600], 60, [800, 600], None, tolerance=0.02)[0]
    # null tolerance: the refresh is not compared (a virtual display); the size still is
    assert screen_problems([800, 600], 60, [800, 600], None, tolerance=None) == []
    assert len(screen_problems([800, 600], 60, [640, 480], 240.0, tolerance=None)) == 1


def test_the_tolerance_is_validated_on_load(make_config):
    from experiments.config import load_experiment
    from stimuli.contracts.errors import InputError

    assert load_experiment(make_config({"screen": {"refresh_tolerance": 0.05}})).screen.refresh_tolerance == 0.05
    with pytest.raises(InputError, match="key 'screen.refresh_tolerance' must be a fraction of refresh_hz"):
        load_experiment(make_config({"screen": {"refresh_tolerance": 2}}))


def test_the_refusal_is_one_line_with_both_values_and_the_fix():
    problems = screen_problems([1920, 1080], 60, [1280, 1024], 119.9, tolerance=0.02)
    line = mismatch_line(problems, "lab.yaml", [1280, 1024], 119.9)
    assert "\n" not in line
    for part in ("1280x1024 px", "[1920, 1080]", "119.90 Hz", "refresh_hz is 60",
                 "set screen.resolution: [1280, 1024]", "screen.refresh_hz: 120", "in lab.yaml",
                 "--allow-screen-mismatch"):
        assert part in line, part
    assert suggested_refresh(143.9) == 144 and suggested_refresh(72.5) == 72.5


def test_the_sidecar_block_and_the_monitor_record():
    uncalibrated = monitor_record("lab", calibrated=False, calibration_date=None, gamma_applied=False)
    assert uncalibrated["calibration_date"] is None and "no calibration" in uncalibrated["note"]
    calibrated = monitor_record("lab", calibrated=True, calibration_date=1700000000.0, gamma_applied=True)
    assert calibrated == {"name": "lab", "calibration_date": "2023-11-14T22:13:20+00:00", "gamma_applied": True}
    block = screen_record(requested_size=[800, 600], requested_hz=60, tolerance=0.02, measured_size=[800, 600],
                          measured_hz=None, mismatch=True, allowed=True, pixels_per_degree=30.123456,
                          monitor=calibrated)
    assert block["requested"] == {"size_px": [800, 600], "refresh_hz": 60.0, "refresh_tolerance": 0.02}
    assert block["measured"] == {"size_px": [800, 600], "refresh_hz": None}
    assert block["mismatch_allowed"] is True and block["pixels_per_degree"] == 30.1235


def test_a_calibration_saved_in_monitor_center_is_found(tmp_path, monkeypatch):
    """What the display reads from psychopy.monitors: a saved calibration's date and gamma."""
    calib = pytest.importorskip("psychopy.monitors.calibTools")
    monkeypatch.setattr(calib, "monitorFolder", str(tmp_path))
    saved = calib.Monitor("labscreen", width=53.0, distance=57.0, autoLog=False)
    saved.setCalibDate(1700000000.0)
    saved.setGamma([2.2, 2.2, 2.2])
    saved.save()
    assert "labscreen" in calib.getAllMonitors() and "otherscreen" not in calib.getAllMonitors()
    loaded = calib.Monitor("labscreen", autoLog=False)
    record = monitor_record("labscreen", calibrated=True, calibration_date=loaded.getCalibDate(),
                            gamma_applied=not loaded.gammaIsDefault())
    assert record == {"name": "labscreen", "calibration_date": "2023-11-14T22:13:20+00:00", "gamma_applied": True}


# --- the shipped YAML on screens of other sizes (Xvfb, real keys) ----------------------------------------
def _shipped(tmp_path: Path, **screen: object) -> Path:
    """The shipped gender YAML, its screen section as shipped (plus ``screen``), shortened to two
    random-bubbles trials on the tests' small face set."""
    data = yaml.safe_load(SHIPPED.read_text())
    data["screen"].update(screen)
    data.update(stimuli="orl32", conditions={"random": {}}, seed=5,
                timing={"fixation_frames": 2, "stimulus_frames": 3, "iti_frames": 2, "feedback_frames": 2})
    data["design"].update(blocks=["random"], repeats=1, trials_per_block=2, practice_trials=0)
    data["bubbles"]["sigma_px"] = 2.0
    path = tmp_path / f"shipped{len(list(tmp_path.glob('shipped*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(display: str, config: Path, results: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments", "run", str(config), "--participant", "p1",
                           "--session", "1", "--results", str(results), "--data-root", str(root), *extra],
                          cwd=REPO, env=_env(display), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.display
@pytest.mark.slow
@needs_xvfb
def test_the_shipped_yaml_refuses_another_screen_and_runs_on_its_own(screen_of, screen_session_on, results,
                                                                     tmp_path):
    root = tmp_path / "data"
    shipped = _shipped(tmp_path)
    assert yaml.safe_load(shipped.read_text())["screen"] == yaml.safe_load(SHIPPED.read_text())["screen"]

    # a 1280x1024 screen: refused in one line, before any participant file exists
    small = screen_of("1280x1024")
    refused = _run(small, shipped, results, root)
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert "\n" not in line, line
    assert line.startswith("error: screen mismatch: the window is 1280x1024 px but screen.resolution is "
                           "[1920, 1080]"), line
    assert "set screen.resolution: [1280, 1024] with this screen's width_cm" in line and str(shipped) in line
    assert not root.exists() or not any(root.rglob("sub-*"))

    # ... unless allowed: then it runs and the sidecar records the mismatch (Escape at once: exit 3)
    allowed = subprocess.Popen([sys.executable, "-m", "experiments", "run", str(shipped), "--participant", "p2",
                                "--session", "1", "--results", str(results), "--data-root", str(root),
                                "--allow-screen-mismatch"], cwd=REPO, env=_env(small),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _escape_until_done(allowed, small)
    assert allowed.returncode == 3
    sidecar = json.loads((root / "sub-p2/ses-1/beh/sub-p2_ses-1_task-gender_beh.json").read_text())
    assert sidecar["ScreenCheck"]["mismatch_allowed"] is True
    assert sidecar["ScreenCheck"]["measured"]["size_px"] == [1280, 1024]
    assert sidecar["ScreenCheck"]["requested"]["size_px"] == [1920, 1080]

    # its own size on Xvfb: the size passes, and Xvfb's refresh (it flips as fast as it can) is refused
    large = screen_of("1920x1080")
    refused = _run(large, shipped, results, root)
    assert refused.returncode == 2 and "screen mismatch: the " in refused.stderr, refused.stderr
    assert "refresh" in refused.stderr and "screen.resolution" not in refused.stderr
    assert not (root / "sub-p1").exists()

    # with the refresh check off for this virtual display (the only change), it runs: real key presses
    runs = _shipped(tmp_path, refresh_tolerance=None)
    person = screen_session_on(large, runs, results, root, task="gender", windowed=False)
    for key in ("f", "j"):
        person.answer(key)
    code, err = person.finish()
    assert code == 0, err
    assert list(read_trials(person.trial_file).response_key) == ["f", "j"]
    check = json.loads(person.trial_file.with_suffix(".json").read_text())["ScreenCheck"]
    assert check["requested"] == {"size_px": [1920, 1080], "refresh_hz": 60.0, "refresh_tolerance": None}
    assert check["measured"]["size_px"] == [1920, 1080] and check["mismatch"] is False
    assert check["mismatch_allowed"] is False
    # 1920 px over 53 cm at 57 cm: psychopy's degrees -> about 36 px per degree
    assert 35.5 < check["pixels_per_degree"] < 36.5
    assert check["monitor"]["name"] == "bubbles-lab" and check["monitor"]["calibration_date"] is None
    assert check["monitor"]["gamma_applied"] is False
    print(json.dumps(check, indent=2))


def _env(display: str) -> dict[str, str]:
    return {**os.environ, "DISPLAY": display}


def _escape_until_done(process: subprocess.Popen, display: str, patience: float = 90) -> None:
    """Press Escape on the session's window until the session ends (the window takes a moment to map)."""
    env = _env(display)
    deadline = time.time() + patience
    while process.poll() is None and time.time() < deadline:
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "PsychoPy"], env=env,
                               capture_output=True, text=True, timeout=10).stdout.split()
        if found:
            subprocess.run(["xdotool", "windowfocus", "--sync", found[0]], env=env, capture_output=True, timeout=5)
            subprocess.run(["xdotool", "key", "Escape"], env=env, capture_output=True, timeout=5)
        time.sleep(0.5)
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=30)
