"""Classic Bubbles out of the box: ``bubbles_classic.yaml`` runs after nothing but
``python -m stimuli prepare``, and every "make it with" hint, followed literally, makes the run work."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.engine import load_task
from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import read_trials

REPO = Path(__file__).resolve().parents[2]
CLASSIC = REPO / "experiments" / "bubbles_classic.yaml"


def _python(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m ...`` as a user types it, in ``cwd`` (so results/ is cwd's), this checkout's code."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _hinted(stderr: str, lead: str) -> list[str]:
    """The command an error line gives after ``lead``, as argv (``python -m`` dropped)."""
    line = stderr.strip()
    assert line.count("\n") == 0 and lead in line, line
    args = shlex.split(line.split(lead, 1)[1])
    assert args[:2] == ["python", "-m"], args
    return args[2:]


@pytest.mark.slow
def test_classic_runs_after_only_the_prepare_command_its_hint_gives(tmp_path):
    run = ["experiments", "run", str(CLASSIC), "--observer", "template", "--no-progress"]
    first = _python(run, tmp_path)  # a new lab: nothing prepared, no model anywhere
    assert first.returncode == 2
    assert ("make it with: python -m stimuli prepare --faces orl --size 128 --name orl128 --aperture"
            in first.stderr)
    assert not (tmp_path / "results" / "simulated").exists()  # refused before anything was written

    made = _python(_hinted(first.stderr, "make it with: "), tmp_path)
    assert made.returncode == 0, made.stderr
    done = _python(run, tmp_path)
    assert done.returncode == 0, done.stderr
    beh = tmp_path / "results" / "simulated" / "sub-template" / "ses-1" / "beh"
    path = beh / "sub-template_ses-1_task-gender_beh.tsv"
    assert f"session complete: 212 trials in {path.relative_to(tmp_path)}" in done.stdout
    table = read_trials(path)
    planned = load_task(CLASSIC, tmp_path / "results").plan(0)
    assert len(table) == len(planned) == 212 and set(table.condition) == {"random"}
    assert list(table.phase).count("practice") == 12 and table.correct.between(0, 1).all()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["Session"]["status"] == "complete" and list(sidecar["Masks"]["conditions"]) == ["random"]
    assert sidecar["TaskDescription"].startswith("Classic Bubbles")

    again = _python(run, tmp_path)  # the labels default: the next session, never the old one
    assert again.returncode == 0, again.stderr
    assert (beh.parent.parent / "ses-2" / "beh" / "sub-template_ses-2_task-gender_beh.tsv").is_file()
    assert read_trials(path).equals(table)


@pytest.mark.slow
def test_a_set_without_the_aperture_names_the_command_that_remakes_it(tmp_path, make_config):
    made = _python(["stimuli", "prepare", "--faces", "orl", "--size", "32", "--name", "orl32", "--out", "res"],
                   tmp_path)
    assert made.returncode == 0, made.stderr
    config = make_config()  # centres inside the face aperture (bubbles.region: aperture)
    run = ["experiments", "run", str(config), "--observer", "template", "--participant", "t1", "--session", "1",
           "--results", "res", "--data-root", "data", "--no-progress"]
    refused = _python(run, tmp_path)
    assert refused.returncode == 2 and not (tmp_path / "data").exists()
    remake = _hinted(refused.stderr, "re-make it with: ")
    assert remake == ["stimuli", "prepare", "--faces", "orl", "--size", "32", "--name", "orl32", "--out", "res",
                      "--aperture", "--force"]
    remade = _python(remake, tmp_path)
    assert remade.returncode == 0, remade.stderr
    assert len(list((tmp_path / "res" / "stimuli").glob("orl32.old-*"))) == 1  # moved aside, not deleted
    done = _python(run, tmp_path)
    assert done.returncode == 0 and "session complete: 15 trials" in done.stdout, done.stderr


def test_unused_guided_conditions_block_nothing(make_config, results, tmp_path):
    guided = {"random": {}, "guided": {"variant": "vgg16-imagenet-gender-s9"}}
    classic = make_config({"conditions": guided})  # blocks: [random]; no maps of s9 anywhere
    task = load_task(classic, results)
    assert task.used_conditions == ["random"]
    assert list(task.sidecar()["Masks"]["conditions"]) == ["random"]

    shown = make_config({"conditions": guided, "design": {"blocks": ["random", "guided"]}})
    with pytest.raises(InputError, match="condition 'guided': relevance maps .* not found; make them with: "
                                         "python -m model explain --variant vgg16-imagenet-gender-s9"):
        load_task(shown, results)
    practice = make_config({"conditions": guided, "design": {"practice_condition": "guided"}})
    with pytest.raises(InputError, match="condition 'guided'"):
        load_task(practice, results)
