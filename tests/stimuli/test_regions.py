"""Named face regions and boxes (stimuli/regions.py)."""

from __future__ import annotations

import pytest

from stimuli.contracts.errors import InputError
from stimuli.regions import region_mask


def test_region_masks_by_name_and_box():
    eyes, mouth = region_mask("eyes", (100, 100)), region_mask("mouth", (100, 100))
    assert eyes.any() and mouth.any() and not (eyes & mouth).any()
    assert region_mask("box:0,0.5,0,0.5", (10, 10)).sum() == 25
    with pytest.raises(InputError, match="unknown region 'chin'"):
        region_mask("chin", (10, 10))
    with pytest.raises(InputError, match="box:top,bottom,left,right"):
        region_mask("box:0.5,0.2,0,1", (10, 10))
