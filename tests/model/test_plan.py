"""``python -m model train GRID --plan``: counts and measured step times, nothing trained."""

from __future__ import annotations

import math

import pytest
import yaml

from model.plan import plan_rows, readable_grid
from model.train import main as train_main


def test_plan_counts_parameters_and_images_and_times_a_step(write_grid, results, capsys):
    grid = write_grid(grid={"task": ["gender", "identity"], "seed": [0, 1]},
                      train={"trainable": "head", "batch_size": 8})
    rows, notes = plan_rows(grid, results, device="cpu", steps=1)
    assert [r["variant"] for r in rows] == ["vgg16-w0.0625-none-gender-s0", "vgg16-w0.0625-none-gender-s1",
                                             "vgg16-w0.0625-none-identity-s0", "vgg16-w0.0625-none-identity-s1"]
    assert notes == []  # the set exists: its own images and counts
    by_task = {r["variant"].split("-")[3]: r for r in rows}
    # width 1/16: FC7 has 256 outputs; the head is Linear(256, classes)
    assert by_task["gender"]["classes"] == 2 and by_task["identity"]["classes"] == 12
    for row in by_task.values():
        assert row["trainable_parameters"] == 256 * row["classes"] + row["classes"]
    # the synthetic set: 60 images; identity splits 60/20/20 % per person, gender likewise by image
    assert by_task["identity"]["images_per_epoch"] == 36
    for row in rows:
        assert math.isfinite(row["step_s"]) and row["step_s"] > 0
        assert row["feature_cache"] is True and row["step_s"] == row["suffix_s"]
        assert row["epoch_s"] == pytest.approx(math.ceil(row["images_per_epoch"] / 8) * row["step_s"])
    assert not (results / "models").exists()


def test_plan_cli_prints_every_variant_and_trains_nothing(write_grid, results, capsys):
    grid = write_grid(grid={"task": ["gender"], "seed": [0, 1]})
    assert train_main([str(grid), "--plan", "--plan-steps", "1", "--out", str(results), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "vgg16-w0.0625-none-gender-s0" in out and "vgg16-w0.0625-none-gender-s1" in out
    assert "precision float32" in out and "s/step" in out
    assert not (results / "models").exists()


def test_plan_without_the_set_times_random_images_and_says_so(write_grid, tmp_path):
    grid = write_grid(stimuli="not_prepared", train={"trainable": "block5"})
    rows, notes = plan_rows(grid, tmp_path / "empty", device="cpu", steps=1)
    assert len(rows) == 1 and rows[0]["images_per_epoch"] is None and rows[0]["epoch_s"] is None
    assert rows[0]["feature_cache"] is False and rows[0]["step_s"] == rows[0]["prefix_s"] + rows[0]["suffix_s"]
    assert any("not_prepared" in n and "random 32-px images" in n for n in notes)


def test_plan_skips_a_pretraining_entry_it_cannot_read_with_one_line(write_grid, tmp_path):
    grid = write_grid(grid={"pretrain": ["none", "bogus:/nowhere/weights.bin"]})
    variants, notes = readable_grid(grid)
    assert [v.pretrain for v in variants] == ["none"]
    assert len(notes) == 1 and "bogus:/nowhere/weights.bin" in notes[0]


def test_seed_study_grid_reads_and_has_the_study_shape():
    """The shipped 224-px grid: 5 seeds x gender, identity x the readable pretraining entries."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "model" / "configs" / "seed_study.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["input_size"] == 224 and raw["imagenet_source"] == "torchvision"
    assert raw["train"]["trainable"] == "block5" and raw["grid"]["seed"] == [0, 1, 2, 3, 4]
    assert any(str(p).startswith("vggface:") for p in raw["grid"]["pretrain"])
    variants, notes = readable_grid(path)
    readable = len(raw["grid"]["pretrain"]) - len(notes)
    assert len(variants) == readable * 2 * 5
    assert all(v.input_size == 224 for v in variants)
