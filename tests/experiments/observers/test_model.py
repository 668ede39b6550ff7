"""The model observer: batches of trials, answers among the task's classes, a real tiny variant."""

from __future__ import annotations

import json
import shutil
import sys
import types

import numpy as np
import pytest
import yaml

from experiments.engine import run_session
from experiments.observers import ModelObserver
from stimuli.bubbles import compose, mask_from_trial
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.trials import read_trials


class FakeVariant:
    """Stands in for model.LoadedVariant: logits from the mean brightness of the upper half."""

    classes = ["female", "male", "other"]

    def __init__(self):
        self.batches = []

    def predict_logits(self, images):
        images = np.asarray(images)
        assert images.ndim == 3 and images.dtype == np.float32
        self.batches.append(len(images))
        top = images[:, : images.shape[1] // 2].mean(axis=(1, 2))
        return np.stack([top, 1 - top, np.full_like(top, 99.0)], axis=1)  # 'other' is not an answer


@pytest.fixture
def fake_model(monkeypatch):
    variant = FakeVariant()
    module = types.ModuleType("model")
    module.load_variant = lambda name, results="results": variant if name == "tiny" else (_ for _ in ()).throw(
        InputError(f"model variant '{name}' not found"))
    monkeypatch.setitem(sys.modules, "model", module)
    return variant


def test_model_observer_batches_and_answers_among_the_task_classes(fake_model, make_config, results, tmp_path):
    path = make_config({"design": {"trials_per_block": 20}, "model_observer": {"batch_trials": 8}})
    result = run_session(path, "m1", 1, observer="model:tiny", data_root=tmp_path, results=results, seed=2,
                         progress=False)
    table = read_trials(result.path)
    assert len(table) == 23 and set(table.response) <= {"female", "male"}
    # practice (3) in one batch, then the block's 20 trials in batches of at most 8 per staircase state
    assert fake_model.batches == [3, 8, 8, 4]
    main = table[table.phase == "main"]
    assert main.n_bubbles.iloc[:8].nunique() == 1  # one staircase state per batch
    stim = load_prepared_set("orl32", results)
    for _, row in table.iloc[:5].iterrows():  # the answer is the logit rule applied to the shown stimulus
        shown = compose(stim.image(row.stimulus_id), mask_from_trial(row, stim.shape), stim.background)
        top = shown[:16].mean()
        assert row.response == ("female" if top > 1 - top else "male")


def test_model_observer_errors(fake_model):
    with pytest.raises(InputError, match="model variant 'nope' not found"):
        ModelObserver("nope", ["female", "male"])
    with pytest.raises(InputError, match="model variant 'tiny' has no class 's1'"):
        ModelObserver("tiny", ["s1", "s2"])


@pytest.mark.slow
def test_model_observer_session_on_a_tiny_trained_variant(make_config, results, tmp_path, request):
    """A real variant, trained here through the model package's own API (width 1/16, 32 px, 1 epoch)."""
    torch = pytest.importorskip("torch")
    train = pytest.importorskip("model.train")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions on a shared 2-core machine: one thread is fastest
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    root = tmp_path / "res"
    shutil.copytree(results / "stimuli", root / "stimuli")
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({
        "stimuli": "orl32", "input_size": 32, "split": {"seed": 0, "fractions": [0.6, 0.2, 0.2]},
        "grid": {"width": [0.0625], "pretrain": ["none"], "task": ["gender"], "seed": [0]},
        "train": {"trainable": "all", "epochs": 1, "batch_size": 32, "lr": 0.05, "dropout": 0.0,
                  "optimizer": "sgd", "schedule": "cosine"},
    }))
    (folder,) = train.train_grid(grid, root, device="cpu", progress=False)
    variant = folder.name
    path = make_config({"design": {"trials_per_block": 20}, "model_observer": {"batch_trials": 5}})
    result = run_session(path, "cnn", 1, observer=f"model:{variant}", data_root=tmp_path / "sim", results=root,
                         seed=4, progress=False)
    table = read_trials(result.path)
    assert len(table) == 23 and set(table.response) <= {"female", "male"}
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    assert sidecar["Observer"]["kind"] == "model" and sidecar["Observer"]["variant"] == variant
    # the answers are the variant's own on the rebuilt stimuli
    from model import load_variant  # after importorskip("torch") above: the model package needs it

    loaded = load_variant(variant, root)
    stim = load_prepared_set("orl32", root)
    shown = np.stack([compose(stim.image(r.stimulus_id), mask_from_trial(r, stim.shape), stim.background)
                      for _, r in table.iterrows()])
    columns = [loaded.classes.index(c) for c in ("female", "male")]
    expected = np.array(["female", "male"])[np.argmax(loaded.predict_logits(shown)[:, columns], axis=1)]
    assert list(table.response) == list(expected)
