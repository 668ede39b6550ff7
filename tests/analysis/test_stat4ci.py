"""Stat4Ci: bad inputs, the cluster test on a synthetic blob, 4-connected clusters, and the
tests' false-positive rates on Gaussian fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from analysis.rft import (
    cluster_size_threshold,
    fwhm_from_sigma,
    pixel_test_threshold,
)
from analysis.stat4ci import cluster_test, find_clusters, pixel_test
from stimuli.contracts.errors import InputError


def test_bad_threshold_inputs_are_clear():
    with pytest.raises(InputError, match="alpha"):
        pixel_test_threshold((64, 64), 10, alpha=1.5)
    with pytest.raises(InputError, match="FWHM"):
        pixel_test_threshold((64, 64), 0)
    with pytest.raises(InputError, match="empty"):
        pixel_test_threshold(np.zeros((8, 8), bool), 10)
    with pytest.raises(InputError, match="NaN"):
        pixel_test(np.full((8, 8), np.nan), 5.0)
    with pytest.raises(InputError, match="geometry"):
        pixel_test_threshold((8, 8), 5.0, geometry="square")


def smooth_field(rng, shape, sigma, pad=None):
    """A unit-variance stationary Gaussian field: white noise convolved with a Gaussian."""
    pad = pad or int(4 * sigma)
    noise = rng.standard_normal((shape[0] + 2 * pad, shape[1] + 2 * pad))
    field = ndimage.gaussian_filter(noise, sigma, mode="constant", truncate=4.0)
    impulse = np.zeros((8 * pad + 1, 8 * pad + 1))
    impulse[4 * pad, 4 * pad] = 1
    norm = math.sqrt((ndimage.gaussian_filter(impulse, sigma, mode="constant", truncate=4.0) ** 2).sum())
    return field[pad:-pad, pad:-pad] / norm


def test_cluster_test_finds_a_synthetic_blob_the_pixel_test_misses():
    rng = np.random.default_rng(3)
    shape, sigma = (128, 128), 4.0
    fwhm = fwhm_from_sigma(sigma)
    rr, cc = np.mgrid[:128, :128]
    distance2 = (rr - 40) ** 2 + (cc - 85) ** 2
    blob = 3.4 * np.exp(-distance2 / (2 * 15.0**2))  # wide, low
    z = smooth_field(rng, shape, sigma) + blob
    pixel = pixel_test(z, fwhm)
    clusters = cluster_test(z, fwhm, cluster_threshold=2.7)
    assert pixel.threshold > blob.max()  # too low for the pixel test...
    assert (clusters.significant & (distance2 < 10**2)).any()  # ...but found as a cluster
    assert not (clusters.significant & (distance2 > 35**2)).any()  # and nothing far from it
    # sizes in the table are the pixel counts of the labels; p falls with size
    sizes = np.bincount(clusters.labels.ravel())[1:]
    np.testing.assert_array_equal(clusters.table.size_px.to_numpy(), sizes)
    assert (clusters.table.sort_values("size_px").p.diff().dropna() <= 1e-12).all()
    # the significant clusters are exactly those above the size threshold
    assert ((clusters.table.size_px >= clusters.size_threshold) == clusters.table.significant).all()


def test_find_clusters_uses_four_connectivity_and_region():
    z = np.zeros((6, 6))
    z[1, 1] = z[2, 2] = 5.0  # diagonal neighbours: two clusters
    z[4, 1:4] = 5.0
    labels, table = find_clusters(z, 3.0)
    assert len(table) == 3 and sorted(table.size_px) == [1, 1, 3]
    region = np.ones((6, 6), bool)
    region[4] = False
    assert len(find_clusters(z, 3.0, region)[1]) == 2
    assert len(find_clusters(np.zeros((4, 4)), 1.0)[1]) == 0


def test_rft_tests_hold_their_false_positive_rate_on_gaussian_fields():
    rng = np.random.default_rng(11)
    shape, sigma, runs = (96, 96), 4.0, 200
    fwhm = fwhm_from_sigma(sigma)
    threshold = pixel_test_threshold(shape, fwhm)
    size_threshold = cluster_size_threshold(shape, fwhm, 2.7)
    pixel_hits = cluster_hits = 0
    for _ in range(runs):
        z = smooth_field(rng, shape, sigma)
        pixel_hits += z.max() > threshold
        _, table = find_clusters(z, 2.7)
        cluster_hits += bool(len(table)) and table.size_px.max() >= size_threshold
    bound = 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)
    assert pixel_hits / runs <= bound
    assert cluster_hits / runs <= bound
    # and the RFT is not wildly conservative for a smooth field
    assert pixel_hits >= 2
