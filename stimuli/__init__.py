"""Face sets, prepared stimulus sets, bubble masks and relevance-guided masks.

The base of the platform: ``model``, ``experiments`` and ``analysis`` import it, it imports
none of them (and neither torch nor psychopy).
"""

from .bubbles import (
    MERGE_RULES,
    CentreSampler,
    bubbles_mask,
    compose,
    mask_from_trial,
    max_sensible_bubbles,
    sample_centres,
)
from .contracts.centres import format_centres, parse_centres
from .contracts.errors import InputError
from .faces import FaceSet, load_face_set, make_split, read_image

__all__ = [
    "MERGE_RULES",
    "CentreSampler",
    "FaceSet",
    "InputError",
    "bubbles_mask",
    "compose",
    "format_centres",
    "load_face_set",
    "make_split",
    "mask_from_trial",
    "max_sensible_bubbles",
    "parse_centres",
    "read_image",
    "sample_centres",
]
