"""Bad similarity configs: one clear line each, naming the file and the key, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from experiments.__main__ import main
from experiments.config import load_experiment
from stimuli.contracts.errors import InputError

REPO_CONFIG = "experiments/similarity.yaml"


def test_the_shipped_config_loads():
    config = load_experiment(REPO_CONFIG)
    assert config.paradigm == "similarity" and config.judgement == "triplet"
    assert config.faces.n_identities == 20 and config.design.trials == 300
    assert config.responses.triplet == ["left", "down", "right"] and config.responses.rating[-1] == "7"


BAD = [
    ({"judgment": "triplet"}, "unknown key 'judgment' (did you mean 'judgement'?)"),
    ({"judgement": "pairs"}, "key 'judgement' must be one of 'triplet', 'rating', got 'pairs'"),
    ({"responses": {"triplet": ["a", "b"]}}, "key 'responses.triplet' needs three keys"),
    ({"responses": {"triplet": ["a", "b", "a"]}}, "key 'responses.triplet' gives key 'a' to more than one answer"),
    ({"responses": {"triplet": ["a", "b", "escape"]}}, "key 'responses.triplet' uses key 'escape', which is also a quit key"),
    ({"responses": {"triplet": ["a", "b", "esc"]}}, "key 'responses.triplet' has unknown key name 'esc'"),
    ({"responses": {"rating": ["1", "2", "3"]}}, "key 'responses.rating' needs 7 keys"),
    ({"responses": {"rating": [1, 2, 3, 4, 5, 6, 7]}}, "key 'responses.rating[0]' should be str, got 1"),
    ({"faces": {"identities": ["s1", "nobody"]}}, "key 'faces.identities': 'nobody' is not an identity"),
    ({"faces": {"n_identities": 41}}, "key 'faces.n_identities' is 41 but only 40 identities are available"),
    ({"faces": {"images_per_identity": 11}}, "key 'faces.images_per_identity' is 11 but identity 's1' has 10"),
    ({"faces": {"stimulus_ids": ["s1-01", "s2-01"]}}, "key 'faces.stimulus_ids' cannot be combined with identities"),
    ({"faces": {"n_identities": None, "stimulus_ids": ["s1-01", "s2-01", "x"]}},
     "key 'faces.stimulus_ids': 'x' is not in the stimulus set"),
    ({"faces": {"n_identities": 2}}, "key 'faces': 2 face(s) selected, a triplet needs 3"),
    ({"design": {"trials": 5}}, "key 'design.trials': 5 triplet trials cannot cover all 28 pairs of 8 faces "
                                "(at least 10 needed"),
    ({"judgement": "rating", "design": {"trials": 20}}, "20 rating trials cannot cover all 28 pairs"),
    ({"design": {"trials": 0}}, "key 'design.trials' must be at least 1"),
    ({"spacing": 0.5}, "key 'spacing' must be at least 1"),
    ({"feedback": True}, "key 'feedback' must be false"),
    ({"simulated_observer": {"noise_sd": -1}}, "key 'simulated_observer.noise_sd' must be zero or positive"),
    ({"simulated_observer": {"metric": "manhattan"}}, "key 'simulated_observer.metric' must be one of"),
    ({"stimuli": "nope"}, "python -m stimuli prepare"),
]


@pytest.mark.parametrize("changes, message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_config_is_one_clear_line(changes, message, make_similarity_config, similarity_results, tmp_path, capsys):
    path = make_similarity_config(changes)
    with pytest.raises(SystemExit) as stop:
        main(["run", str(path), "--participant", "x", "--session", "1", "--observer", "simulated",
              "--results", str(similarity_results), "--data-root", str(tmp_path / "data"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2
    assert err.count("\n") == 0 and err.startswith("error: ") and message in err, err
    if "stimuli prepare" not in message:
        assert str(path) in err
    assert not (tmp_path / "data").exists()  # nothing written


def test_bad_embedding_files_are_one_clear_line(make_similarity_config, similarity_results, tmp_path, capsys):
    (tmp_path / "short.csv").write_text("stimulus_id,x\ns1-01,0.5\n")
    (tmp_path / "broken.csv").write_text("stimulus_id,x\ns1-01,abc\n")
    (tmp_path / "plain.npz").write_bytes(b"")
    cases = [("missing.csv", "missing.csv: embedding file not found"),
             ("short.csv", "short.csv: no row for face 's10-01' (7 of the judged faces missing)"),
             ("broken.csv", "broken.csv, line 2: a coordinate is missing or not a number"),
             ("plain.npz", "plain.npz: unreadable embedding")]
    for name, message in cases:
        path = make_similarity_config({"simulated_observer": {"embedding": name}})
        with pytest.raises(SystemExit) as stop:
            main(["run", str(path), "--participant", "x", "--session", "1", "--observer", "simulated",
                  "--results", str(similarity_results), "--data-root", str(tmp_path / "data"), "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and err.count("\n") == 0 and message in err, err
        assert not (tmp_path / "data").exists()


def test_a_missing_variant_names_the_command_that_trains_it(make_similarity_config, similarity_results, tmp_path, capsys):
    path = make_similarity_config()
    with pytest.raises(SystemExit) as stop:
        main(["run", str(path), "--participant", "x", "--session", "1", "--observer",
              "model:vgg16-imagenet-identity-s0", "--results", str(similarity_results), "--data-root", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.count("\n") == 0
    assert "vgg16-imagenet-identity-s0 is not trained" in err and "python -m model train" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("key, value, expected", [
    ("trials", 1_000_000_000, "key 'design.trials' must be at most 100000"),
    ("trials_per_block", 1_000_000_000, "key 'design.trials_per_block' must be at most 10000"),
    ("practice_trials", 1_000_000, "key 'design.practice_trials' must be at most 1000"),
])
def test_similarity_design_bounds_are_refused_not_clamped(key, value, expected, tmp_path):
    config = yaml.safe_load(Path(REPO_CONFIG).read_text())
    config["design"][key] = value
    path = tmp_path / "similarity.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(InputError, match=expected):
        load_experiment(path)
