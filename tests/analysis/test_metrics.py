"""Map metrics on hand-made maps whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import stimuli.contracts.maps
from analysis import metrics
from analysis.metrics import (
    compare_maps,
    earth_movers_distance,
    histogram_intersection,
    mass_inside,
    pearson,
    region_auc,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    spearman,
    top_k_mask,
    top_k_overlap,
)
from stimuli.contracts.errors import InputError


def test_correlations_on_known_maps():
    a = np.arange(25.0).reshape(5, 5)
    assert pearson(a, 3 * a - 2) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.exp(a)) == pytest.approx(1.0)  # monotone, not linear
    assert pearson(a, np.exp(a)) < 0.9
    assert np.isnan(pearson(a, np.ones((5, 5))))  # a constant map has no correlation
    b = np.array([[1.0, 2.0], [3.0, 5.0]])
    c = np.array([[2.0, 1.0], [4.0, 3.0]])
    assert pearson(b, c) == pytest.approx(stats.pearsonr(b.ravel(), c.ravel())[0])
    assert spearman(b, c) == pytest.approx(stats.spearmanr(b.ravel(), c.ravel())[0])


def test_region_restriction_changes_the_answer():
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[:, :2] = [[1, 2]] * 4
    b[:, :2] = [[1, 2]] * 4
    a[:, 2:] = [[5, 6]] * 4  # outside the face: a and b disagree there
    b[:, 2:] = [[6, 5]] * 4
    face = np.zeros((4, 4), bool)
    face[:, :2] = True
    assert pearson(a, b, region=face) == pytest.approx(1.0)
    assert pearson(a, b) < 1.0
    assert top_k_overlap(a, b, 50, region=face) == 1.0


def test_top_k_overlap_dice_and_iou():
    a = np.arange(16.0).reshape(4, 4)  # top 25% = the last row
    b = a.copy()
    b[3, :2] = -1  # b's top 4: half of a's last row + 2 pixels of row 2
    top_b = top_k_mask(b, 25)
    assert top_b.sum() == 4 and top_b[3, 2:].all() and top_b[2, 2:].all()
    assert top_k_overlap(a, b, 25) == pytest.approx(0.5)  # 2 shared of 4 and 4
    assert top_k_overlap(a, b, 25, measure="iou") == pytest.approx(2 / 6)
    assert top_k_overlap(a, a, 10) == 1.0
    with pytest.raises(InputError, match="percent"):
        top_k_overlap(a, b, 0)
    with pytest.raises(InputError, match="overlap measure"):
        top_k_overlap(a, b, 10, measure="jaccard")


def test_mass_inside_and_ground_truth_metrics():
    relevance = np.zeros((4, 4))
    relevance[0, 0], relevance[0, 1], relevance[3, 3], relevance[2, 2] = 3.0, 1.0, 4.0, -5.0
    truth = np.zeros((4, 4), bool)
    truth[0, :2] = True
    # positive mass: 3 + 1 inside of 3 + 1 + 4 in all; the negative pixel does not count
    assert relevance_mass_accuracy(relevance, truth) == pytest.approx(0.5)
    assert mass_inside(relevance, truth) == pytest.approx(0.5)
    assert mass_inside(relevance, truth, positive=False) == pytest.approx(4 / 13)
    # restricted to a region without the (3, 3) pixel: all positive mass is inside
    region = np.ones((4, 4), bool)
    region[3, 3] = False
    assert mass_inside(relevance, truth, region=region) == pytest.approx(1.0)
    # the 2 most relevant pixels are (3,3) and (0,0): one of the two is in the mask
    assert relevance_rank_accuracy(relevance, truth) == pytest.approx(0.5)
    relevance[3, 3] = 0.5
    assert relevance_rank_accuracy(relevance, truth) == pytest.approx(1.0)
    assert np.isnan(relevance_rank_accuracy(relevance, np.zeros((4, 4), bool)))
    assert np.isnan(relevance_mass_accuracy(-np.abs(relevance), truth))  # no positive relevance
    # analysis re-exports the one implementation in stimuli (model uses it too)
    assert metrics.relevance_mass_accuracy is stimuli.contracts.maps.relevance_mass_accuracy
    assert metrics.relevance_rank_accuracy is stimuli.contracts.maps.relevance_rank_accuracy


def test_histogram_intersection_and_emd():
    p = np.zeros((5, 5))
    q = np.zeros((5, 5))
    p[0, 0] = 2.0  # scale does not matter: maps are normalised to distributions
    q[3, 4] = 1.0
    assert histogram_intersection(p, q) == 0.0
    assert histogram_intersection(p, 5 * p) == pytest.approx(1.0)
    assert earth_movers_distance(p, q) == pytest.approx(7.0)  # city-block distance 3 + 4
    half = np.zeros((5, 5))
    half[0, 0] = half[0, 2] = 1.0
    assert histogram_intersection(p, half) == pytest.approx(0.5)
    assert earth_movers_distance(p, half) == pytest.approx(1.0)  # half the mass moves 2 pixels
    # one row: the 1D Wasserstein distance
    rng = np.random.default_rng(0)
    a, b = rng.random((1, 20)), rng.random((1, 20))
    positions = np.arange(20)
    assert earth_movers_distance(a, b) == pytest.approx(
        stats.wasserstein_distance(positions, positions, a[0], b[0]), rel=1e-6)
    # pooling large grids keeps the distance in original pixels
    big_p = np.zeros((128, 128))
    big_q = np.zeros((128, 128))
    big_p[10, 10] = big_q[10, 70] = 1.0
    assert earth_movers_distance(big_p, big_q, max_size=64) == pytest.approx(60.0)
    with pytest.raises(InputError, match="no positive mass"):
        histogram_intersection(-p, q)


def test_region_auc():
    inside = np.zeros((6, 6), bool)
    inside[:2] = True
    a = np.where(inside, 2.0, 1.0)
    assert region_auc(a, inside) == 1.0
    assert region_auc(-a, inside) == 0.0
    assert region_auc(np.ones((6, 6)), inside) == 0.5  # ties count half
    a[0, 0] = 0.0  # one inside pixel below all 24 outside pixels
    assert region_auc(a, inside) == pytest.approx(1 - 24 / (12 * 24))


def test_compare_maps_row():
    rng = np.random.default_rng(1)
    a = rng.random((10, 10))
    row = compare_maps(a, a, top_percents=(10, 25), emd=True)
    assert set(row) == {"pearson", "spearman", "dice_top10", "iou_top10", "dice_top25", "iou_top25",
                        "histogram_intersection", "emd_px"}
    assert row["pearson"] == pytest.approx(1.0) and row["emd_px"] == pytest.approx(0.0, abs=1e-9)
    negative = compare_maps(a, -a, top_percents=(10,))
    assert np.isnan(negative["histogram_intersection"]) and negative["dice_top10"] == 0.0


@pytest.mark.parametrize("metric", [pearson, spearman, top_k_overlap, histogram_intersection,
                                    earth_movers_distance, compare_maps])
def test_nan_maps_give_one_clear_message(metric):
    good = np.ones((4, 4))
    bad = good.copy()
    bad[1, 2] = np.nan
    with pytest.raises(InputError, match=r"second map contains 1 NaN or infinite value\(s\) \(first at row 1, col 2\)"):
        metric(good, bad)
    with pytest.raises(InputError, match="first map contains"):
        metric(bad, good)


def test_shape_and_mask_errors():
    with pytest.raises(InputError, match=r"second map has shape \(3, 3\), expected \(4, 4\)"):
        pearson(np.ones((4, 4)), np.ones((3, 3)))
    with pytest.raises(InputError, match="region is empty"):
        pearson(np.ones((4, 4)), np.ones((4, 4)), region=np.zeros((4, 4), bool))
    with pytest.raises(InputError, match="relevance contains"):
        relevance_mass_accuracy(np.full((2, 2), np.inf), np.ones((2, 2), bool))
    with pytest.raises(InputError, match="0/1"):
        relevance_rank_accuracy(np.ones((2, 2)), np.full((2, 2), 0.5))
