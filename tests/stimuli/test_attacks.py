"""Attacks on stimulus data: outputs replacing what they did not make, sessions and relevance
maps used with another version of their stimulus set, oversized images, file permissions.

Each attack is refused with one line (exit 2 from a command) and nothing outside the
command's own output changes: every file of the data and results roots is hashed before
and after.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_checks import one_line_error, snapshot

from stimuli.__main__ import main
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set, write_prepared_set
from stimuli.contracts.provenance import atomic_output_dir, atomic_write_text, read_provenance
from stimuli.contracts.relevance import load_relevance, relevance_path, save_relevance
from stimuli.faces import load_face_set, read_image
from stimuli.prepare import MAX_IMAGE_PIXELS, prepare_set

REPO = Path(__file__).resolve().parents[2]




@pytest.fixture
def study(tmp_path, face_folder):
    """A results root with prepared set 'small' (24 px) and a BIDS-like data root with one session."""
    results = tmp_path / "results"
    prepare_set(face_folder, 24, "small", results=results, aperture=True, progress=False,
                command=["python", "-m", "stimuli", "prepare"])
    data = tmp_path / "participants"
    beh = data / "sub-01" / "ses-1" / "beh"
    beh.mkdir(parents=True)
    (data / "dataset_description.json").write_text('{"Name": "lab", "BIDSVersion": "1.9.0"}\n')
    (data / "participants.tsv").write_text("participant_id\tage\nsub-01\t30\n")
    (beh / "sub-01_ses-1_task-gender_beh.tsv").write_text("trial\tcorrect\n1\t1\n")
    (beh / "sub-01_ses-1_task-gender_beh.json").write_text('{"trial": {"Description": "n"}}\n')
    return results, data


def render_args(results: Path, out: Path, *extra: str) -> list[str]:
    return ["render", "--stimuli", "small", "--mode", "random", "--n-bubbles", "3", "--sigma", "2",
            "--count", "4", "--results", str(results), "--out", str(out), *extra]


# ------------------------------------------------------------------ outputs replacing data


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


def test_prepare_force_replaces_its_own_set_only_and_keeps_the_old_one(study, face_folder, tmp_path, capsys):
    results, _ = study
    old = load_prepared_set("small", results).content_hash
    assert main(["prepare", "--faces", str(face_folder), "--size", "24", "--name", "small", "--out", str(results),
                 "--contrast", "0.05", "--force"]) == 0
    new = load_prepared_set("small", results).content_hash
    aside = [p for p in (results / "stimuli").iterdir() if p.name.startswith("small.old-")]
    assert len(aside) == 1 and new != old
    assert json.loads((aside[0] / "set.json").read_text())["content_sha256"] == old
    assert load_prepared_set(aside[0]).content_hash == old  # still whole, still usable


def test_atomic_output_dir_checks_before_work_and_never_deletes(tmp_path):
    data = tmp_path / "participants"
    data.mkdir()
    (data / "participants.tsv").write_text("participant_id\nsub-01\n")
    ran = []
    with pytest.raises(InputError, match="it is a data root .participants.tsv."):
        with atomic_output_dir(data, replace=True, command="analysis ci"):
            ran.append(True)
    assert not ran and (data / "participants.tsv").read_text() == "participant_id\nsub-01\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["participants"]


# --------------------------------------------------------------------------- the set hash


def test_the_content_hash_covers_pixels_manifest_and_parameters(study):
    results, _ = study
    stim = load_prepared_set("small", results)
    recorded = stim.info["content_sha256"]
    assert stim.content_hash == recorded and len(recorded) == 64
    # one pixel changed by hand after preparing: the set says so when its hash is asked for
    first = stim.folder / stim.manifest.file.iloc[0]
    from PIL import Image

    pixels = np.asarray(Image.open(first)).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(first)
    with pytest.raises(InputError, match=r"was altered after it was prepared .*python -m stimuli prepare"):
        load_prepared_set("small", results).content_hash  # noqa: B018
    # the same pixels re-encoded hash the same: the hash is of pixels, not PNG bytes
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(first, compress_level=1)
    assert load_prepared_set("small", results).content_hash == recorded
    info = json.loads((stim.folder / "set.json").read_text())
    info["background"] = 0.25
    (stim.folder / "set.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="altered"):
        load_prepared_set("small", results).content_hash  # noqa: B018


EXPERIMENT = {
    "paradigm": "bubbles", "task": "gender", "stimuli": "small",
    "responses": {"female": "f", "male": "j"}, "stimulus_deg": 4.0,
    "screen": {"resolution": [640, 480], "fullscreen": False, "width_cm": 30.0, "distance_cm": 57.0},
    "timing": {"fixation_frames": 1, "stimulus_frames": 1, "iti_frames": 1, "feedback_frames": 1},
    "bubbles": {"sigma_px": 2.0},
    "conditions": {"random": {}},
    "design": {"blocks": ["random"], "repeats": 1, "trials_per_block": 8, "practice_trials": 0},
    "staircase": {"start_bubbles": 6},
    "template_observer": {"region": "eyes", "full_view_accuracy": 0.95},
}


def _experiment(tmp_path: Path, **changes) -> Path:
    import yaml

    path = tmp_path / f"exp{len(list(tmp_path.glob('exp*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump({**EXPERIMENT, **changes}))
    return path


def test_resume_on_a_re_prepared_set_is_refused(study, face_folder, tmp_path, capsys):
    from experiments.__main__ import main as run_main
    from experiments.engine import run_session

    results, _ = study
    data = tmp_path / "sim"
    config = _experiment(tmp_path)
    done = run_session(config, "r1", 1, observer="template", data_root=data, results=results, seed=3,
                       progress=False)
    sidecar = json.loads(done.path.with_suffix(".json").read_text())
    assert sidecar["StimulusSet"]["content_sha256"] == load_prepared_set("small", results).content_hash
    lines = done.path.read_text().splitlines(keepends=True)
    done.path.write_text("".join(lines[:4]))  # stopped after 3 trials
    prepare_set(face_folder, 24, "small", results=results, aperture=True, progress=False, contrast=0.05,
                force=True, command=["python", "-m", "stimuli", "prepare"])
    assert "was moved aside to" in capsys.readouterr().err
    before = snapshot(data)
    with pytest.raises(SystemExit) as stop:
        run_main(["run", str(config), "--participant", "r1", "--session", "1", "--observer", "template",
                  "--data-root", str(data), "--results", str(results), "--resume"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert "cannot resume: stimulus set 'small' (24x24) changed since (content hash" in err
    assert snapshot(data) == before


# ------------------------------------------------------------- relevance of an older set


def test_relevance_of_an_older_set_version_is_refused_by_render_and_guided_sessions(study, face_folder,
                                                                                     tmp_path, capsys):
    from experiments.engine import load_task

    results, _ = study
    stim = load_prepared_set("small", results)
    n = len(stim)
    path = relevance_path("fake-v", "small", results)
    save_relevance(path, np.ones((n, 24, 24), np.float32), stim.manifest.stimulus_id, np.zeros(n), np.zeros(n),
                   np.zeros(n), {"variant": "fake-v", "stimulus_set_sha256": stim.content_hash})
    assert load_relevance("fake-v", "small", results).meta["stimulus_set_sha256"] == stim.content_hash
    guided = _experiment(tmp_path, conditions={"guided": {"variant": "fake-v", "maps": "per_image"}},
                         design={"blocks": ["guided"], "repeats": 1, "trials_per_block": 4, "practice_trials": 0})
    load_task(guided, results)  # the maps fit the set as it is
    prepare_set(face_folder, 24, "small", results=results, aperture=True, progress=False, contrast=0.05,
                force=True, command=["python", "-m", "stimuli", "prepare"])
    capsys.readouterr()
    before = snapshot(results)
    with pytest.raises(InputError, match=r"condition 'guided': .*small.npz: made on another version of "
                                         r"stimulus set 'small' .*python -m model explain"):
        load_task(guided, results)
    err = one_line_error(capsys, main, ["render", "--stimuli", "small", "--mode", "guided", "--variant", "fake-v",
                                  "--n-bubbles", "3", "--sigma", "2", "--results", str(results),
                                  "--out", str(tmp_path / "g")])
    assert "made on another version of stimulus set 'small'" in err and "re-make them with" in err
    assert snapshot(results) == before and not (tmp_path / "g").exists()


def test_relevance_without_a_set_hash_is_used_with_a_warning(study, capsys):
    results, _ = study
    stim = load_prepared_set("small", results)
    n = len(stim)
    save_relevance(relevance_path("old-v", "small", results), np.ones((n, 24, 24), np.float32),
                   stim.manifest.stimulus_id, np.zeros(n), np.zeros(n), np.zeros(n), {"variant": "old-v"})
    assert len(load_relevance("old-v", "small", results)) == n
    err = capsys.readouterr().err
    assert "records no stimulus-set hash" in err and "python -m model explain --variant old-v" in err


# ------------------------------------------------------------------------- image sizes


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` grey pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(("width", "height", "needle"), [
    (20000, 20000, "has 400,000,000 pixels, over the limit of 50,000,000 per image"),
    (8000, 8000, "has 8000x8000 = 64,000,000 pixels, over the limit of 50,000,000 per image"),
])
def test_prepare_refuses_huge_images_in_one_line_before_writing(tmp_path, face_folder, capsys, width, height,
                                                                 needle):
    faces = face_folder
    _png_header(faces / "p0" / "1.png", width, height)
    results = tmp_path / "results"
    err = one_line_error(capsys, main, ["prepare", "--faces", str(faces), "--size", "24", "--name", "s",
                                  "--out", str(results)])
    assert needle in err and "p0/1.png" in err and not results.exists()
    assert width * height > MAX_IMAGE_PIXELS
    if width * height > 2 * 89478485:  # beyond PIL's own guard: a reader that decodes says so in one line too
        with pytest.raises(InputError, match="cannot read image"):
            read_image(faces / "p0" / "1.png")
        with pytest.raises(InputError, match="cannot read image"):
            load_face_set(faces)


def test_prepare_refuses_a_huge_size_in_one_line(tmp_path, face_folder, capsys):
    for size in ("100000", "1025"):
        err = one_line_error(capsys, main, ["prepare", "--faces", str(face_folder), "--size", size, "--name", "s",
                                      "--out", str(tmp_path / "results")])
        assert f"--size {size}: the stimulus side must be an integer of at least 8 pixels and at most 1024" in err
    assert not (tmp_path / "results").exists()


# -------------------------------------------------------------------------- permissions


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o002, 0o664, 0o775), (0o077, 0o600, 0o700),
                                                              (0o022, 0o644, 0o755)])
def test_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        written = atomic_write_text(tmp_path / "a" / "table.csv", "x\n")
        with atomic_output_dir(tmp_path / "out") as work:
            atomic_write_text(work / "inner.txt", "y")
        stim = write_prepared_set(tmp_path / "set", np.zeros((1, 8, 8)), pd.DataFrame(
            {"stimulus_id": ["a"], "identity": ["i"], "gender": ["f"], "source": ["s"]}), background=0.5)
    finally:
        os.umask(old)
    assert written.stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "out").stat().st_mode & 0o777 == dir_mode
    assert (tmp_path / "out" / "inner.txt").stat().st_mode & 0o777 == file_mode
    for path in (stim / "set.json", stim / "provenance.json", stim / "manifest.csv"):
        assert path.stat().st_mode & 0o777 == file_mode, path
    assert stim.stat().st_mode & 0o777 == dir_mode


@pytest.mark.parametrize(("umask", "mode", "folder_mode"), [(0o002, 0o664, 0o775), (0o077, 0o600, 0o700)])
def test_session_files_follow_the_umask(study, tmp_path, umask, mode, folder_mode):
    from experiments.engine import run_session

    results, _ = study
    old = os.umask(umask)
    try:
        done = run_session(_experiment(tmp_path), "u1", 1, observer="template", data_root=tmp_path / "sim",
                           results=results, seed=1, progress=False)
    finally:
        os.umask(old)
    for path in (done.path, done.path.with_suffix(".json"), tmp_path / "sim" / "participants.tsv"):
        assert path.stat().st_mode & 0o777 == mode, path
    assert done.path.parent.stat().st_mode & 0o777 == folder_mode
