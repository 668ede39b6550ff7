"""Experiment YAMLs: the shipped ones load; bad ones fail with one line, before any window opens."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from experiments.__main__ import main
from experiments.config import load_experiment
from experiments.engine import load_task
from stimuli.contracts.errors import InputError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_window(monkeypatch):
    """Replace the display module: if a test got as far as opening a window, it fails."""
    fake = types.ModuleType("experiments.display")

    class Display:
        def __init__(self, *args, **kwargs):
            raise AssertionError("a window was opened")

    def ask_participant(defaults):
        raise AssertionError("a dialog was opened")

    fake.Display = Display
    fake.ask_participant = ask_participant
    monkeypatch.setitem(sys.modules, "experiments.display", fake)
    import experiments

    monkeypatch.setattr(experiments, "display", fake, raising=False)


@pytest.mark.parametrize("name", ["bubbles_gender.yaml", "bubbles_identity.yaml"])
def test_shipped_configs_load(name):
    config = load_experiment(REPO / "experiments" / name)
    assert config.paradigm == "bubbles" and config.classify == config.task
    assert set(config.design.blocks) == {"random", "guided", "antiguided"}
    assert not set(config.responses.values()) & set(config.keys.quit)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"bubbles": {"sigmapx": 3.0}}, "unknown key 'bubbles.sigmapx' (did you mean 'bubbles.sigma_px'?)"),
        ({"desing": {}}, "unknown key 'desing' (did you mean 'design'?)"),
        ({"bubbles": {"sigma_px": -2.0}}, "key 'bubbles.sigma_px' must be a positive number of pixels"),
        ({"responses": {"female": "escape", "male": "j"}}, "key 'responses' uses key 'escape', which is also a quit key"),
        ({"keys": {"quit": ["q"]}, "responses": {"female": "q", "male": "j"}}, "uses key 'q', which is also a quit key"),
        ({"responses": {"female": "f", "male": "f"}}, "gives key 'f' to more than one answer"),
        ({"responses": {"female": "esc", "male": "j"}}, "unknown key name 'esc'"),
        ({"design": {"blocks": ["random", "gided"]}}, "key 'design.blocks[1]' 'gided' is not a condition"),
        ({"conditions": {"guided": {}}}, "key 'conditions.guided.variant' is needed"),
        ({"staircase": {"target": 1.5}}, "key 'staircase.target' must lie between 0 and 1"),
        ({"timing": {"stimulus_frames": 0}}, "key 'timing.stimulus_frames' must be at least 1 frame"),
        ({"design": {"trials_per_block": "many"}}, "key 'design.trials_per_block' should be int"),
        ({"paradigm": "bubles"}, "key 'paradigm' must be one of bubbles"),
    ],
)
def test_bad_config_fails_with_one_line_before_a_window(make_config, results, tmp_path, capsys, no_window,
                                                        changes, needle):
    path = make_config(changes)
    data_root = tmp_path / "data"
    with pytest.raises(SystemExit) as stop:
        main(["run", str(path), "--participant", "01", "--session", "1", "--results", str(results),
              "--data-root", str(data_root)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {path}") and needle in err
    assert not data_root.exists()


def test_missing_stimulus_set_names_the_command_that_makes_it(make_config, results, tmp_path, capsys, no_window):
    path = make_config({"stimuli": "orl99"})
    with pytest.raises(SystemExit) as stop:
        main(["run", str(path), "--participant", "01", "--session", "1", "--results", str(results),
              "--data-root", str(tmp_path / "data")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.count("\n") == 0
    assert "prepared stimulus set 'orl99' not found" in err
    assert f"python -m stimuli prepare --faces orl --size 99 --name orl99 --aperture --out {results}" in err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"responses": {"male": None, "man": "j"}}, "'man' is not a gender of stimulus set 'orl32'"),
        ({"conditions": {"random": {}, "guided": {"variant": "vgg16-x-gender-s0"}},
          "design": {"blocks": ["random", "guided"]}},
         "condition 'guided': relevance maps"),
        ({"staircase": {"start_bubbles": 5000}}, "exceeds the most bubbles"),
        ({"bubbles": {"region": "nose2"}}, "key 'bubbles.region': unknown region 'nose2'"),
    ],
)
def test_config_that_does_not_fit_the_inputs_fails_before_a_window(make_config, results, tmp_path, capsys,
                                                                   no_window, changes, needle):
    path = make_config(changes)
    with pytest.raises(SystemExit):
        main(["run", str(path), "--participant", "01", "--session", "1", "--results", str(results),
              "--data-root", str(tmp_path / "data")])
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err, err
    assert not (tmp_path / "data").exists()


def test_guided_condition_without_maps_names_the_explain_command(make_config, results):
    path = make_config({"conditions": {"random": {}, "antiguided": {"variant": "vgg16-imagenet-gender-s0"}},
                        "design": {"blocks": ["antiguided"]}})
    with pytest.raises(InputError, match="python -m model explain --variant vgg16-imagenet-gender-s0 "
                                         "--stimuli orl32"):
        load_task(path, results)
