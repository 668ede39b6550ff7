"""keys.backend: event (default) or ptb, validated on load, refused in one line without psychtoolbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.config import load_experiment
from experiments.keys import EventKeys, PtbKeys, ptb_problem
from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import read_trials

REPO = Path(__file__).resolve().parents[2]


def test_the_backend_is_validated_on_load(make_config):
    assert load_experiment(make_config()).keys.backend == "event"
    assert load_experiment(make_config({"keys": {"backend": "ptb"}})).keys.backend == "ptb"
    with pytest.raises(InputError, match=r"key 'keys.backend' must be one of event, ptb, got 'ptp' "
                                         r"\(did you mean 'ptb'\?\)"):
        load_experiment(make_config({"keys": {"backend": "ptp"}}))
    with pytest.raises(InputError, match="key 'keys.backend' must be one of event, ptb, got 'iohub'$"):
        load_experiment(make_config({"keys": {"backend": "iohub"}}))


def test_a_missing_psychtoolbox_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "psychtoolbox", None)
    assert ptb_problem().startswith("ModuleNotFoundError")


class _Clock:
    """An RT clock reading ``elapsed`` seconds since its reset (the onset flip)."""

    def __init__(self, elapsed: float) -> None:
        self.elapsed = elapsed

    def getTime(self) -> float:  # noqa: N802 (psychopy's name)
        return self.elapsed

    def getLastResetTime(self) -> float:  # noqa: N802 (on the epoch: must not be used with tDown)
        return 1.79e9


class _Press:
    def __init__(self, name: str, t_down: float) -> None:
        self.name, self.tDown = name, t_down


class _Keyboard:
    """Records what the display asks of psychopy's Keyboard and answers with HID presses."""

    def __init__(self, presses):
        self.presses, self.calls = presses, []

    def getKeys(self, keyList, waitRelease, clear):  # noqa: N802,N803 (psychopy's names)
        self.calls.append((tuple(keyList), waitRelease, clear))
        return [p for p in self.presses if p.name in keyList]

    def clearEvents(self):  # noqa: N802
        self.calls.append("clear")


def test_ptb_press_times_are_hid_times_from_the_onset():
    keyboard = _Keyboard([_Press("f", 100.250), _Press("j", 99.990)])
    keys = PtbKeys(keyboard, now=lambda: 100.5)  # psychopy's core time now; presses 0.25 and 0.51 s ago
    # RT = the RT clock's reading (reset at the onset flip, 0.3 s ago) minus the press's age;
    # a press before the onset is negative (the display then does not take it as an answer)
    assert keys.get(["f", "j"], _Clock(0.3)) == [("f", pytest.approx(0.05)), ("j", pytest.approx(-0.21))]
    assert keys.get(["escape"]) == []
    keys.clear()
    # presses are taken as they go down (not on release) and cleared once read
    assert keyboard.calls == [(("f", "j"), False, True), (("escape",), False, True), "clear"]
    assert keys.name == "ptb" and EventKeys(None).name == "event"


def _shadow_psychtoolbox(folder: Path) -> Path:
    """A ``psychtoolbox`` that fails to import as it does without its system libraries."""
    package = folder / "psychtoolbox"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        'raise ImportError("libjack.so.0: cannot open shared object file: No such file or directory")\n')
    return folder


@pytest.mark.display
@pytest.mark.skipif(not shutil.which("Xvfb"), reason="needs Xvfb")
def test_ptb_without_psychtoolbox_refuses_before_anything_is_written(screen, make_config, results, tmp_path):
    config = make_config({"keys": {"backend": "ptb"}})
    root = tmp_path / "data"
    shadow = _shadow_psychtoolbox(tmp_path / "shadow")
    env = {**os.environ, "DISPLAY": screen,
           "PYTHONPATH": os.pathsep.join([str(shadow), str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "experiments", "run", str(config), "--participant", "p1",
                           "--session", "1", "--windowed", "--results", str(results), "--data-root", str(root)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("error: keys.backend ptb: psychtoolbox cannot be used here "
                                                "(ImportError: libjack.so.0"), line
    assert line.endswith("or set keys.backend: event")
    assert not root.exists()


@pytest.mark.display
@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")), reason="needs Xvfb and xdotool")
@pytest.mark.skipif(ptb_problem() is not None, reason="psychtoolbox cannot be imported here")
def test_ptb_is_used_and_recorded_when_psychtoolbox_imports(screen_session, make_config, results, tmp_path):
    """Where psychtoolbox imports, the session reads keys through it and says so in the sidecar."""
    config = make_config({"keys": {"backend": "ptb"}, "design": {"trials_per_block": 2, "practice_trials": 0}})
    person = screen_session(config, results, tmp_path / "data", task="gender")
    for key in ("f", "j"):
        person.answer(key)
    code, err = person.finish()
    assert code == 0, err
    sidecar = json.loads(person.trial_file.with_suffix(".json").read_text())
    assert sidecar["KeysBackend"] == "ptb" and sidecar["Screen"]["keyboard"].startswith("psychopy.hardware")
    # the answers are the keys pressed, timed from the onset flip (a press's HID time carried onto
    # the RT clock: a wrong time base gives RTs of about -1.8e9 s, and the display ignores them)
    trials = read_trials(person.trial_file)
    keys = load_experiment(config).responses  # class name -> key
    assert [keys[answer] for answer in trials["response"]] == ["f", "j"]
    assert ((trials["rt_s"] > 0) & (trials["rt_s"] < 60)).all(), trials["rt_s"]


def test_a_session_started_before_these_settings_existed_still_resumes(make_config, results, tmp_path):
    """Sidecars written before keys.backend and screen.refresh_tolerance: the config compares at their defaults."""
    from experiments.engine import run_session
    from stimuli.contracts.trials import read_trials

    config = make_config({"design": {"trials_per_block": 4, "practice_trials": 0}, "screen": {"refresh_tolerance": 0.02}})
    done = run_session(config, "old1", 1, observer="template", data_root=tmp_path / "sim", results=results, seed=4,
                       progress=False)
    lines = done.path.read_text().splitlines(keepends=True)
    done.path.write_text("".join(lines[:3]))  # stopped after 2 trials
    sidecar_path = done.path.with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    # no screen, no keyboard: null in the sidecar, and no frame-interval file
    assert sidecar["ScreenCheck"] is None and sidecar["KeysBackend"] is None
    assert not list(done.path.parent.glob("*_events.*"))
    del sidecar["ExperimentConfig"]["keys"]["backend"], sidecar["ExperimentConfig"]["screen"]["refresh_tolerance"]
    sidecar_path.write_text(json.dumps(sidecar))
    resumed = run_session(config, "old1", 1, observer="template", data_root=tmp_path / "sim", results=results,
                          resume=True, progress=False)
    assert resumed.status == "complete" and list(read_trials(done.path).trial) == [1, 2, 3, 4]
    # a setting that really changed is still refused
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["ExperimentConfig"]["keys"]["backend"] = "ptb"
    sidecar["Session"]["status"] = "stopped"
    sidecar_path.write_text(json.dumps(sidecar))
    done.path.write_text("".join(lines[:3]))
    with pytest.raises(InputError, match="differs from the config this session started with \\(key 'keys'\\)"):
        run_session(config, "old1", 1, observer="template", data_root=tmp_path / "sim", results=results,
                    resume=True, progress=False)
