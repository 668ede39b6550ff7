"""The shared contracts in stimuli: config validation, provenance, atomic folders, file formats."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from stimuli.contracts.config import from_dict, load_config, require, to_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set, write_prepared_set
from stimuli.contracts.provenance import (
    Provenance,
    atomic_output_dir,
    file_sha256,
    read_provenance,
    record_run,
)
from stimuli.contracts.relevance import load_relevance, relevance_path, save_relevance
from stimuli.contracts.trials import (
    TRIAL_COLUMNS,
    check_label,
    find_trial_files,
    read_trials,
    trial_file_path,
)
from stimuli.regions import region_mask


@dataclass
class Inner:
    sigma_px: float = 10.0
    keys: list[str] = field(default_factory=lambda: ["f", "j"])

    def __post_init__(self):
        require(self.sigma_px > 0, "sigma_px", "must be positive")


@dataclass
class Outer:
    name: str
    mode: Literal["random", "guided"] = "random"
    inner: Inner = field(default_factory=Inner)
    count: int | None = None


def test_config_builds_nested_dataclasses_and_round_trips():
    config = from_dict(Outer, {"name": "x", "mode": "guided", "inner": {"sigma_px": 3}}, "c.yaml")
    assert config.inner.sigma_px == 3.0 and isinstance(config.inner.sigma_px, float)
    assert config.mode == "guided" and config.count is None
    assert from_dict(Outer, to_dict(config), "c.yaml") == config


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"name": "x", "inner": {"sigma_pxx": 3}}, "unknown key 'inner.sigma_pxx' (did you mean 'inner.sigma_px'?)"),
        ({"name": "x", "inner": {"sigma_px": -1}}, "key 'inner.sigma_px' must be positive"),
        ({"name": "x", "mode": "other"}, "key 'mode' must be one of 'random', 'guided'"),
        ({"name": "x", "count": "many"}, "key 'count' should be int or null"),
        ({"name": "x", "inner": {"keys": "f"}}, "key 'inner.keys' should be list of str"),
        ({"mode": "random"}, "missing required key 'name'"),
    ],
)
def test_config_errors_name_the_file_and_key(data, needle):
    with pytest.raises(InputError) as error:
        from_dict(Outer, data, "exp.yaml")
    message = str(error.value)
    assert message.startswith("exp.yaml: ") and needle in message and "\n" not in message


def test_load_config_reports_yaml_syntax_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match=r"bad.yaml \(line \d+\): not valid YAML"):
        load_config(Outer, bad)
    with pytest.raises(InputError, match="config file not found"):
        load_config(Outer, tmp_path / "absent.yaml")


def test_atomic_output_dir_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output_dir(target) as work:
        (work / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_output_dir(target) as work:
        (work / "done.txt").write_text("done")
    assert (target / "done.txt").read_text() == "done"
    with pytest.raises(FileExistsError):
        with atomic_output_dir(target):
            pass


def test_provenance_records_inputs_seeds_and_versions(tmp_path):
    source = tmp_path / "input.csv"
    source.write_text("a,b\n1,2\n")
    record_run(tmp_path, Provenance(command=["prog", "--x"], config={"k": 1}, seeds={"split": 7}, inputs=[source]))
    record = read_provenance(tmp_path)
    assert record["command"] == ["prog", "--x"] and record["seeds"] == {"split": 7}
    assert record["inputs"] == {str(source): file_sha256(source)}
    assert record["versions"]["numpy"] == np.__version__
    assert record["started"] <= record["finished"]


def _tiny_set(tmp_path, n=4, size=(6, 5)):
    rng = np.random.default_rng(0)
    images = rng.random((n, *size)).astype(np.float32)
    manifest = pd.DataFrame({
        "stimulus_id": [f"s{i}-01" for i in range(n)], "identity": [f"s{i}" for i in range(n)],
        "gender": ["female", "male"] * (n // 2), "source": [f"s{i}/1.pgm" for i in range(n)],
    })
    aperture = np.zeros(size, bool)
    aperture[1:-1, 1:-1] = True
    folder = write_prepared_set(tmp_path / "stimuli" / "tiny", images, manifest, background=0.5, aperture=aperture)
    return folder, images


def test_prepared_set_round_trip(tmp_path):
    folder, images = _tiny_set(tmp_path)
    stim = load_prepared_set("tiny", results=tmp_path)
    assert stim.shape == (6, 5) and stim.background == 0.5
    np.testing.assert_allclose(stim.images, images, atol=0.5 / 255 + 1e-7)
    assert stim.aperture.sum() == 4 * 3
    assert stim.index_of("s2-01") == 2
    assert (folder / "provenance.json").is_file()
    with pytest.raises(InputError, match="python -m stimuli prepare --faces orl --size 128 --name nope"):
        load_prepared_set("nope", results="results")


def test_prepared_set_refuses_bad_ids_and_leaves_nothing(tmp_path):
    manifest = pd.DataFrame({"stimulus_id": ["a b"], "identity": ["a"], "gender": ["m"], "source": ["x"]})
    with pytest.raises(InputError, match="stimulus_id 'a b'"):
        write_prepared_set(tmp_path / "bad", np.zeros((1, 3, 3)), manifest, background=0.5)
    assert not (tmp_path / "bad").exists()


def _write_trials(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(TRIAL_COLUMNS)] + ["\t".join(str(r[c]) for c in TRIAL_COLUMNS) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _row(trial):
    return {"trial": trial, "block": 1, "phase": "main", "condition": "random", "stimulus_id": "s1-01",
            "truth": "male", "response": "male", "correct": 1, "rt_s": 0.5, "n_bubbles": 2,
            "sigma_px": 3.0, "bubbles": "[[1,2],[3,4]]", "mask_seed": 11, "onset_s": 1.0,
            "dropped_frames": 0}


def test_trial_file_reader_keeps_complete_rows_and_drops_a_torn_last_line(tmp_path):
    path = trial_file_path(tmp_path, "01", 1, "gender")
    _write_trials(path, [_row(1), _row(2)])
    with open(path, "a") as handle:
        handle.write("3\t1\tmain\trand")  # SIGKILL during a write
    table = read_trials(path)
    assert table.trial.tolist() == [1, 2] and table.correct.dtype.kind == "f"
    assert [f.participant for f in find_trial_files(tmp_path, "gender")] == ["01"]


def test_trial_file_reader_names_missing_columns_and_bad_numbers(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("trial\tblock\n1\t1\n")
    with pytest.raises(InputError, match="missing column\\(s\\) phase, condition"):
        read_trials(path)
    row = _row(1)
    row["rt_s"] = "fast"
    _write_trials(path, [row])
    with pytest.raises(InputError, match="line 2: column 'rt_s' holds 'fast'"):
        read_trials(path)
    with pytest.raises(InputError, match="letters and digits"):
        check_label("0 1", "participant")


def test_relevance_round_trip_and_missing_file_hint(tmp_path):
    path = relevance_path("vgg16-imagenet-gender-s0", "tiny", tmp_path)
    relevance = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    save_relevance(path, relevance, ["a", "b"], [0, 1], [0, 0], [1.5, 2.5], {"composite": "epsilon_plus_flat"})
    maps = load_relevance("vgg16-imagenet-gender-s0", "tiny", tmp_path)
    np.testing.assert_array_equal(maps.relevance, relevance)
    assert maps.meta == {"composite": "epsilon_plus_flat"} and maps.by_id("b")[0, 0] == 12
    np.testing.assert_allclose(maps.mean_map(), relevance.mean(axis=0))
    with pytest.raises(InputError, match="python -m model explain --variant v --stimuli tiny"):
        load_relevance("v", "tiny", "results")
    with pytest.raises(InputError, match="'target' must have 2 entries"):
        save_relevance(tmp_path / "x.npz", relevance, ["a", "b"], [0], [0, 0], [1, 2], {})
    assert json.loads(json.dumps(maps.meta))


def test_region_masks_by_name_and_box():
    eyes, mouth = region_mask("eyes", (100, 100)), region_mask("mouth", (100, 100))
    assert eyes.any() and mouth.any() and not (eyes & mouth).any()
    assert region_mask("box:0,0.5,0,0.5", (10, 10)).sum() == 25
    with pytest.raises(InputError, match="unknown region 'chin'"):
        region_mask("chin", (10, 10))
    with pytest.raises(InputError, match="box:top,bottom,left,right"):
        region_mask("box:0.5,0.2,0,1", (10, 10))
