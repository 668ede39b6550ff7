"""The trial sequence: drawn up front from the seed, balanced, and masks rebuilt from saved rows."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from experiments.engine import load_task, run_session
from experiments.observers import Observer
from experiments.sequence import balanced_labels, block_order, derive_seed
from experiments.task import Response
from stimuli.bubbles import compose, mask_from_trial
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.trials import read_trials


def test_sequence_is_a_function_of_the_seed(make_config, results):
    path = make_config({"design": {"blocks": ["random"], "repeats": 3, "trials_per_block": 10}})
    task = load_task(path, results)
    first, again, other = task.plan(7), load_task(path, results).plan(7), task.plan(8)
    assert first == again
    assert [r["stimulus_id"] for r in first] != [r["stimulus_id"] for r in other]
    assert [r["mask_seed"] for r in first] != [r["mask_seed"] for r in other]


def test_sequence_structure_practice_blocks_balance(make_config, results):
    path = make_config({
        "conditions": {"random": {}, "wide": {"mode": "random"}},
        "design": {"blocks": ["random", "wide"], "repeats": 3, "order": "shuffled", "trials_per_block": 9,
                   "practice_trials": 4},
        "staircase": {"shared": False},
    })
    task = load_task(path, results)
    plan = task.plan(11)
    assert [r["trial"] for r in plan] == list(range(1, 4 + 6 * 9 + 1))
    practice = [r for r in plan if r["phase"] == "practice"]
    assert len(practice) == 4 and all(r["block"] == 0 and r["staircase"] is None for r in practice)
    assert plan[:4] == practice
    blocks = [[r for r in plan if r["block"] == b] for b in range(1, 7)]
    for repeat in range(3):  # each repeat runs every condition once
        assert sorted(b[0]["condition"] for b in blocks[2 * repeat:2 * repeat + 2]) == ["random", "wide"]
    for block in blocks:
        assert len({r["condition"] for r in block}) == 1 and block[0]["staircase"] == block[0]["condition"]
        counts = Counter(r["truth"] for r in block)
        assert abs(counts["female"] - counts["male"]) <= 1
    manifest = task.set.manifest.set_index("stimulus_id")
    assert all(manifest.gender[r["stimulus_id"]] == r["truth"] for r in plan)
    assert len({r["mask_seed"] for r in plan}) == len(plan)


def test_building_blocks():
    rng = np.random.default_rng(0)
    assert derive_seed(1, "plan") != derive_seed(1, "masks") != derive_seed(2, "masks")
    assert 0 <= derive_seed(123, "observer", 5) < 2**31
    assert block_order(["a", "b"], 2, "fixed", rng) == ["a", "b", "a", "b"]
    labels = balanced_labels(["x", "y", "z"], 10, rng)
    assert sorted(Counter(labels).values()) == [3, 3, 4]


class Recorder(Observer):
    """An observer that keeps what it was shown (to compare with the masks rebuilt from the file)."""

    kind = "recorder"

    def __init__(self):
        self.shown = {}

    def respond(self, trials):
        for trial in trials:
            self.shown[trial.number] = (trial.images[0].copy(), trial.payload["mask"].copy())
        return [Response(trial.truth if trial.number % 3 else None) for trial in trials]


@pytest.mark.parametrize("merge", ["sum", "prob"])
def test_masks_rebuilt_from_saved_rows_equal_those_shown(make_config, results, tmp_path, merge):
    path = make_config({"bubbles": {"merge": merge}, "design": {"trials_per_block": 10}})
    recorder = Recorder()
    result = run_session(path, "rec", 1, observer=recorder, data_root=tmp_path / "data", results=results, seed=4)
    table = read_trials(result.path)
    stimuli = load_prepared_set("orl32", results)
    assert len(table) == len(recorder.shown) == 13
    for _, row in table.iterrows():
        image, mask = recorder.shown[row.trial]
        rebuilt = mask_from_trial(row, stimuli.shape, merge=merge)
        assert np.array_equal(rebuilt, mask)
        assert np.array_equal(compose(stimuli.image(row.stimulus_id), rebuilt, stimuli.background), image)
        assert len(mask_from_trial(row, stimuli.shape)) and row.n_bubbles == len(json.loads(row.bubbles))
    # centres are the first n draws of the trial's seed: a larger draw starts with them
    task = load_task(path, results)
    row = table.iloc[5]
    sampler = task._sampler(row.condition, row.stimulus_id)
    longer = sampler.sample(row.n_bubbles + 30, np.random.default_rng(int(row.mask_seed)))
    assert np.array_equal(longer[: row.n_bubbles].tolist(), json.loads(row.bubbles))
    # answers: None is written as n/a and scored incorrect
    missing = table[table.trial % 3 == 0]
    assert missing.response.isna().all() and (missing.correct == 0).all()
    assert (table[table.trial % 3 != 0].correct == 1).all()


def test_centres_stay_in_the_sampling_region(make_config, results, tmp_path):
    path = make_config({"bubbles": {"region": "box:0.5,1,0,0.5"}, "design": {"trials_per_block": 6}})
    result = run_session(path, "box", 1, observer=Recorder(), data_root=tmp_path, results=results, seed=1)
    centres = np.concatenate([np.array(json.loads(b)) for b in read_trials(result.path).bubbles])
    assert (centres[:, 0] >= 16).all() and (centres[:, 1] < 16).all()


@pytest.mark.parametrize("maps", ["mean", "per_image"])
def test_guided_and_antiguided_centres_follow_the_relevance_maps(make_config, results, tmp_path, maps):
    from stimuli.contracts.relevance import relevance_path, save_relevance

    stim = load_prepared_set("orl32", results)
    n = len(stim)
    relevance = np.zeros((n, 32, 32), np.float32)
    relevance[:, 4:12, 4:28] = 1.0  # a band across the top: 'the model looks at the forehead'
    save_relevance(relevance_path("tiny-gender-s0", "orl32", tmp_path / "res"), relevance,
                   stim.manifest.stimulus_id, np.zeros(n), np.zeros(n), np.zeros(n), {"variant": "tiny-gender-s0"})
    (tmp_path / "res" / "stimuli").mkdir()
    (tmp_path / "res" / "stimuli" / "orl32").symlink_to(results / "stimuli" / "orl32")
    guide = {"variant": "tiny-gender-s0", "maps": maps}
    path = make_config({"bubbles": {"region": None},
                        "conditions": {"guided": guide, "antiguided": guide},
                        "design": {"blocks": ["random", "guided", "antiguided"], "trials_per_block": 6,
                                   "practice_trials": 0}})
    result = run_session(path, "g", 1, observer=Recorder(), data_root=tmp_path / "data", results=tmp_path / "res",
                         seed=2)
    table = read_trials(result.path)
    inside = {}
    for condition, rows in table.groupby("condition"):
        centres = np.concatenate([np.array(json.loads(b)) for b in rows.bubbles])
        inside[condition] = np.mean((centres[:, 0] >= 2) & (centres[:, 0] < 14))
    assert inside["guided"] > 0.8 and inside["antiguided"] < 0.15
    assert inside["antiguided"] < inside["random"] < inside["guided"]
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    assert sidecar["Masks"]["conditions"]["guided"]["relevance_file"].endswith("tiny-gender-s0/orl32.npz")
    assert set(table.staircase) == {"random", "guided", "antiguided"}


def test_identity_task_with_learned_faces(make_config, results, tmp_path):
    path = make_config({"task": "identity", "responses": None, "bubbles": {"sigma_px": 2.0}}, name="id.yaml")
    text = path.read_text().replace("paradigm: bubbles", "paradigm: bubbles\nresponses: {s1: d, s8: f, s15: j, s32: k}")
    path.write_text(text + "familiarisation: {images_per_class: 2, caption: '{answer} = {key}'}\n")
    task = load_task(path, results)
    assert task.classes == ["s1", "s8", "s15", "s32"] and task.quest_params.gamma == 0.25
    items = task.familiarisation()
    assert [caption for _, caption in items] == ["s1 = D"] * 2 + ["s8 = F"] * 2 + ["s15 = J"] * 2 + ["s32 = K"] * 2
    assert task.key_help() == "D = s1, F = s8, J = s15, K = s32"
    result = run_session(path, "i1", 1, observer="template", data_root=tmp_path, results=results, seed=3,
                         progress=False)
    table = read_trials(result.path)
    assert set(table.truth) == {"s1", "s8", "s15", "s32"} and set(table.response) <= set(task.classes)
    assert all(sid.split("-")[0] == truth for sid, truth in zip(table.stimulus_id, table.truth))
