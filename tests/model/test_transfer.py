"""One target's masking curves (model.transfer.masking_curves) on hand-made evidence."""

from __future__ import annotations

import numpy as np
import pytest

from model.masking import (
    RANDOM,
    MaskingConfig,
    set_mean_name,
    uniform_fractions,
)
from model.masking_stats import (
    aopc_table,
    image_aopc,
)
from model.transfer import masking_curves


class FakeTarget:
    """Two classes; the logit of class 1 is the mean of the top-left quadrant (the evidence)."""

    name = "t"
    classes = ["a", "b"]

    def predict_logits(self, images, batch_size=64):
        evidence = images[:, :8, :8].mean(axis=(1, 2)) * 8 - 4
        return np.stack([np.zeros(len(images)), evidence], axis=1)


def test_masking_curves_keep_per_image_rows_that_add_up_to_the_set_rows():
    rng = np.random.default_rng(8)
    images = rng.random((12, 16, 16)).astype(np.float32)
    labels = (images[:, :8, :8].mean(axis=(1, 2)) > 0.5).astype(int)
    evidence = np.zeros((12, 16, 16))
    evidence[:, :8, :8] = 1 + rng.random((12, 8, 8))
    aperture = np.zeros((16, 16), bool)
    aperture[2:14, 2:14] = True
    masking = MaskingConfig(fractions=uniform_fractions(0.1, 0.5), modes=["remove"], fill="background",
                            random_repeats=2, random_smoothing=0.0)
    accuracy, per_image = masking_curves(FakeTarget(), images, labels, {"t": evidence}, masking=masking,
                                         background=0.5, seed=0, aperture=aperture,
                                         set_means={"t": evidence.mean(axis=0)},
                                         stimulus_id=[f"s{i}" for i in range(12)])
    assert set(accuracy.source) == {"t", RANDOM, set_mean_name("t")} and (accuracy.random_within == "aperture").all()
    assert len(per_image) == 3 * 6 * 12
    means = per_image.groupby(["source", "fraction"]).p_true.mean()
    for r in accuracy.itertuples():
        assert r.p_true == pytest.approx(means[(r.source, r.fraction)])
    aopc = aopc_table(image_aopc(per_image), n_boot=200).set_index("source").aopc
    # removing the evidence hurts more than random pixels inside the aperture
    assert aopc["t"] > aopc[RANDOM] and aopc[set_mean_name("t")] > aopc[RANDOM]
