"""Search regions: intrinsic volumes of masks on the pixel lattice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.search_region import intrinsic_volumes


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
