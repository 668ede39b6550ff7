"""Attacks on ``python -m analysis``: an output folder aimed at data or results, and trial
files analysed on another stimulus set than the one they were shown on.

Every refusal is one line with exit 2, and nothing outside the command's own output
changes (every file of the data and results roots is hashed before and after).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ci_simulation import simulate_trials, write_trial_file
from cli_checks import one_line_error, snapshot

from analysis.__main__ import main
from stimuli.contracts.prepared import load_prepared_set, write_prepared_set
from stimuli.contracts.provenance import read_provenance
from stimuli.contracts.trials import sidecar_path

REPO = Path(__file__).resolve().parents[2]
SHAPE = (40, 40)



def _set(results: Path, name: str, shape=SHAPE, seed: int = 0) -> None:
    images = np.random.default_rng(seed).random((4, *shape)).astype(np.float32)
    manifest = pd.DataFrame({"stimulus_id": [f"face{i:02d}" for i in range(4)], "identity": list("abcd"),
                             "gender": ["female", "male"] * 2, "source": "synthetic"})
    write_prepared_set(results / "stimuli" / name, images, manifest, background=0.5)


def _record(results: Path, name: str) -> dict:
    """The sidecar's StimulusSet entry, as the session engine writes it."""
    stim = load_prepared_set(name, results)
    return {"name": stim.name, "shape": list(stim.shape), "background": stim.background,
            "manifest_sha256": hashlib.sha256((stim.folder / "manifest.csv").read_bytes()).hexdigest(),
            "content_sha256": stim.content_hash}


