"""Data roots are BIDS datasets the official validator accepts; nothing private reaches git.

The validator is ``bids-validator`` 3.x from the ``bids-validator-deno`` wheel (a dev
dependency), run offline on folders written by real sessions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.__main__ import main
from experiments.bids import LEGACY_PROVENANCE, create_once, participant_columns
from experiments.engine import run_session
from experiments.observers import Observer
from experiments.task import QuitRequested
from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import SESSION_PROVENANCE_KEY, read_session_provenance, read_trials

REPO = Path(__file__).resolve().parents[2]
BIDS_FILES = {"dataset_description.json", "participants.tsv", "participants.json", "README.md"}


def validator() -> str:
    """The bids-validator-deno binary next to this Python, or on PATH; the test skips without it."""
    here = Path(sys.executable).parent / "bids-validator-deno"
    found = str(here) if here.is_file() else shutil.which("bids-validator-deno")
    if found is None:
        pytest.skip("the BIDS validator is not installed (pip install bids-validator-deno; a dev dependency)")
    return found


def validate(root: Path) -> tuple[list[dict], list[dict], dict]:
    """Errors, warnings and summary of the official validator on ``root`` (offline)."""
    done = subprocess.run([validator(), str(root), "--format", "json"], capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.strip(), done.stderr
    report = json.loads(done.stdout)
    issues = report["issues"]["issues"]
    return ([i for i in issues if i["severity"] == "error"], [i for i in issues if i["severity"] == "warning"],
            report["summary"])


def warning_lines(warnings: list[dict]) -> list[str]:
    """One line per warning code: the code, the keys or columns it names, how many files."""
    codes: dict[str, tuple[set, set]] = {}
    for issue in warnings:
        names, files = codes.setdefault(issue["code"], (set(), set()))
        names.update(filter(None, [issue.get("subCode")]))
        files.update(issue.get("affects") or [issue.get("location")])
    return [f"{code} {sorted(names)} ({len(files)} file(s))" for code, (names, files) in sorted(codes.items())]


def check_dataset(root: Path) -> None:
    """What every data root holds: the BIDS files, each sidecar's task keys, nothing BIDS does not name."""
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["DatasetType"] == "raw" and description["BIDSVersion"]
    generated = description["GeneratedBy"][0]
    assert generated["Name"] == "face-relevance" and generated["Version"]
    header = (root / "participants.tsv").read_text().splitlines()[0].split("\t")
    described = json.loads((root / "participants.json").read_text())
    assert set(header) <= set(described) and all(described[c]["Description"] for c in header)
    for beh in root.glob("sub-*/ses-*/beh"):
        for path in beh.iterdir():
            assert path.name.endswith(("_beh.tsv", "_beh.json", "_events.tsv", "_events.json")), path
        for trial_file in beh.glob("*_beh.tsv"):
            sidecar = json.loads(trial_file.with_suffix(".json").read_text())
            assert sidecar["TaskName"] and sidecar["TaskDescription"] and sidecar["Instructions"]
            assert read_session_provenance(trial_file) == sidecar[SESSION_PROVENANCE_KEY]


def _simulated(config: Path, results: Path, root: Path, participant: str, seed: int, observer: str = "template"):
    return run_session(config, participant, 1, observer=observer, data_root=root, results=results, seed=seed,
                       progress=False)


def test_simulated_data_root_is_a_valid_bids_dataset(make_config, results, tmp_path):
    root = tmp_path / "simulated"
    config = make_config()
    _simulated(config, results, root, "t1", 1)
    _simulated(config, results, root, "t2", 2, observer="template:mouth")
    assert {p.name for p in root.iterdir() if not p.name.startswith(".")} == BIDS_FILES | {"sub-t1", "sub-t2"}
    check_dataset(root)
    assert json.loads((root / "participants.json").read_text())["observer"]["Description"]
    errors, warnings, summary = validate(root)
    assert errors == [], errors
    assert sorted(summary["subjects"]) == ["t1", "t2"] and summary["tasks"] == ["gender"]
    assert {"TSV_ADDITIONAL_COLUMNS_UNDEFINED", "MISSING_DATASET_DESCRIPTION"}.isdisjoint(
        {w["code"] for w in warnings})
    assert not any(w.get("subCode") in ("TaskDescription", "Instructions") for w in warnings)
    print("\n".join(["validator warnings:", *warning_lines(warnings)]))


