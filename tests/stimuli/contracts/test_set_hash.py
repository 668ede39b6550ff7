"""The content hash of a prepared set (stimuli/contracts/set_hash.py) and what it guards: sessions
resumed and relevance maps used on another version of their set are refused in one line, and
nothing outside the command's own output changes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_checks import one_line_error, snapshot
from PIL import Image

from experiments.__main__ import main as run_main
from experiments.engine import load_task, run_session
from stimuli.__main__ import main
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.relevance import load_relevance, relevance_path, save_relevance
from stimuli.prepare import prepare_set


def test_the_content_hash_covers_pixels_manifest_and_parameters(study):
    results, _ = study
    stim = load_prepared_set("small", results)
    recorded = stim.info["content_sha256"]
    assert stim.content_hash == recorded and len(recorded) == 64
    # one pixel changed by hand after preparing: the set says so when its hash is asked for
    first = stim.folder / stim.manifest.file.iloc[0]
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


def test_resume_on_a_re_prepared_set_is_refused(study, face_folder, tmp_path, capsys, experiment):
    results, _ = study
    data = tmp_path / "sim"
    config = experiment(tmp_path)
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


def test_relevance_of_an_older_set_version_is_refused_by_render_and_guided_sessions(study, face_folder, experiment,
                                                                                     tmp_path, capsys):
    results, _ = study
    stim = load_prepared_set("small", results)
    n = len(stim)
    path = relevance_path("fake-v", "small", results)
    save_relevance(path, np.ones((n, 24, 24), np.float32), stim.manifest.stimulus_id, np.zeros(n), np.zeros(n),
                   np.zeros(n), {"variant": "fake-v", "stimulus_set_sha256": stim.content_hash})
    assert load_relevance("fake-v", "small", results).meta["stimulus_set_sha256"] == stim.content_hash
    guided = experiment(tmp_path, conditions={"guided": {"variant": "fake-v", "maps": "per_image"}},
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
