"""The numbers the analysis must reach: family-wise error of the pixel test under the null, and
recovery of a known diagnostic region by 10 simulated observers x 1,000 trials (two regions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ci_simulation import simulate_group
from scipy import ndimage

from analysis.ci_pipeline import CIConfig, run_ci
from analysis.classification import BubbleTrials, centre_histogram, compute_ci, group_z
from analysis.metrics import region_auc
from analysis.rft import fwhm_from_sigma, pixel_test_threshold
from stimuli.regions import region_mask


@pytest.mark.slow
def test_pixel_test_family_wise_error_under_the_null():
    # 200 simulated experiments, 3 observers x 400 trials each, accuracy independent of the
    # apertures (a 64x64 grid and sigma 3 px keep it fast; FWHM 7 px)
    rng = np.random.default_rng(2024)
    shape, sigma, experiments = (64, 64), 3.0, 200
    threshold = pixel_test_threshold(shape, fwhm_from_sigma(sigma))
    false_positives = 0
    for _ in range(experiments):
        observers = []
        for _ in range(3):
            n = rng.integers(8, 17, size=400)
            trial_of = np.repeat(np.arange(400), n)
            centres = rng.integers(0, 64, size=(len(trial_of), 2)).astype(float)
            correct = (rng.random(400) < 0.75).astype(float)
            observers.append(BubbleTrials(shape, centres, trial_of, correct, np.full(400, sigma)))
        density = centre_histogram(np.concatenate([o.centres for o in observers]), shape)
        z = group_z([compute_ci(o, centre_density=density).z for o in observers])
        false_positives += z.max() > threshold
    rate = false_positives / experiments
    print(f"pixel test family-wise false-positive rate: {rate:.3f} over {experiments} experiments "
          f"(threshold {threshold:.3f})")
    assert rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / experiments)


@pytest.mark.slow
@pytest.mark.parametrize("region", ["eyes", "mouth"])
def test_group_ci_recovers_the_diagnostic_region(tmp_path, tiny_set, region):
    results, name, _ = tiny_set
    shape = (40, 40)
    simulate_group(tmp_path / "data", 10, shape, region, seed={"eyes": 1, "mouth": 2}[region], n_trials=1000,
                   sigma_px=2.5, n_bubbles=(6, 12))
    config = CIConfig(data_root=str(tmp_path / "data"), task="gender", stimuli=name, results=str(results),
                      search_region="all")
    outputs = run_ci(config, tmp_path / "out", progress=False)
    assert outputs.exclusions.empty
    with np.load(outputs.maps["random"]) as maps:
        z, pixel_sig = maps["z"], maps["pixel_sig"]
        assert maps["participant_z"].shape == (10, *shape)
    truth = region_mask(region, shape)
    auc = region_auc(z, truth)
    print(f"{region}: ROC AUC of the group Z map {auc:.3f}; significant pixels inside "
          f"{int((pixel_sig & truth).sum())} of {int(truth.sum())}, outside {int((pixel_sig & ~truth).sum())}")
    assert (pixel_sig & truth).any()
    assert auc >= 0.9
    # what is significant is the region blurred by the apertures (sigma 2.5 px), nothing far from it
    distance = ndimage.distance_transform_edt(~truth)
    assert distance[pixel_sig].max() <= 3 * 2.5
