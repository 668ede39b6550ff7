"""Similarity sessions through the engine: the trial file and sidecar, refusal, resume, observers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform

from analysis.readers.similarity import read_similarity_trials
from experiments.__main__ import main
from experiments.engine import load_task, run_session
from experiments.session import SessionFiles
from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import file_sha256
from stimuli.contracts.trials import SIMILARITY_COLUMNS, read_session_provenance, read_trials


def snapshot(root):
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _embedding(sidecar: dict) -> tuple[np.ndarray, list[str]]:
    info = sidecar["Observer"]["embedding"]
    return np.asarray(info["values"]), info["stimulus_id"]


def test_trial_file_sidecar_and_provenance(make_similarity_config, similarity_results, tmp_path):
    path = make_similarity_config()
    result = run_session(path, "s1", 1, observer="simulated", data_root=tmp_path, results=similarity_results, seed=9,
                         progress=False)
    assert result.status == "complete" and result.trials_done == result.trials_planned == 26
    assert result.path == tmp_path / "sub-s1" / "ses-1" / "beh" / "sub-s1_ses-1_task-similarity_beh.tsv"
    assert result.path.read_text().splitlines()[0].split("\t") == list(SIMILARITY_COLUMNS)
    table = read_trials(result.path, required=tuple(SIMILARITY_COLUMNS))
    assert list(table.trial) == list(range(1, 27)) and list(table.block[:4]) == [0, 0, 1, 1]
    faces = table[["stimulus_1", "stimulus_2", "stimulus_3"]].to_numpy()
    chosen = table.response.to_numpy()
    assert all(c in row for c, row in zip(chosen, faces))
    assert (faces[np.arange(26), table.response_position.astype(int) - 1] == chosen).all()
    assert table.rt_s.isna().all() and table.response_key.isna().all()

    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    for column in SIMILARITY_COLUMNS:
        assert sidecar[column]["Description"]
    assert sidecar["Paradigm"] == "similarity" and sidecar["Seed"] == 9
    assert sidecar["phase"]["Levels"]["practice"].startswith("practice trials (random faces")
    assert sidecar["response_position"]["Levels"]["3"] == "right face" and sidecar["rt_s"]["Units"] == "s"
    assert sidecar["Faces"]["stimulus_ids"] == load_task(path, similarity_results).ids and len(sidecar["Faces"]["stimulus_ids"]) == 8
    assert sidecar["Design"]["pairs_covered"] == 28 and sidecar["Design"]["judgement"] == "triplet"
    observer = sidecar["Observer"]
    assert observer["kind"] == "simulated" and observer["noise_sd"] == 0.1 and observer["spec"] == "simulated"
    values, ids = _embedding(sidecar)
    assert values.shape == (8, 3) and ids == sidecar["Faces"]["stimulus_ids"]
    assert np.allclose(values, np.random.default_rng(3).standard_normal((8, 3)))  # embedding_seed 3, dims 3
    assert observer["embedding"]["embedding_seed"] == 3
    assert sidecar["StimulusSet"]["manifest_sha256"] == file_sha256(similarity_results / "stimuli/orl32/manifest.csv")
    assert sidecar["Session"]["status"] == "complete"
    provenance = read_session_provenance(result.path)
    assert provenance["seeds"] == {"session": 9} and str(path) in provenance["inputs"]
    assert len(read_similarity_trials(result.path)) == 24  # the analysis reads the main trials


def test_noise_free_observer_picks_the_farthest_face(make_similarity_config, similarity_results, tmp_path):
    path = make_similarity_config({"simulated_observer": {"noise_sd": 0.0}, "design": {"trials": 40}})
    result = run_session(path, "n0", 1, observer="simulated", data_root=tmp_path, results=similarity_results, seed=1,
                         progress=False)
    values, ids = _embedding(json.loads(result.path.with_suffix(".json").read_text()))
    distance = squareform(pdist(values))
    index = {s: i for i, s in enumerate(ids)}
    for _, row in read_trials(result.path, required=tuple(SIMILARITY_COLUMNS)).iterrows():
        a, b, c = (index[row[f"stimulus_{k}"]] for k in (1, 2, 3))
        pairs = {(a, b): c, (a, c): b, (b, c): a}
        closest = min(pairs, key=lambda p: distance[p])
        assert index[row.response] == pairs[closest]


def test_same_seed_same_session_and_noise_changes_answers(make_similarity_config, similarity_results, tmp_path):
    path = make_similarity_config({"simulated_observer": {"noise_sd": 0.3}})
    a = run_session(path, "a", 1, observer="simulated", data_root=tmp_path, results=similarity_results, seed=3, progress=False)
    b = run_session(path, "b", 1, observer="simulated", data_root=tmp_path, results=similarity_results, seed=3, progress=False)
    c = run_session(path, "c", 1, observer="simulated", data_root=tmp_path, results=similarity_results, seed=4, progress=False)
    assert a.path.read_text() == b.path.read_text() != c.path.read_text()


def test_embedding_from_a_file(make_similarity_config, similarity_results, tmp_path):
    ids = load_task(make_similarity_config(), similarity_results).ids
    points = np.arange(len(ids), dtype=float)[:, None] * np.array([[1.0, 0.0]])  # faces on a line
    pd.DataFrame({"stimulus_id": ids[::-1], "x": points[::-1, 0], "y": points[::-1, 1]}).to_csv(
        tmp_path / "points.csv", index=False)
    path = make_similarity_config({"simulated_observer": {"embedding": "points.csv", "noise_sd": 0.0}})
    result = run_session(path, "f1", 1, observer="simulated", data_root=tmp_path / "d", results=similarity_results, seed=2,
                         progress=False)
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    info = sidecar["Observer"]["embedding"]
    assert info["file"].endswith("points.csv") and info["sha256"] == file_sha256(tmp_path / "points.csv")
    assert np.allclose(info["values"], points) and str(tmp_path / "points.csv") in read_session_provenance(
        result.path)["inputs"]
    table = read_trials(result.path, required=tuple(SIMILARITY_COLUMNS))
    for _, row in table.iterrows():  # on a line, the odd one out is always an end of the three
        position = {s: ids.index(s) for s in (row.stimulus_1, row.stimulus_2, row.stimulus_3)}
        assert position[row.response] in (min(position.values()), max(position.values()))
    npz = tmp_path / "points.npz"
    np.savez(npz, embedding=points, stimulus_id=np.asarray(ids))
    again = run_session(make_similarity_config({"simulated_observer": {"embedding": str(npz), "noise_sd": 0.0}}), "f1", 1,
                        observer="simulated", data_root=tmp_path / "e", results=similarity_results, seed=2, progress=False)
    assert again.path.read_text() == result.path.read_text()


def test_ratings_session(make_similarity_config, similarity_results, tmp_path):
    path = make_similarity_config({"judgement": "rating", "design": {"trials": 28, "practice_trials": 0},
                        "simulated_observer": {"noise_sd": 0.0}})
    result = run_session(path, "r1", 1, observer="simulated", data_root=tmp_path, results=similarity_results, seed=5,
                         progress=False)
    table = read_similarity_trials(result.path)
    assert len(table) == 28 and table.stimulus_3.isna().all() and table.response_position.isna().all()
    values, ids = _embedding(json.loads(result.path.with_suffix(".json").read_text()))
    distance = squareform(pdist(values))
    distance /= distance.max()
    for _, row in table.iterrows():
        d = distance[ids.index(row.stimulus_1), ids.index(row.stimulus_2)]
        assert int(row.response) == int(np.clip(np.rint(1 + 6 * (1 - d)), 1, 7))
    ratings = table.response.astype(int)
    assert ratings.min() == 1 and ratings.nunique() >= 3  # every pair rated: the farthest pair gets 1


def test_existing_session_is_refused_and_nothing_changes(make_similarity_config, similarity_results, tmp_path, capsys):
    path = make_similarity_config()
    root = tmp_path / "sim"
    run_session(path, "t1", 1, observer="simulated", data_root=root, results=similarity_results, seed=1, progress=False)
    before = snapshot(root)
    args = ["run", str(path), "--participant", "t1", "--session", "1", "--observer", "simulated",
            "--results", str(similarity_results), "--data-root", str(root), "--no-progress"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.count("\n") == 0 and "this session exists already; add --resume" in err
    with pytest.raises(SystemExit):
        main([*args, "--resume"])
    assert "this session is complete (26 trials); nothing to resume" in capsys.readouterr().err
    assert snapshot(root) == before


def test_resume_after_a_torn_line_gives_the_uninterrupted_session(make_similarity_config, similarity_results, tmp_path):
    path = make_similarity_config({"design": {"trials": 40}, "simulated_observer": {"noise_sd": 0.4}})
    reference = run_session(path, "ref", 1, observer="simulated", data_root=tmp_path / "ref", results=similarity_results,
                            seed=21, progress=False)
    root = tmp_path / "sim"
    result = run_session(path, "t1", 1, observer="simulated", data_root=root, results=similarity_results, seed=21,
                         progress=False)
    lines = result.path.read_text().splitlines(keepends=True)
    result.path.write_text("".join(lines[:16]) + lines[16][:9])  # 15 trials and a row cut off inside its write
    files = SessionFiles(root, "t1", 1, "similarity")
    with pytest.raises(InputError, match="differs from the config this session started with .key 'design'"):
        run_session(make_similarity_config({"design": {"trials": 41}}), "t1", 1, observer="simulated", data_root=root,
                    results=similarity_results, resume=True)
    with pytest.raises(InputError, match="run by observer 'simulated', not 'model:x'"):
        run_session(path, "t1", 1, observer="model:x", data_root=root, results=similarity_results, resume=True)
    resumed = run_session(path, "t1", 1, observer="simulated", data_root=root, results=similarity_results, resume=True,
                          progress=False)
    assert resumed.status == "complete" and resumed.trials_done == 42
    assert resumed.path.read_text() == reference.path.read_text()  # same plan, same noisy answers
    session = json.loads(files.sidecar_path.read_text())["Session"]
    assert [r["at_trial"] for r in session["resumes"]] == [16]
    assert session["resumes"][0]["torn_line_dropped"] == lines[16][:9]


def test_an_edited_plan_column_is_refused_on_resume(make_similarity_config, similarity_results, tmp_path):
    path = make_similarity_config()
    result = run_session(path, "e1", 1, observer="simulated", data_root=tmp_path, results=similarity_results, seed=2,
                         progress=False)
    lines = result.path.read_text().splitlines(keepends=True)
    cells = lines[5].split("\t")
    cells[4] = "s40-10"  # another face than the seed's plan
    result.path.write_text("".join(lines[:5]) + "\t".join(cells))
    with pytest.raises(InputError, match="line 6: column 'stimulus_1' is 's40-10' but the sequence"):
        run_session(path, "e1", 1, observer="simulated", data_root=tmp_path, results=similarity_results, resume=True)


def test_the_bubbles_observers_are_not_offered(make_similarity_config, similarity_results, tmp_path, capsys):
    path = make_similarity_config()
    with pytest.raises(SystemExit) as stop:
        main(["run", str(path), "--participant", "x", "--session", "1", "--observer", "template",
              "--results", str(similarity_results), "--data-root", str(tmp_path / "data")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err == "error: --observer 'template': use human, simulated or model:VARIANT"
    assert not (tmp_path / "data").exists()
