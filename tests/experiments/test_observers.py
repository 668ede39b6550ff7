"""Screenless observers: the template observer reads only its region; the model observer's mapping."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from experiments.engine import load_task, run_session
from experiments.observers import ModelObserver, TemplateObserver, make_observer, parse_observer
from experiments.task import Trial
from stimuli.bubbles import bubbles_mask, compose, sample_centres
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.trials import read_trials
from stimuli.regions import region_mask


@pytest.fixture(scope="module")
def faces(results):
    stim = load_prepared_set("orl32", results)
    return stim.images, list(stim.manifest.gender), stim.background


def test_template_decision_reads_only_the_region(faces):
    images, labels, background = faces
    observer = TemplateObserver(images, labels, ["female", "male"], background, "eyes", seed=1)
    region = region_mask("eyes", images.shape[1:])
    rng = np.random.default_rng(0)
    mask = bubbles_mask(images.shape[1:], sample_centres(images.shape[1:], 30, rng), 2.0)
    stimulus = compose(images[3], mask, background)
    noise = observer.noise_for(17)
    evidence = observer.evidence(stimulus, mask, noise)
    other_stimulus, other_mask = stimulus.copy(), mask.copy()
    other_stimulus[~region] = rng.random(int((~region).sum()))
    other_mask[~region] = rng.random(int((~region).sum()))
    assert np.array_equal(observer.evidence(other_stimulus, other_mask, noise), evidence)
    inside = stimulus.copy()
    inside[region] = rng.random(int(region.sum()))
    assert not np.array_equal(observer.evidence(inside, mask, noise), evidence)
    assert np.array_equal(observer.noise_for(17), noise) and not np.array_equal(observer.noise_for(18), noise)


@pytest.mark.parametrize(("templates", "classes"), [("exemplars", ["female", "male"]),
                                                    ("means", ["s1", "s2", "s3", "s4"])])
def test_template_noise_is_calibrated_and_accuracy_grows_with_bubbles(faces, results, templates, classes):
    images, labels, background = faces
    if classes[0] == "s1":  # identity: four people
        identity = np.array(load_prepared_set("orl32", results).manifest.identity)
        keep = np.isin(identity, classes)
        images, labels = images[keep], list(identity[keep])
    target = 0.9
    observer = TemplateObserver(images, labels, classes, background, "box:0,1,0,1",
                                templates=templates, full_view_accuracy=target, seed=2)
    assert abs(observer.calibrated_accuracy - target) < 0.02 and observer.noise_sd > 0
    rng = np.random.default_rng(5)
    truth = np.array(labels)
    members = [np.flatnonzero(truth == c) for c in classes]

    def accuracy(n_bubbles, trials=200):
        hits = 0
        for t in range(trials):
            index = rng.choice(members[t % len(classes)])
            mask = (np.ones(images.shape[1:], np.float32) if n_bubbles is None else
                    bubbles_mask(images.shape[1:], sample_centres(images.shape[1:], n_bubbles, rng), 2.0))
            stimulus = compose(images[index], mask, background)
            trial = Trial({"trial": 10_000 + t}, [stimulus], {}, payload={"mask": mask})
            hits += observer.respond([trial])[0].response == truth[index]
        return hits / trials

    full, few, none = accuracy(None), accuracy(3), accuracy(0)
    assert abs(full - target) < 0.06
    assert abs(none - 1 / len(classes)) < 0.1 and none < few < full


def test_unreachable_accuracy_is_one_clear_error(faces):
    images, labels, background = faces
    with pytest.raises(InputError, match="even without noise it is below 99% correct"):
        TemplateObserver(images, labels, ["female", "male"], background, "mouth", templates="means",
                         full_view_accuracy=0.99)


def test_observer_specs():
    assert parse_observer("template") == ("template", None)
    assert parse_observer("template:box:0,0.5,0,1") == ("template", "box:0,0.5,0,1")
    assert parse_observer("model:vgg16-imagenet-gender-s0") == ("model", "vgg16-imagenet-gender-s0")
    for bad in ("robot", "model", "human:x"):
        with pytest.raises(InputError, match="use human, template, template:REGION or model:VARIANT"):
            parse_observer(bad)


def test_template_region_from_the_command_line(make_config, results, tmp_path):
    task = load_task(make_config(), results)
    observer = make_observer("template:mouth", task, seed=1)
    assert observer.region_spec == "mouth" and observer.region.sum() == region_mask("mouth", (32, 32)).sum()
    result = run_session(make_config(), "m1", 1, observer="template:mouth", data_root=tmp_path, results=results,
                         seed=1, progress=False)
    assert read_trials(result.path).shape[0] == 15


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
    from stimuli.bubbles import mask_from_trial
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
    import shutil

    import yaml

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
    sidecar = __import__("json").loads(result.path.with_suffix(".json").read_text())
    assert sidecar["Observer"]["kind"] == "model" and sidecar["Observer"]["variant"] == variant
    # the answers are the variant's own on the rebuilt stimuli
    from model import load_variant
    from stimuli.bubbles import mask_from_trial

    loaded = load_variant(variant, root)
    stim = load_prepared_set("orl32", root)
    shown = np.stack([compose(stim.image(r.stimulus_id), mask_from_trial(r, stim.shape), stim.background)
                      for _, r in table.iterrows()])
    columns = [loaded.classes.index(c) for c in ("female", "male")]
    expected = np.array(["female", "male"])[np.argmax(loaded.predict_logits(shown)[:, columns], axis=1)]
    assert list(table.response) == list(expected)
