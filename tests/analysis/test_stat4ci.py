"""Stat4Ci: intrinsic volumes, RFT thresholds against Worsley's formulas and published values,
the cluster test on a synthetic blob, and the tests' false-positive rates on Gaussian fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage, stats

from analysis.rft import (
    cluster_pvalue,
    cluster_size_threshold,
    ec_densities,
    expected_ec,
    fwhm_from_sigma,
    pixel_test_threshold,
    rft_threshold,
)
from analysis.search_region import IntrinsicVolumes, disc_intrinsic_volumes, intrinsic_volumes
from analysis.stat4ci import cluster_test, find_clusters, pixel_test
from stimuli.contracts.errors import InputError

FOUR_LN2 = 4 * math.log(2)


# --- an independent implementation of stat_threshold's Gaussian branch (Worsley, fmristat) ---
# closed-form EC densities per unit roughness (Worsley et al. 1996, Table 2), the threshold
# read off stat_threshold's own grid (F = ((1000:-1:1)/100)^4, i.e. Z = (k/100)^2) by linear
# interpolation of the monotone part of the p-value curve (its minterp1), and the minimum of
# the RFT and Bonferroni p-values.
def stat_threshold_gaussian(volumes, num_voxels, fwhm, p_val_peak=0.05):
    z = (np.arange(1000, 0, -1) / 100.0) ** 2
    gauss = np.exp(-z**2 / 2)
    rho = [stats.norm.sf(z), gauss / (2 * math.pi), z * gauss / (2 * math.pi) ** 1.5,
           (z**2 - 1) * gauss / (2 * math.pi) ** 2]
    pval_rf = sum(v / fwhm**d * FOUR_LN2 ** (d / 2) * rho[d] for d, v in enumerate(volumes))
    pval = np.minimum(pval_rf, num_voxels * rho[0])
    xs, ys = [pval[0]], [z[0]]
    for x, y in zip(pval[1:], z[1:]):
        if x > xs[-1]:
            xs.append(x)
            ys.append(y)
    return float(np.interp(p_val_peak, xs, ys))


def rectangle_volumes(height, width):
    """Intrinsic volumes of the lattice rectangle spanned by H x W pixel centres."""
    return [1.0, (height - 1) + (width - 1), (height - 1) * (width - 1)]


@pytest.mark.parametrize("fwhm", [10, 15, 20, 25, 30, 35, 40])
def test_pixel_threshold_256_agrees_with_worsley_stat_threshold(fwhm):
    ours = pixel_test_threshold((256, 256), fwhm)
    reference = stat_threshold_gaussian(rectangle_volumes(256, 256), 256 * 256, fwhm)
    assert abs(ours - reference) < 0.01
    # and the same search region given as a mask
    assert pixel_test_threshold(np.ones((256, 256), bool), fwhm) == pytest.approx(ours, abs=1e-9)


def test_published_stat_threshold_example():
    # stat_threshold's documentation: a 1,000,000 mm^3 sphere, 1,000,000 voxels, FWHM 6 mm,
    # Gaussian field (df = Inf), P = 0.05 -> 5.0038 ("stat_threshold(1000000, 1000000, 6)")
    volume = 1e6
    radius = (volume / (4 / 3 * math.pi)) ** (1 / 3)
    sphere = IntrinsicVolumes((1.0, 4 * radius, 2 * math.pi * radius**2, volume), 1_000_000)
    assert rft_threshold(sphere, 6.0, 0.05) == pytest.approx(5.0038, abs=0.01)
    assert stat_threshold_gaussian(sphere.volumes, 1e6, 6.0) == pytest.approx(5.0038, abs=0.005)


def test_ec_densities_match_closed_forms():
    t = np.array([2.0, 3.0, 4.5])
    rho = ec_densities(t, dim=3)
    gauss = np.exp(-t**2 / 2)
    np.testing.assert_allclose(rho[0], stats.norm.sf(t))
    np.testing.assert_allclose(rho[1], FOUR_LN2**0.5 / (2 * math.pi) * gauss)
    np.testing.assert_allclose(rho[2], FOUR_LN2 / (2 * math.pi) ** 1.5 * t * gauss)
    np.testing.assert_allclose(rho[3], FOUR_LN2**1.5 / (2 * math.pi) ** 2 * (t**2 - 1) * gauss)


def test_threshold_is_where_expected_ec_equals_alpha_and_behaves():
    t = pixel_test_threshold((128, 96), 12.0, 0.05, bonferroni=False)
    assert float(expected_ec(t, (128, 96), 12.0)) == pytest.approx(0.05, rel=1e-6)
    # smoother fields and smaller regions need lower thresholds; alpha=0.01 a higher one
    assert pixel_test_threshold((128, 128), 20) < pixel_test_threshold((128, 128), 10)
    assert pixel_test_threshold((64, 64), 10) < pixel_test_threshold((128, 128), 10)
    assert pixel_test_threshold((128, 128), 10, 0.01) > pixel_test_threshold((128, 128), 10, 0.05)
    assert pixel_test_threshold((128, 128), 10, two_sided=True) == pytest.approx(
        pixel_test_threshold((128, 128), 10, 0.025))
    # Bonferroni wins for a rough field: the threshold never exceeds it
    bonferroni = stats.norm.isf(0.05 / (32 * 32))
    assert pixel_test_threshold((32, 32), 0.5) == pytest.approx(bonferroni, abs=1e-6)
    # a single pixel: the uncorrected threshold
    assert pixel_test_threshold(np.eye(1, dtype=bool), 10) == pytest.approx(stats.norm.isf(0.05), abs=1e-6)


def test_intrinsic_volumes_of_masks():
    assert intrinsic_volumes((4, 6)).volumes == (1.0, 8.0, 15.0)
    ring = np.ones((5, 5), bool)
    ring[2, 2] = False  # a hole: EC 0
    assert intrinsic_volumes(ring).volumes == (0.0, 12.0, 12.0)
    two = np.zeros((6, 9), bool)
    two[1:3, 1:4] = True
    two[4:6, 5:9] = True  # two rectangles: EC 2, half perimeters and areas add
    assert intrinsic_volumes(two).volumes == (2.0, (1 + 2) + (1 + 3), 2 + 3)
    line = np.zeros((3, 7), bool)
    line[1, 1:6] = True  # a segment of length 4: half perimeter 4, area 0
    assert intrinsic_volumes(line).volumes == (1.0, 4.0, 0.0)
    diagonal = np.eye(3, dtype=bool)  # 4-connectivity: three separate points
    assert intrinsic_volumes(diagonal).volumes == (3.0, 0.0, 0.0)
    # a digital disc: EC 1, area and half perimeter near pi r^2 and pi r
    rr, cc = np.mgrid[:101, :101]
    disc = (rr - 50) ** 2 + (cc - 50) ** 2 <= 40**2
    euler, half_perimeter, area = intrinsic_volumes(disc).volumes
    assert euler == 1.0
    assert area == pytest.approx(math.pi * 40**2, rel=0.05)
    assert half_perimeter == pytest.approx(4 * 40, rel=0.03)  # lattice (city-block) perimeter 8r / 2


def test_disc_geometry_is_stat4ci_civol():
    volumes = disc_intrinsic_volumes(10000)
    radius = math.sqrt(10000 / math.pi)
    assert volumes.volumes == pytest.approx((1.0, math.pi * radius, 10000.0))
    face = np.zeros((128, 128), bool)
    face[10:118, 20:108] = True
    disc = pixel_test_threshold(face, 15, geometry="disc")
    assert disc == pytest.approx(stat_threshold_gaussian(volumes_of(face.sum()), face.sum(), 15), abs=0.01)
    # a disc of the pixel count and the exact lattice rectangle give nearly the same threshold
    assert disc == pytest.approx(pixel_test_threshold(face, 15), abs=0.01)


def volumes_of(n_pixels):
    radius = math.sqrt(n_pixels / math.pi)
    return [1.0, math.pi * radius, float(n_pixels)]


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


def test_cluster_formula_matches_stat_threshold_extent():
    # stat_threshold (Gaussian): EL = invol_D rho_D(t); cons = Gamma(D/2+1) (4ln2)^(D/2) / FWHM^D rho_D / P(Z>t);
    # P(max size >= k) = 1 - exp(-EL exp(-(cons k)^(2/D)))
    volumes, fwhm, t = rectangle_volumes(200, 150), 12.0, 2.7
    rho2 = t * math.exp(-t * t / 2) / (2 * math.pi) ** 1.5
    el = volumes[2] / fwhm**2 * FOUR_LN2 * rho2
    cons = math.gamma(2) * FOUR_LN2 / fwhm**2 * rho2 / stats.norm.sf(t)
    for k in (10, 100, 400):
        expected = 1 - math.exp(-el * math.exp(-cons * k))
        assert float(cluster_pvalue(k, (200, 150), fwhm, t)) == pytest.approx(expected, rel=1e-9)
    k05 = -math.log(-math.log(0.95) / el) / cons
    assert cluster_size_threshold((200, 150), fwhm, t) == pytest.approx(k05, rel=1e-9)


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
