"""``python -m analysis ci`` end to end on simulated trial files: the outputs of the contract,
provenance, exit codes, and one clear message per bad input while the rest is still produced."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from ci_simulation import simulate_trials, write_trial_file

from analysis.__main__ import main
from analysis.ci_pipeline import CIConfig, run_ci
from stimuli.contracts.config import from_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import read_provenance

SHAPE = (40, 40)


def session(data, participant, *, seed, trials=150, guided=150, session=1, task="gender", **kwargs):
    rows = simulate_trials(SHAPE, "eyes", n_trials=trials, sigma_px=2.5, n_bubbles=(6, 12), seed=seed,
                           n_practice=3, **kwargs)
    if guided:
        rows += simulate_trials(SHAPE, "mouth", n_trials=guided, sigma_px=2.5, n_bubbles=(6, 12),
                                seed=seed + 500, condition="guided")
    for number, row in enumerate(rows, start=1):  # one session: trials run 1..n (the reader checks it)
        row["trial"] = number
    return write_trial_file(data, participant, session, task, rows)


@pytest.fixture(scope="module")
def good_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    for i in range(3):
        session(data, f"{i + 1:02d}", seed=i)
    session(data, "01", seed=77, session=2, trials=60, guided=0)  # a second session is pooled
    return data


def ci_args(data, results, name, out, *extra):
    return ["ci", "--data-root", str(data), "--task", "gender", "--stimuli", name, "--results", str(results),
            "--out", str(out), "--min-trials", "50", *extra]


def test_ci_command_writes_the_contract(tmp_path, good_data, tiny_set, capsys):
    results, name, aperture = tiny_set
    out = tmp_path / "analysis"
    assert main(ci_args(good_data, results, name, out, "--permutations", "40", "--seed", "5")) == 0
    assert "wrote" in capsys.readouterr().out
    for condition in ("random", "guided"):
        with np.load(out / "maps" / f"ci_group_gender_{condition}.npz") as maps:
            assert maps["z"].shape == SHAPE and maps["z"].dtype == np.float32
            for key in ("pixel_sig", "cluster_sig"):
                assert maps[key].shape == SHAPE and maps[key].dtype == bool
                assert not (maps[key] & ~aperture).any()  # only the search region (the face aperture)
            threshold = float(maps["pixel_threshold"])
            assert 2.5 < threshold < 5
            np.testing.assert_array_equal(maps["pixel_sig"], (maps["z"] > threshold) & aperture)
            assert maps["participant_z"].shape == (3, *SHAPE)
            assert maps["participants"].tolist() == ["01", "02", "03"]
            np.testing.assert_allclose(maps["z"], maps["participant_z"].sum(0) / np.sqrt(3), atol=1e-4)
            assert maps["pixel_sig"].any() and maps["cluster_sig"].any()
            assert maps["perm_max_z"].shape == (40,)
        assert (out / "figures" / f"ci_group_gender_{condition}.png").stat().st_size > 1000
        assert (out / "figures" / f"ci_participants_gender_{condition}.png").is_file()
    summary = pd.read_csv(out / "tables" / "ci_summary.csv")
    assert sorted(summary.condition) == ["guided", "random"]
    assert (summary.n_participants == 3).all() and (summary.n_pixel_sig > 0).all()
    participants = pd.read_csv(out / "tables" / "ci_participants.csv", dtype={"participant": str})
    first = participants[(participants.participant == "01") & (participants.condition == "random")].iloc[0]
    assert first.n_trials == 210 and first.sessions == "1 2"  # sessions pooled, practice left out
    clusters = pd.read_csv(out / "tables" / "ci_clusters.csv", dtype={"level": str})
    assert {"group", "01"} <= set(clusters.level) and clusters.p.between(0, 1).all()
    assert pd.read_csv(out / "tables" / "ci_exclusions.csv").empty
    provenance = read_provenance(out)
    assert provenance["config"]["permutations"] == 40 and provenance["seeds"] == {"permutation": 5}
    assert sum("_beh.tsv" in path for path in provenance["inputs"]) == 4
    assert any(path.endswith("manifest.csv") for path in provenance["inputs"])
    assert "maps/ci_group_gender_random.npz" in provenance["outputs"] and provenance["problems"] == []
    assert not list(tmp_path.glob(".analysis.*"))  # no temporary folder left behind


def test_eyes_and_mouth_land_in_their_conditions(tmp_path, good_data, tiny_set):
    results, name, _ = tiny_set
    config = CIConfig(data_root=str(good_data), task="gender", stimuli=name, results=str(results), min_trials=50)
    outputs = run_ci(config, tmp_path, progress=False)
    rows = outputs.summary.set_index("condition")
    assert rows.loc["random", "peak_row"] < 21 <= rows.loc["guided", "peak_row"]  # eyes above the mouth


def test_bad_files_are_reported_and_the_rest_is_produced(tmp_path, tiny_set, capsys):
    results, name, _ = tiny_set
    data = tmp_path / "data"
    for i in range(3):
        session(data, f"{i + 1:02d}", seed=10 + i)
    # missing columns
    rows = simulate_trials(SHAPE, "eyes", n_trials=80, sigma_px=2.5, n_bubbles=8, seed=20)
    write_trial_file(data, "04", 1, "gender", rows, columns=[c for c in rows[0] if c != "sigma_px"])
    # unparseable centres
    broken = session(data, "05", seed=21)
    lines = broken.read_text().splitlines()
    lines[5] = lines[5].replace("[[", "[[x", 1)  # line 6 of the file
    broken.write_text("\n".join(lines) + "\n")
    # zero trials in a condition (only random trials), with two unanswered trials; too few trials
    unanswered = session(data, "06", seed=22, guided=0)
    lines = unanswered.read_text().splitlines()
    for i in (10, 11):
        cells = lines[i].split("\t")
        cells[7] = "n/a"  # the correct column
        lines[i] = "\t".join(cells)
    unanswered.write_text("\n".join(lines) + "\n")
    session(data, "07", seed=23, trials=20)
    out = tmp_path / "out"
    assert main(ci_args(data, results, name, out)) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("warning: ") and all(line.startswith("warning: ") for line in err)
    text = "\n".join(err)
    assert "sub-04_ses-1_task-gender_beh.tsv: missing column(s) sigma_px" in text
    assert "sub-05_ses-1_task-gender_beh.tsv, line 6: cannot parse bubble centres" in text
    assert "sub-06 condition guided: no main trials in this condition; excluded" in text
    assert "sub-07 condition random: 20 trials, fewer than the minimum 50; excluded" in text
    assert "sub-06_ses-1_task-gender_beh.tsv: 2 main trial(s) without a 'correct' value (n/a) left out" in text
    assert len(err) == 5  # one line each
    exclusions = pd.read_csv(out / "tables" / "ci_exclusions.csv", dtype={"participant": str})
    assert len(exclusions) == 5 and set(exclusions.participant) == {"04", "05", "06", "07"}
    with np.load(out / "maps" / "ci_group_gender_random.npz") as maps:
        assert maps["participants"].tolist() == ["01", "02", "03", "06"]
    with np.load(out / "maps" / "ci_group_gender_guided.npz") as maps:
        assert maps["participants"].tolist() == ["01", "02", "03", "07"]
    assert len(read_provenance(out)["problems"]) == 5
    participants = pd.read_csv(out / "tables" / "ci_participants.csv", dtype={"participant": str})
    assert participants.set_index(["participant", "condition"]).loc[("06", "random"), "n_trials"] == 148


def test_require_all_conditions_excludes_everywhere(tmp_path, good_data, tiny_set):
    results, name, _ = tiny_set
    data = tmp_path / "data"
    for i in range(2):
        session(data, f"{i + 1:02d}", seed=30 + i)
    session(data, "03", seed=33, guided=0)
    config = CIConfig(data_root=str(data), task="gender", stimuli=name, results=str(results), min_trials=50,
                      require_all_conditions=True)
    messages = []
    outputs = run_ci(config, tmp_path / "out", progress=False, warn=messages.append)
    assert len(messages) == 2  # missing guided, and so excluded from random too
    assert "excluded from all conditions (guided: no main trials" in messages[1]
    with np.load(outputs.maps["random"]) as maps:
        assert maps["participants"].tolist() == ["01", "02"]


def test_strict_mode_and_exit_codes(tmp_path, good_data, tiny_set, capsys):
    results, name, _ = tiny_set
    out = tmp_path / "out"
    # a prepared set that does not exist: the message holds the command that makes it
    with pytest.raises(SystemExit) as exit:
        main(ci_args(good_data, results, "nosuchset", out))
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "python -m stimuli prepare" in err and err.count("\n") == 1
    assert not out.exists()
    # no trial files of the task
    with pytest.raises(SystemExit) as exit:
        main(["ci", "--data-root", str(good_data), "--task", "identity", "--stimuli", name,
              "--results", str(results), "--out", str(out)])
    assert exit.value.code == 2 and "no trial files of task 'identity'" in capsys.readouterr().err
    # strict: one excluded participant condition fails the run and writes nothing
    with pytest.raises(SystemExit) as exit:
        main(ci_args(good_data, results, name, out, "--strict", "--min-trials", "200"))
    err = capsys.readouterr().err
    assert exit.value.code == 2 and "--strict: nothing written" in err and "warning" not in err
    assert not out.exists()
    # everything excluded: nothing to compute is an error, not an empty folder
    with pytest.raises(SystemExit) as exit:
        main(ci_args(good_data, results, name, out, "--min-trials", "5000"))
    assert exit.value.code == 2 and "no classification image could be computed" in capsys.readouterr().err
    assert not out.exists()
    # an existing output folder is kept unless --force
    assert main(ci_args(good_data, results, name, out, "--conditions", "random")) == 0
    with pytest.raises(SystemExit) as exit:
        main(ci_args(good_data, results, name, out))
    assert exit.value.code == 2 and "--force" in capsys.readouterr().err
    assert main(ci_args(good_data, results, name, out, "--force")) == 0
    assert (out / "maps" / "ci_group_gender_guided.npz").is_file()
    # impossible settings are named
    with pytest.raises(SystemExit) as exit:
        main(ci_args(good_data, results, name, tmp_path / "x", "--alpha", "2"))
    assert exit.value.code == 2 and "key 'alpha' must lie between 0 and 1" in capsys.readouterr().err


@pytest.mark.slow
def test_command_runs_as_a_module(tmp_path, good_data, tiny_set):
    results, name, _ = tiny_set
    out = tmp_path / "module"
    result = subprocess.run([sys.executable, "-m", "analysis", *ci_args(good_data, results, name, out,
                                                                        "--z", "permutation",
                                                                        "--z-permutations", "50")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(out / "tables" / "ci_summary.csv")
    assert (summary.z_method == "permutation").all()
    assert json.loads((out / "provenance.json").read_text())["config"]["z"] == "permutation"
    bad = subprocess.run([sys.executable, "-m", "analysis", "ci"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--data-root" in bad.stderr


def test_config_validation_names_the_key():
    with pytest.raises(InputError, match="key 'cluster_threshold' must be a positive Z value"):
        from_dict(CIConfig, {"data_root": "d", "task": "gender", "stimuli": "s", "cluster_threshold": -1}, "a.yaml")
    with pytest.raises(InputError, match="did you mean 'min_trials'"):
        from_dict(CIConfig, {"data_root": "d", "task": "gender", "stimuli": "s", "min_trial": 3}, "a.yaml")