@pytest.fixture
def study(tmp_path):
    """(results root with set 'faces40', BIDS-like data root of three sessions shown on it)."""
    results = tmp_path / "results"
    _set(results, "faces40")
    data = tmp_path / "participants"
    data.mkdir()
    (data / "dataset_description.json").write_text('{"Name": "lab", "BIDSVersion": "1.9.0"}\n')
    (data / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\nsub-03\n")
    record = _record(results, "faces40")
    for i in range(3):
        rows = simulate_trials(SHAPE, "eyes", n_trials=120, sigma_px=2.5, n_bubbles=(6, 12), seed=i)
        path = write_trial_file(data, f"{i + 1:02d}", 1, "gender", rows)
        sidecar = json.loads(sidecar_path(path).read_text())
        sidecar_path(path).write_text(json.dumps({**sidecar, "StimulusSet": record}))
    return results, data


def ci_args(data: Path, results: Path, out: Path, *extra: str, stimuli: str = "faces40") -> list[str]:
    return ["ci", "--data-root", str(data), "--task", "gender", "--stimuli", stimuli, "--results", str(results),
            "--out", str(out), "--min-trials", "50", *extra]



def test_ci_out_participants_overwrite_is_refused_as_a_command(study):
    results, data = study
    before, kept = snapshot(data), snapshot(results)
    run = subprocess.run([sys.executable, "-m", "analysis", *ci_args(data, results, data, "--force")],
                         capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "participants: refusing to replace it: it is a results or data root this command reads" in run.stderr
    assert snapshot(data) == before and snapshot(results) == kept


def test_ci_out_refuses_results_roots_other_data_roots_and_others_outputs(study, tmp_path, capsys):
    results, data = study
    lab = tmp_path / "old_study"  # another data root, not the one analysed
    lab.mkdir()
    (lab / "participants.tsv").write_text("participant_id\nsub-09\n")
    render = tmp_path / "render"  # an output of another command
    render.mkdir()
    (render / "provenance.json").write_text(json.dumps({"command": ["python", "-m", "stimuli", "render"]}))
    before = snapshot(tmp_path)
    err = one_line_error(capsys, main, ci_args(data, results, results, "--force"))
    assert "results: refusing to replace it: it is a results or data root this command reads" in err
    err = one_line_error(capsys, main, ci_args(data, results, lab, "--force"))
    assert "refusing to replace it: it is a data root (participants.tsv)" in err
    err = one_line_error(capsys, main, ci_args(data, results, render, "--force"))
    assert "it was made by `stimuli render`, not by `analysis ci`" in err
    err = one_line_error(capsys, main, ci_args(data, results, tmp_path, "--force"))
    assert "it holds a results or data root this command reads" in err
    assert snapshot(tmp_path) == before
    # a new folder inside a data root: BIDS names no such folder, and nothing is made
    for root, inside in ((data, data / "ci"), (lab, lab / "derived" / "ci")):
        err = one_line_error(capsys, main, ci_args(data, results, inside))
        assert f"refusing to write an output inside the data root {root.resolve()} " in err
    assert snapshot(tmp_path) == before and not (data / "ci").exists()


def test_ci_overwrite_of_its_own_output_moves_the_old_one_aside(study, tmp_path, capsys):
    results, data = study
    out = tmp_path / "analysis" / "ci"
    assert main(ci_args(data, results, out, "--conditions", "random")) == 0
    first, data_before = snapshot(out), snapshot(data)
    assert main(ci_args(data, results, out, "--force", "--alpha", "0.01")) == 0
    assert "moved aside to" in capsys.readouterr().err
    aside = [p for p in out.parent.iterdir() if p.name.startswith("ci.old-")]
    assert len(aside) == 1 and snapshot(aside[0]) == first
    assert read_provenance(out)["tool"] == "analysis ci" and read_provenance(out)["config"]["alpha"] == 0.01
    assert snapshot(data) == data_before


def test_ci_on_another_stimulus_set_is_refused(study, tmp_path, capsys):
    results, data = study
    _set(results, "faces48", shape=(48, 48))
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(ci_args(data, results, tmp_path / "out", stimuli="faces48"))
    *warnings, err = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2 and err.startswith("error: no classification image could be computed")
    assert len(warnings) == 3 and all(w.startswith("warning: ") for w in warnings)
    assert "it was made with stimulus set 'faces40' (40x40), not 'faces48' (48x48) (--stimuli faces48)" in err
    assert snapshot(tmp_path) == before


def test_a_session_on_an_altered_set_is_excluded_with_its_reason(study, tmp_path, capsys):
    results, data = study
    side = sidecar_path(data / "sub-03" / "ses-1" / "beh" / "sub-03_ses-1_task-gender_beh.tsv")
    sidecar = json.loads(side.read_text())
    sidecar["StimulusSet"]["content_sha256"] = "0" * 64  # shown on an earlier version of the set
    side.write_text(json.dumps(sidecar))
    old = data / "sub-02" / "ses-1" / "beh" / "sub-02_ses-1_task-gender_beh.json"  # an older session: no hash
    sidecar = json.loads(old.read_text())
    del sidecar["StimulusSet"]["content_sha256"]
    old.write_text(json.dumps(sidecar))
    out = tmp_path / "out"
    assert main(ci_args(data, results, out, "--conditions", "random")) == 0
    err = capsys.readouterr().err
    assert "records no content hash of stimulus set 'faces40'" in err
    exclusions = pd.read_csv(out / "tables" / "ci_exclusions.csv", dtype={"participant": str})
    refused = exclusions[exclusions.participant == "03"].reason.iloc[0]
    assert "stimulus set 'faces40' (40x40) changed since (content hash 000000000000 then" in refused
    with np.load(out / "maps" / "ci_group_gender_random.npz") as maps:
        assert maps["participants"].tolist() == ["01", "02"]
    err = one_line_error(capsys, main, ci_args(data, results, tmp_path / "strict", "--strict"))
    assert "--strict: nothing written" in err and not (tmp_path / "strict").exists()


def test_a_session_with_a_damaged_sidecar_is_excluded_not_left_unchecked(study, tmp_path, capsys):
    """A sidecar cut mid-write (or edited into a list) cannot vouch for the set the session
    showed: the session is left out with the reason, never analysed unchecked."""
    results, data = study
    side = sidecar_path(data / "sub-03" / "ses-1" / "beh" / "sub-03_ses-1_task-gender_beh.tsv")
    side.write_text(side.read_text()[:40])  # torn JSON
    listed = sidecar_path(data / "sub-02" / "ses-1" / "beh" / "sub-02_ses-1_task-gender_beh.tsv")
    listed.write_text(json.dumps([json.loads(listed.read_text())]))
    out = tmp_path / "out"
    assert main(ci_args(data, results, out, "--conditions", "random")) == 0
    exclusions = pd.read_csv(out / "tables" / "ci_exclusions.csv", dtype={"participant": str})
    reasons = dict(zip(exclusions.participant, exclusions.reason))
    assert f"{side}: unreadable sidecar" in reasons["03"]
    assert f"{listed}: the sidecar must be a JSON object (it is a list)" in reasons["02"]
    with np.load(out / "maps" / "ci_group_gender_random.npz") as maps:
        assert maps["participants"].tolist() == ["01"]