def test_what_a_lab_wrote_is_kept(make_config, results, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    lab = {"dataset_description.json": '{"Name": "Our study", "BIDSVersion": "1.10.0", "Authors": ["A. Lab"]}\n',
           "README": "our own words\n",
           "participants.json": '{"age": {"Description": "age in whole years", "Units": "year"}}\n'}
    for name, text in lab.items():
        (root / name).write_text(text)
    run_session(make_config(), "t1", 1, observer="template", data_root=root, results=results, seed=1,
                progress=False, participant_info={"group": "A"})
    assert (root / "dataset_description.json").read_text() == lab["dataset_description.json"]
    assert (root / "README").read_text() == lab["README"] and not (root / "README.md").exists()
    described = json.loads((root / "participants.json").read_text())
    assert described["age"] == {"Description": "age in whole years", "Units": "year"}  # kept
    assert set(described) == set(participant_columns()) | {"observer", "group"}  # in step with the header
    assert "not described in experiments/templates" in described["group"]["Description"]
    errors, warnings, _ = validate(root)
    assert errors == [] and "TSV_ADDITIONAL_COLUMNS_UNDEFINED" not in {w["code"] for w in warnings}

    assert create_once(root / "x.json", "first") and not create_once(root / "x.json", "second")
    assert (root / "x.json").read_text() == "first"


def test_an_age_that_is_not_a_number_is_refused_before_anything_is_written(make_config, results, tmp_path, capsys):
    root = tmp_path / "data"
    args = ["run", str(make_config()), "--participant", "t1", "--session", "1", "--observer", "template",
            "--results", str(results), "--data-root", str(root), "--no-progress"]
    for age in ("abc", "-3", "0", "nan", "1e9"):
        with pytest.raises(SystemExit) as stop:
            main([*args, "--age", age])
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and err.count("\n") == 0
        assert f"age '{age}': must be a number of years from 1 to 120" in err
        assert not root.exists()
    # a script calling the engine meets the same rule
    with pytest.raises(InputError, match="age 'abc': must be a number of years from 1 to 120"):
        run_session(make_config(), "t1", 1, observer="template", data_root=root, results=results, seed=1,
                    participant_info={"age": "abc"}, progress=False)
    assert not root.exists()
    assert main([*args, "--age", "24.5", "--sex", "female", "--handedness", "left"]) == 0
    assert (root / "participants.tsv").read_text().splitlines()[1] == "sub-t1\t24.5\tfemale\tleft\ttemplate"
    errors, _, _ = validate(root)
    assert errors == [], errors


class _QuitAtOnce(Observer):
    kind = "quitter"

    def respond(self, trials):
        raise QuitRequested


def test_no_participant_row_for_a_session_without_an_answered_trial(make_config, results, tmp_path):
    root = tmp_path / "data"
    config = make_config()
    stopped = run_session(config, "q1", 1, observer=_QuitAtOnce(), data_root=root, results=results, seed=1,
                          progress=False)
    assert stopped.status == "stopped" and stopped.trials_done == 0
    assert (root / "participants.tsv").read_text().splitlines() == ["\t".join(participant_columns())]
    sidecar = json.loads(stopped.path.with_suffix(".json").read_text())
    assert sidecar["Session"]["status"] == "stopped" and sidecar[SESSION_PROVENANCE_KEY]["trials_done"] == 0

    _simulated(config, results, root, "t1", 2)
    rows = (root / "participants.tsv").read_text().splitlines()[1:]
    assert [r.split("\t")[0] for r in rows] == ["sub-t1"]


def test_sessions_written_before_keep_their_provenance_and_validate(make_config, results, tmp_path):
    """An old data root: provenance.json next to each trial file, no dataset files. Its provenance
    is still read, a resume moves nothing, and the validator passes (the old file is bidsignored)."""
    root = tmp_path / "old"
    config = make_config()
    done = _simulated(config, results, root, "t1", 4)
    # turn it into a session written the old way, stopped after 6 trials
    sidecar_path = done.path.with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    record = sidecar.pop(SESSION_PROVENANCE_KEY)
    for key in ("TaskDescription", "Instructions"):
        sidecar.pop(key)
    del sidecar["ExperimentConfig"]["description"]  # a config recorded before the key existed
    sidecar["Session"]["status"] = "stopped"
    sidecar_path.write_text(json.dumps(sidecar))
    legacy = done.path.parent / "provenance.json"
    legacy.write_text(json.dumps(record))
    lines = done.path.read_text().splitlines(keepends=True)
    done.path.write_text("".join(lines[:7]))
    for name in ("dataset_description.json", "participants.json", "README.md"):
        (root / name).unlink()
    assert read_session_provenance(done.path) == record

    resumed = run_session(config, "t1", 1, observer="template", data_root=root, results=results, resume=True,
                          progress=False)
    assert resumed.status == "complete" and len(read_trials(done.path)) == 15
    after = json.loads(sidecar_path.read_text())
    assert after["TaskDescription"] and after["Instructions"] and "description" not in after["ExperimentConfig"]
    assert legacy.read_text() == json.dumps(record)  # kept as it was, never moved or deleted
    now = read_session_provenance(done.path)
    assert now["session_status"] == "complete" and now["started"] >= record["started"]
    assert LEGACY_PROVENANCE in (root / ".bidsignore").read_text().splitlines()
    assert (root / "dataset_description.json").is_file() and (root / "participants.json").is_file()
    errors, _, _ = validate(root)
    assert errors == [], errors


@pytest.mark.display
@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                    reason="needs Xvfb and xdotool (apt-get install xvfb xdotool; .ci/run does)")
def test_human_and_simulated_sessions_pass_the_official_validator(screen_session, make_config, results, tmp_path):
    validator()  # skip before starting sessions when it is missing
    root = tmp_path / "data"
    config = make_config({"seed": 5, "design": {"trials_per_block": 3, "practice_trials": 1},
                          "timing": {"fixation_frames": 2, "stimulus_frames": 3, "iti_frames": 2,
                                     "feedback_frames": 2}})
    for session in ("1", "2"):  # two sessions of one person, answered with real key presses
        person = screen_session(config, results, root, "--session", session, "--age", "31", "--sex", "F",
                                "--handedness", "R", task="gender")
        person.trial_file = root / "sub-p1" / f"ses-{session}" / "beh" / f"sub-p1_ses-{session}_task-gender_beh.tsv"
        for key in ("f", "j", "f", "j"):
            person.answer(key)
        code, err = person.finish()
        assert code == 0, err
        assert len(read_trials(person.trial_file)) == 4
    _simulated(config, results, root, "t1", 1)
    _simulated(config, results, root, "t2", 2)

    check_dataset(root)
    rows = (root / "participants.tsv").read_text().splitlines()
    assert rows == ["participant_id\tage\tsex\thandedness\tobserver", "sub-p1\t31\tF\tR\tn/a",
                    "sub-t1\tn/a\tn/a\tn/a\ttemplate", "sub-t2\tn/a\tn/a\tn/a\ttemplate"]
    errors, warnings, summary = validate(root)
    assert errors == [], errors
    assert sorted(summary["subjects"]) == ["p1", "t1", "t2"] and sorted(summary["sessions"]) == ["1", "2"]
    listing = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    print("\n".join(["validator warnings:", *warning_lines(warnings), "files:", *listing]))


@pytest.mark.slow
def test_a_session_in_a_fresh_clone_leaves_git_status_clean(make_config, results, tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=300)
    assert not (clone / "participants" / "participants.tsv").exists()  # only its template is tracked
    env = {**os.environ, "PYTHONPATH": str(clone)}
    env.pop("DISPLAY", None)
    config = make_config()
    base = [sys.executable, "-m", "experiments", "run", str(config), "--observer", "template", "--results",
            str(results), "--no-progress", "--age", "40", "--sex", "M"]
    for extra in (["--data-root", "participants", "--participant", "t1", "--session", "1"], []):
        done = subprocess.run(base + extra, cwd=clone, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert "sub-t1\t40\tM" in (clone / "participants" / "participants.tsv").read_text()
    assert (clone / "results" / "simulated" / "sub-template" / "ses-1").is_dir()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == ""
    ignored = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=clone, capture_output=True,
                             text=True, check=True).stdout
    assert "!! participants/participants.tsv" in ignored or "!! participants/" in ignored
