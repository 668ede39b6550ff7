"""Attacks on ``stimuli render --force``: an output replaces only an earlier render's own folder.

Each attack is refused with one line (exit 2) and nothing outside the command's own output
changes: every file of the data and results roots is hashed before and after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli_checks import one_line_error, snapshot

from stimuli.__main__ import main
from stimuli.contracts.provenance import read_provenance

REPO = Path(__file__).resolve().parents[2]


def render_args(results: Path, out: Path, *extra: str) -> list[str]:
    return ["render", "--stimuli", "small", "--mode", "random", "--n-bubbles", "3", "--sigma", "2",
            "--count", "4", "--results", str(results), "--out", str(out), *extra]


def test_render_force_onto_a_data_root_is_refused_as_a_command(study):
    results, data = study
    before, kept = snapshot(data), snapshot(results)
    run = subprocess.run([sys.executable, "-m", "stimuli", *render_args(results, data, "--force")],
                         capture_output=True, text=True, cwd=REPO, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "refusing to replace it: it is a data root (dataset_description.json)" in run.stderr
    assert snapshot(data) == before and snapshot(results) == kept


def test_render_force_refuses_results_roots_trial_files_others_outputs_and_cwd(study, tmp_path, capsys,
                                                                              monkeypatch):
    results, data = study
    other_root = tmp_path / "elsewhere"
    (other_root / "models").mkdir(parents=True)
    (other_root / "provenance.json").write_text(json.dumps({"tool": "stimuli render", "command": []}))
    backup = tmp_path / "backup"  # trial files deep inside, and even a provenance of render
    (backup / "2025" / "sub-02" / "ses-1" / "beh").mkdir(parents=True)
    (backup / "2025" / "sub-02" / "ses-1" / "beh" / "sub-02_ses-1_task-gender_beh.tsv").write_text("trial\n")
    (backup / "provenance.json").write_text(json.dumps({"tool": "stimuli render", "command": []}))
    plain = tmp_path / "notes"
    plain.mkdir()
    (plain / "todo.txt").write_text("keep me")
    before = snapshot(tmp_path)

    err = one_line_error(capsys, main, render_args(results, results, "--force"))
    assert "refusing to replace it: it is a results or data root this command reads" in err
    err = one_line_error(capsys, main, render_args(results, other_root, "--force"))
    assert "it is a results root (it holds models/)" in err
    err = one_line_error(capsys, main, render_args(results, backup, "--force"))
    assert "it holds participant or simulated data (2025/sub-02/ses-1/beh/sub-02_ses-1_task-gender_beh.tsv)" in err
    err = one_line_error(capsys, main, render_args(results, results / "stimuli" / "small", "--force"))
    assert "it was made by `stimuli prepare`, not by `stimuli render`" in err
    err = one_line_error(capsys, main, render_args(results, plain, "--force"))
    assert "it holds no provenance.json, so it is not an output of `stimuli render`" in err
    monkeypatch.chdir(plain)
    err = one_line_error(capsys, main, render_args(results, Path("."), "--force"))
    assert "refusing to replace it: it is the current directory" in err
    assert snapshot(tmp_path) == before


def test_render_replaces_its_own_output_and_moves_the_old_one_aside(study, tmp_path, capsys):
    results, data = study
    out = tmp_path / "render"
    assert main(render_args(results, out, "--seed", "1")) == 0
    first = snapshot(out)
    data_before = snapshot(data)
    assert main(render_args(results, out, "--seed", "2", "--force")) == 0
    assert "moved aside to" in capsys.readouterr().err
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("render.old-")]
    assert len(aside) == 1 and snapshot(aside[0]) == first  # the earlier output, byte for byte
    assert snapshot(out) != first and read_provenance(out)["tool"] == "stimuli render"
    assert snapshot(data) == data_before
