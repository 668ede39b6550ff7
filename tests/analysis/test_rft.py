"""Random field theory: EC densities, thresholds and cluster p-values against Worsley's
stat_threshold formulas and published values, and Stat4Ci's disc geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.rft import (
    cluster_pvalue,
    cluster_size_threshold,
    ec_densities,
    expected_ec,
    pixel_test_threshold,
    rft_threshold,
)
from analysis.search_region import IntrinsicVolumes, disc_intrinsic_volumes

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


def volumes_of(n_pixels):
    radius = math.sqrt(n_pixels / math.pi)
    return [1.0, math.pi * radius, float(n_pixels)]


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
