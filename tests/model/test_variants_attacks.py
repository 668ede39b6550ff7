"""Attacks on trained variants: a config.yaml or model.pt changed after training, and files
that are not weights given as weights. Each is refused with one line naming the file."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from model.train import main as train_main
from model.train import train_variant
from model.variants import load_variant
from model.weights import read_state_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import file_sha256, read_provenance


@pytest.fixture
def trained(write_grid, results, variant_configs):
    config = variant_configs(write_grid(train={"epochs": 1}))[0]
    return config.variant, train_variant(config, results, device="cpu", progress=False), results


def test_training_records_the_hashes_of_config_and_weights(trained):
    _, folder, _ = trained
    files = read_provenance(folder)["variant_files"]
    assert files == {"config.yaml": file_sha256(folder / "config.yaml"), "model.pt": file_sha256(folder / "model.pt")}
    assert read_provenance(folder)["tool"] == "model train"


@pytest.mark.parametrize("edit", ["swap_classes", "input_size", "dropout", "stimuli"])
def test_an_edited_config_yaml_is_refused_at_load(trained, edit, tmp_path):
    name, folder, results = trained
    path = folder / "config.yaml"
    shutil.copy(path, tmp_path / "config.yaml")
    config = yaml.safe_load(path.read_text())
    if edit == "swap_classes":  # would flip every answer of a model observer
        config["classes"] = [config["classes"][1], config["classes"][0], *config["classes"][2:]]
    elif edit == "input_size":
        config["input_size"] = 64
    elif edit == "dropout":
        config["train"]["dropout"] = 0.5
    else:
        config["stimuli"] = "another"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(InputError) as error:
        load_variant(name, results)
    message = str(error.value)
    assert message.startswith(f"{path}: changed since the variant was trained") and "\n" not in message
    shutil.copy(tmp_path / "config.yaml", path)  # restored: the variant is itself again
    assert load_variant(name, results).name == name


def test_other_weights_of_the_same_architecture_are_refused_at_load(trained):
    name, folder, results = trained
    before = load_variant(name, results)
    state = {k: v.clone() for k, v in before.net.state_dict().items()}
    state["classifier.6.bias"] += 1.0
    torch.save(state, folder / "model.pt")
    with pytest.raises(InputError, match=r"model.pt: changed since the variant was trained"):
        load_variant(name, results)


def test_a_variant_without_recorded_hashes_loads_with_a_warning(trained, capsys):
    name, folder, results = trained
    record = read_provenance(folder)
    del record["variant_files"]
    (folder / "provenance.json").write_text(json.dumps(record))
    assert load_variant(name, results).name == name
    err = capsys.readouterr().err
    assert "records no hashes of config.yaml and model.pt" in err and err.count("\n") == 1


def test_a_text_file_given_as_weights_is_one_line(tmp_path, write_grid, results, capsys):
    text = tmp_path / "weights.txt"
    text.write_text("these are my weights, honest\n" * 20)
    with pytest.raises(InputError, match=r"weights.txt: not a readable torch weights file .*text file"):
        read_state_dict(text)
    grid = write_grid(grid={"pretrain": [f"file:{text}"]}, train={"epochs": 1})
    with pytest.raises(SystemExit) as stop:
        train_main([str(grid), "--out", str(results), "--device", "cpu"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "weights.txt: not a readable torch weights file" in err
    assert not (results / "models").exists() or not any((results / "models").iterdir())


def test_an_edited_face_source_is_not_finetuned_from(write_grid, results, variant_configs):
    path = write_grid(grid={"pretrain": ["faces"], "task": ["gender"]}, train={"trainable": "classifier", "epochs": 1},
                      face_source={"pretrain": "none", "seed": 5, "train": {"trainable": "all", "epochs": 1}})
    source, variant = variant_configs(path)
    folder = train_variant(source, results, device="cpu", progress=False)
    state = torch.load(folder / "model.pt", weights_only=True)
    state["features.0.bias"] += 1.0  # fits the architecture, but is not what the source learnt
    torch.save(state, folder / "model.pt")
    with pytest.raises(InputError, match=r"model.pt: changed since the variant was trained"):
        train_variant(variant, results, device="cpu", progress=False)
