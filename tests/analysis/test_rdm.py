"""Human RDMs from triplets and ratings: counting, the fitted embedding, reading files, reliability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist

from analysis.rdm import (
    fit_triplet_embedding,
    human_rdm,
    rating_rdm,
    split_half_reliability,
    triplet_counts,
    triplet_rdm,
)
from analysis.readers.similarity import load_human_rdms, read_similarity_trials
from analysis.rsa import rdm_correlation
from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import SIMILARITY_COLUMNS


def triplets(rows):
    return pd.DataFrame([{"condition": "triplet", "stimulus_1": a, "stimulus_2": b, "stimulus_3": c, "response": r}
                         for a, b, c, r in rows])


def test_triplet_counts_and_probability_rdm():
    table = triplets([("a", "b", "c", "c"), ("b", "a", "d", "d"), ("c", "d", "a", "a"), ("a", "b", "d", "a")])
    ids = ["a", "b", "c", "d"]
    together, shown = triplet_counts(table, ids)
    assert together[0, 1] == 2 and together[1, 3] == 1 and together[2, 3] == 1 and together[0, 2] == 0
    assert shown[0, 1] == 3 and shown[2, 3] == 1 and shown[1, 2] == 1 and shown[0, 3] == 3
    rdm = triplet_rdm(table, ids)
    assert rdm[0, 1] == pytest.approx(1 / 3) and rdm[2, 3] == 0 and rdm[0, 2] == 1 and rdm[0, 3] == 1
    assert (np.diag(rdm) == 0).all() and np.allclose(rdm, rdm.T)
    sparse = triplet_rdm(table.iloc[:1], ids)
    assert np.isnan(sparse[0, 3]) and sparse[0, 1] == 0  # never shown together: no value
    with pytest.raises(InputError, match="face 'e' of the trials is not among the 4 faces"):
        triplet_rdm(triplets([("a", "b", "e", "a")]), ids)


def test_rating_rdm_pools_both_screen_orders():
    table = pd.DataFrame({"condition": "rating", "stimulus_1": ["a", "b", "a", "c"], "stimulus_2": ["b", "a", "c", "b"],
                          "stimulus_3": None, "response": ["7", "5", "1", "4"]})
    rdm = rating_rdm(table, ["a", "b", "c"])
    assert rdm[0, 1] == pytest.approx((7 - 6) / 6) and rdm[0, 2] == 1 and rdm[1, 2] == pytest.approx(0.5)
    assert human_rdm(table, ["a", "b", "c"], "embedding")[0, 1] == rdm[0, 1]  # ratings: mean rating either way
    with pytest.raises(InputError, match="mix judgements"):
        human_rdm(pd.concat([table, triplets([("a", "b", "c", "a")])]), ["a", "b", "c"])


def test_fitted_embedding_recovers_the_generating_points():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(12, 2))
    chosen = []
    for _ in range(400):
        a, b, c = rng.choice(12, 3, replace=False)
        d = {(a, b): c, (a, c): b, (b, c): a}
        pair = min(d, key=lambda p: np.linalg.norm(points[p[0]] - points[p[1]]))
        chosen.append([*pair, d[pair]])
    fitted = fit_triplet_embedding(np.array(chosen), 12, dims=2, seed=1)
    assert fitted.shape == (12, 2)
    from scipy.stats import spearmanr
    assert spearmanr(pdist(fitted), pdist(points))[0] > 0.9
    with pytest.raises(InputError, match="at least one triplet"):
        fit_triplet_embedding(np.empty((0, 3)), 4)


def _write(path, rows, header=tuple(SIMILARITY_COLUMNS)):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(str(r.get(c, "n/a")) for c in header) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(trial, phase, a, b, c, response, condition="triplet"):
    return {"trial": trial, "block": 0 if phase == "practice" else 1, "phase": phase, "condition": condition,
            "stimulus_1": a, "stimulus_2": b, "stimulus_3": c, "response": response}


def test_reading_trial_files_checks_answers(tmp_path):
    good = _write(tmp_path / "a.tsv", [_row(1, "practice", "a", "b", "c", "a"), _row(2, "main", "a", "b", "c", "c"),
                                       _row(3, "main", "a", "c", "d", "n/a")])
    table = read_similarity_trials(good)
    assert list(table.trial) == [2]  # practice and unanswered trials are left out
    bad = _write(tmp_path / "b.tsv", [_row(1, "main", "a", "b", "c", "c"), _row(2, "main", "a", "b", "c", "d")])
    with pytest.raises(InputError, match=r"b.tsv, line 3: response 'd' is not one of the trial's three faces"):
        read_similarity_trials(bad)
    rating = _write(tmp_path / "c.tsv", [_row(1, "main", "a", "b", "n/a", "9", "rating")])
    with pytest.raises(InputError, match=r"c.tsv, line 2: response '9' is not a rating 1..7"):
        read_similarity_trials(rating)
    odd = _write(tmp_path / "d.tsv", [_row(1, "main", "a", "b", "c", "c", "sorting")])
    with pytest.raises(InputError, match="line 2: condition 'sorting' is neither triplet nor rating"):
        read_similarity_trials(odd)
    bubbles = _write(tmp_path / "e.tsv", [{"trial": 1}], header=("trial", "block", "phase", "condition", "stimulus_id"))
    with pytest.raises(InputError, match="missing column"):
        read_similarity_trials(bubbles)


def test_participant_rdms_group_and_reliability(tmp_path):
    rng = np.random.default_rng(1)
    ids = [f"f{i}" for i in range(8)]
    points = rng.normal(size=(8, 2))
    files = {}
    for person in range(4):
        rows = []
        for t in range(1, 121):
            a, b, c = rng.choice(8, 3, replace=False)
            noisy = {(a, b): c, (a, c): b, (b, c): a}
            pair = min(noisy, key=lambda p: np.linalg.norm(points[p[0]] - points[p[1]]) + rng.normal(scale=0.3))
            rows.append(_row(t, "main", ids[a], ids[b], ids[c], ids[noisy[pair]]))
        files[f"p{person}"] = [_write(tmp_path / f"p{person}.tsv", rows)]
    truth = np.linalg.norm(points[:, None] - points[None], axis=-1)
    for method in ("probability", "embedding"):
        rdms = load_human_rdms(files, method=method, ids=ids)
        assert rdms.subjects.shape == (4, 8, 8) and rdms.participants == ["p0", "p1", "p2", "p3"]
        assert rdms.trials == {f"p{i}": 120 for i in range(4)} and rdms.judgement == "triplet"
        assert rdm_correlation(truth, rdms.group) > 0.8
        assert rdm_correlation(truth, rdms.group) > np.mean([rdm_correlation(truth, s) for s in rdms.subjects])
    reliability = split_half_reliability(load_human_rdms(files, ids=ids), n_splits=10)
    assert list(reliability.unit) == ["p0", "p1", "p2", "p3", "group"]
    assert (reliability.reliability > reliability.r_half).all() and (reliability.r_half > 0.3).all()
    default_ids = load_human_rdms(files).ids
    assert sorted(default_ids) == ids  # no sidecar: every face the trials show
    with pytest.raises(InputError, match="no similarity trial files"):
        load_human_rdms({})
