"""The square grid: framing a photograph and the elliptical face aperture (stimuli/framing.py)."""

from __future__ import annotations

import numpy as np
import pytest

from stimuli.contracts.errors import InputError
from stimuli.framing import elliptical_aperture, frame_square


def test_framing_pad_keeps_the_whole_photo_and_crop_cuts_a_centred_square():
    image = np.arange(112 * 92, dtype=np.float32).reshape(112, 92)
    square, (rows, cols) = frame_square(image, "pad")
    assert square.shape == (112, 112) and np.array_equal(square[rows, cols], image)
    assert np.allclose(square[:, :10], image.mean())
    square, _ = frame_square(image, "crop")
    assert square.shape == (92, 92) and np.array_equal(square, image[10:102])
    with pytest.raises(InputError, match="unknown framing 'stretch'"):
        frame_square(image, "stretch")


def test_elliptical_aperture_is_a_centred_ellipse():
    mask = elliptical_aperture((64, 64), (0.5, 0.5, 0.25, 0.5))
    assert mask[32, 1] and mask[32, 62] and not mask[5, 32] and mask[20, 32]
    assert abs(mask.sum() - np.pi * 16 * 32) / (np.pi * 16 * 32) < 0.03
