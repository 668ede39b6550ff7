"""Triplet and pair designs: every pair covered, balanced, reproducible from the recorded seed."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from experiments.engine import load_task
from experiments.similarity_config import FaceSelection
from experiments.similarity_design import (
    balanced_pairs,
    balanced_triplets,
    pair_coverage,
    select_faces,
)
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set


def _counts(design: np.ndarray, n: int) -> np.ndarray:
    return pair_coverage(design, n)[np.triu_indices(n, 1)]


@pytest.mark.parametrize("n, trials", [(20, 300), (8, 24), (12, 40), (5, 4)])
def test_triplets_cover_every_pair_evenly(n, trials):
    design = balanced_triplets(n, trials, np.random.default_rng(1))
    assert design.shape == (trials, 3)
    assert all(len(set(t)) == 3 for t in design) and design.min() >= 0 and design.max() < n
    counts = _counts(design, n)
    assert counts.sum() == 3 * trials
    assert counts.min() >= 1  # every pair of faces is judged at least once
    assert counts.max() - counts.min() <= 2
    shown = np.bincount(design.ravel(), minlength=n)
    assert shown.max() - shown.min() <= 2  # every face about equally often


def test_pair_coverage_counts_by_hand():
    counts = pair_coverage(np.array([[0, 1, 2], [2, 1, 3]]), 4)
    expected = np.zeros((4, 4), int)
    for a, b in [(0, 1), (0, 2), (1, 2), (1, 2), (2, 3), (1, 3)]:
        expected[a, b] += 1
        expected[b, a] += 1
    assert (counts == expected).all()


def test_every_prefix_of_the_triplets_covers_new_pairs_first():
    n = 20
    design = balanced_triplets(n, 300, np.random.default_rng(7))
    pairs = n * (n - 1) // 2
    # the first triplets cover fresh pairs: all 190 pairs are covered well before the end
    covered_at = next(t for t in range(1, 301) if _counts(design[:t], n).min() > 0)
    assert pairs / 3 <= covered_at <= 85
    # a stopped session is balanced too: after 150 trials, no pair is 3 ahead of another
    assert np.ptp(_counts(design[:150], n)) <= 2


def test_screen_positions_are_shuffled():
    design = balanced_triplets(10, 600, np.random.default_rng(3))
    for face in range(10):
        positions = np.bincount(np.nonzero(design == face)[1], minlength=3)
        assert positions.min() > 0.2 * positions.sum()  # each face is seen left, middle and right


def test_pairs_are_equally_often_and_sides_random():
    n = 8
    design = balanced_pairs(n, 70, np.random.default_rng(2))  # 28 pairs: 2 or 3 times each
    counts = _counts(design, n)
    assert counts.min() == 2 and counts.max() == 3 and counts.sum() == 70
    assert 0.3 < np.mean(design[:, 0] < design[:, 1]) < 0.7
    assert all(a != b for a, b in design)


def test_designs_need_enough_faces():
    with pytest.raises(InputError, match="a triplet needs 3 faces"):
        balanced_triplets(2, 5, np.random.default_rng(0))
    with pytest.raises(InputError, match="a rating needs 2 faces"):
        balanced_pairs(1, 5, np.random.default_rng(0))


def test_plan_from_the_recorded_seed(make_similarity_config, similarity_results):
    task = load_task(make_similarity_config({"design": {"trials": 40, "practice_trials": 3, "trials_per_block": 15}}), similarity_results)
    plan = task.plan(11)
    assert plan == task.plan(11) and plan != task.plan(12)
    assert [r["trial"] for r in plan] == list(range(1, 44))
    assert [r["phase"] for r in plan] == ["practice"] * 3 + ["main"] * 40
    assert [r["block"] for r in plan] == [0] * 3 + [1] * 15 + [2] * 15 + [3] * 10
    main = [r for r in plan if r["phase"] == "main"]
    seen = {frozenset(p) for r in main for p in combinations((r["stimulus_1"], r["stimulus_2"], r["stimulus_3"]), 2)}
    assert len(seen) == 28 and set().union(*seen) == set(task.ids)  # all pairs of the 8 faces
    assert task.coverage == {"pairs": 28, "pairs_covered": 28, "min_per_pair": 4, "max_per_pair": 5}


def test_rating_plan(make_similarity_config, similarity_results):
    task = load_task(make_similarity_config({"judgement": "rating", "design": {"trials": 56, "practice_trials": 0}}), similarity_results)
    plan = task.plan(5)
    assert {r["condition"] for r in plan} == {"rating"} and all(r["stimulus_3"] is None for r in plan)
    pairs = [frozenset((r["stimulus_1"], r["stimulus_2"])) for r in plan]
    assert len(set(pairs)) == 28 and all(pairs.count(p) == 2 for p in set(pairs))


def test_face_selection(similarity_results):
    manifest = load_prepared_set("orl32", similarity_results).manifest
    first = select_faces(manifest, FaceSelection(n_identities=3, images_per_identity=2))
    assert first == ["s1-01", "s1-02", "s10-01", "s10-02", "s11-01", "s11-02"]
    drawn = select_faces(manifest, FaceSelection(n_identities=4, pick="random", selection_seed=5))
    assert drawn == select_faces(manifest, FaceSelection(n_identities=4, pick="random", selection_seed=5))
    assert drawn != select_faces(manifest, FaceSelection(n_identities=4, pick="random", selection_seed=6))
    assert len({s.split("-")[0] for s in drawn}) == 4
    chosen = select_faces(manifest, FaceSelection(identities=["s8", "s3"], images_per_identity=1))
    assert chosen == ["s8-01", "s3-01"]
    assert select_faces(manifest, FaceSelection(stimulus_ids=["s2-05", "s1-01"])) == ["s2-05", "s1-01"]
