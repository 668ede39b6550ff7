"""Training: repeatable bit for bit, seed-dependent, resumable, the exact fast path, the variant
folder contract, skipping finished variants and the faces arm."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from model import load_variant
from model.train import train_variant
from model.variants import resume_dir, variant_dir
from stimuli.contracts.errors import InputError

AUGMENTED = {"trainable": "all", "epochs": 3, "dropout": 0.5,
             "augment": {"hflip": True, "max_shift": 0.1}, "balance": "sampler"}


def same_state(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def history(folder):
    rows = json.loads((folder / "metrics.json").read_text())["epochs"]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_training_is_repeatable_bit_for_bit_and_depends_on_the_seed(write_grid, results, tmp_path, variant_configs, state_of):
    """Same seed: identical weights and metrics (dropout, sampling, flips and shifts included)."""
    import shutil

    path = write_grid(grid={"task": ["gender"], "seed": [0, 1]}, train=AUGMENTED)
    first, other_seed = variant_configs(path)
    again = tmp_path / "again"
    shutil.copytree(results / "stimuli", again / "stimuli")
    a = train_variant(first, results, device="cpu", progress=False)
    b = train_variant(variant_configs(path)[0], again, device="cpu", progress=False)
    c = train_variant(other_seed, results, device="cpu", progress=False)
    assert same_state(state_of(a), state_of(b))
    assert history(a) == history(b)
    assert not torch.equal(state_of(a)["features.0.weight"], state_of(c)["features.0.weight"])
    assert history(a) != history(c)
    # the split is the grid's, not the seed's
    assert (a / "split.csv").read_text() == (c / "split.csv").read_text()


def test_resume_after_interruption_gives_the_same_final_weights(write_grid, results, tmp_path, variant_configs, state_of):
    import shutil

    path = write_grid(grid={"task": ["identity"]}, train={**AUGMENTED, "epochs": 4})
    config = variant_configs(path)[0]
    reference_root = tmp_path / "reference"
    shutil.copytree(results / "stimuli", reference_root / "stimuli")
    reference = train_variant(config, reference_root, device="cpu", progress=False)

    class Interrupted(Exception):
        pass

    def stop_after_two(epoch):
        if epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_variant(variant_configs(path)[0], results, device="cpu", progress=False, after_epoch=stop_after_two)
    name = config.variant
    assert not variant_dir(name, results).exists()  # no finished-looking folder
    assert (resume_dir(name, results) / "checkpoint.pt").is_file()
    checkpoint = torch.load(resume_dir(name, results) / "checkpoint.pt", weights_only=True)
    assert checkpoint["run"]["epoch"] == 2

    epochs_run = []
    resumed = train_variant(variant_configs(path)[0], results, device="cpu", progress=False,
                            after_epoch=epochs_run.append)
    assert epochs_run == [3, 4]  # continued, did not start over
    assert same_state(state_of(resumed), state_of(reference))
    assert history(resumed) == history(reference)
    provenance = json.loads((resumed / "provenance.json").read_text())
    assert provenance["resumed_from_epoch"] == 2
    assert not resume_dir(name, results).exists()


def test_resume_with_another_config_is_refused(write_grid, results, variant_configs):
    path = write_grid(train={"epochs": 3})
    config = variant_configs(path)[0]

    def stop(epoch):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_variant(config, results, device="cpu", progress=False, after_epoch=stop)
    changed = variant_configs(write_grid(train={"epochs": 3, "lr": 0.5}))[0]
    with pytest.raises(InputError, match="the interrupted run used another config .*train.*delete"):
        train_variant(changed, results, device="cpu", progress=False)


@pytest.mark.parametrize("trainable", ["classifier", "block5"])
def test_feature_cache_path_equals_plain_path(write_grid, results, tmp_path, trainable, variant_configs, state_of):
    """The exact fast path (frozen prefix computed once, mirrored copies cached) trains the
    same weights as recomputing the prefix for every batch."""
    import shutil

    from model.features import clear_memo

    train = {"trainable": trainable, "epochs": 3, "dropout": 0.5, "augment": {"hflip": True},
             "optimizer": "adam", "lr": 0.001}
    plain_root = tmp_path / "plain"
    shutil.copytree(results / "stimuli", plain_root / "stimuli")
    clear_memo()
    fast = train_variant(variant_configs(write_grid(train=train))[0], results, device="cpu", progress=False)
    plain = train_variant(variant_configs(write_grid(train={**train, "cache_features": "off"}))[0],
                          plain_root, device="cpu", progress=False)
    assert json.loads((fast / "metrics.json").read_text())["feature_cache"] is True
    assert json.loads((plain / "metrics.json").read_text())["feature_cache"] is False
    a, b = state_of(fast), state_of(plain)
    assert list(a) == list(b)
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-6), key
    assert torch.equal(a["features.0.weight"], b["features.0.weight"])  # frozen: untouched
    for row_a, row_b in zip(history(fast), history(plain)):
        assert row_a["train_loss"] == pytest.approx(row_b["train_loss"], rel=1e-4)


def test_variant_folder_contract_and_load_variant(write_grid, results, variant_configs):
    path = write_grid(grid={"arch": ["vgg16-bn"], "task": ["gender"]},
                      train={"trainable": "all", "epochs": 6, "optimizer": "adam", "lr": 0.001})
    config = variant_configs(path)[0]
    folder = train_variant(config, results, device="cpu", progress=False, grid_file=str(path))
    assert folder == results / "models" / "vgg16-bn-w0.0625-none-gender-s0"
    assert {p.name for p in folder.iterdir()} == {"model.pt", "config.yaml", "metrics.json", "split.csv",
                                                  "provenance.json"}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["metric"] == "balanced_accuracy" and metrics["classes"] == ["female", "male"]
    assert len(metrics["epochs"]) == 6
    for key in ("train_accuracy", "train_balanced_accuracy", "val_balanced_accuracy", "test_balanced_accuracy",
                "test_accuracy", "val_loss", "lr"):
        assert key in metrics["epochs"][0]
    assert metrics["final"]["test"]["balanced_accuracy"] >= 0.9  # it learns the synthetic genders
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    assert saved["variant"] == config.variant and saved["classes"] == ["female", "male"]
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["seeds"] == {"variant": 0, "split": 0}
    assert any(k.endswith("manifest.csv") for k in provenance["inputs"]) and str(path) in provenance["inputs"]
    assert provenance["pretrained"]["pretrain"] == "none"

    variant = load_variant(config.variant, results, device="cpu")
    assert variant.classes == ["female", "male"] and variant.task == "gender" and variant.input_size == 32
    assert not variant.net.training and variant.spec.batch_norm
    from stimuli.contracts.prepared import load_prepared_set

    images = load_prepared_set("synth", results).images
    logits = variant.predict_logits(images, batch_size=7)
    assert logits.shape == (len(images), 2) and logits.dtype == np.float32
    with torch.no_grad():
        direct = variant.net(variant.to_input(images)).numpy()
    assert np.allclose(logits, direct, atol=1e-5)
    split = json.loads((folder / "metrics.json").read_text())["final"]["test"]
    import pandas as pd

    table = pd.read_csv(folder / "split.csv")
    test = table.split.to_numpy() == "test"
    predicted = logits[test].argmax(1)
    truth = table.label.to_numpy()[test]
    recalls = [np.mean(predicted[truth == c] == c) for c in np.unique(truth)]
    assert np.mean(recalls) == pytest.approx(split["balanced_accuracy"])


def test_finished_variants_are_skipped(write_grid, results, capsys):
    from model.train import main

    path = write_grid(train={"epochs": 2})
    assert main([str(path), "--out", str(results), "--device", "cpu"]) == 0
    model_file = results / "models" / "vgg16-w0.0625-none-identity-s0" / "model.pt"
    stamp = model_file.stat().st_mtime_ns
    capsys.readouterr()
    assert main([str(path), "--out", str(results), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "vgg16-w0.0625-none-identity-s0: done already" in out and "NOTE" not in out
    assert model_file.stat().st_mtime_ns == stamp
    changed = write_grid(train={"epochs": 2, "lr": 0.2})
    assert main([str(changed), "--out", str(results), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "done already" in out and "NOTE: it was trained with another config (differs in train)" in out
    assert model_file.stat().st_mtime_ns == stamp


def test_missing_variant_error_holds_the_train_command(results):
    with pytest.raises(InputError) as error:
        load_variant("vgg16-w0.0625-none-gender-s3", results)
    assert f"python -m model train CONFIG.yaml --only vgg16-w0.0625-none-gender-s3 --out {results}" in str(error.value)
    with pytest.raises(InputError) as error:
        load_variant("vgg16-imagenet-gender-s0", "results-nowhere")
    assert "python -m model train model/configs/demo.yaml --only vgg16-imagenet-gender-s0 --out results-nowhere" \
        in str(error.value)


def test_faces_arm_starts_from_the_face_source(write_grid, results, variant_configs, state_of):
    path = write_grid(grid={"pretrain": ["faces"], "task": ["gender"]},
                      train={"trainable": "classifier", "epochs": 2},
                      face_source={"pretrain": "none", "seed": 5, "train": {"trainable": "all", "epochs": 2}})
    source, variant = variant_configs(path)
    assert source.variant == "vgg16-w0.0625-none-faces-s5" and variant.variant == "vgg16-w0.0625-faces-gender-s0"
    with pytest.raises(InputError, match=f"train it first with: python -m model train {path} --only "
                                         f"vgg16-w0.0625-none-faces-s5 --out {results}"):
        train_variant(variant, results, device="cpu", progress=False, grid_file=str(path))
    source_folder = train_variant(source, results, device="cpu", progress=False)
    assert load_variant(source.variant, results).task == "identity"
    folder = train_variant(variant_configs(path)[1], results, device="cpu", progress=False)
    start, end = state_of(source_folder), state_of(folder)
    frozen = [k for k in start if k.startswith("features.")]
    assert frozen and all(torch.equal(start[k], end[k]) for k in frozen)  # the source's trunk
    assert end["classifier.6.weight"].shape[0] == 2 and start["classifier.6.weight"].shape[0] == 12
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["pretrained"]["variant"] == source.variant


def test_faces_variant_refuses_test_images_its_source_trained_on(write_grid, results, variant_configs):
    path = write_grid(grid={"pretrain": ["faces"], "task": ["gender"]}, split={"gender": "identity"},
                      train={"trainable": "head", "epochs": 1},
                      face_source={"pretrain": "none", "train": {"trainable": "head", "epochs": 1}})
    source, variant = variant_configs(path)
    train_variant(source, results, device="cpu", progress=False)
    with pytest.raises(InputError, match="validation/test images .* trained face source"):
        train_variant(variant, results, device="cpu", progress=False)
