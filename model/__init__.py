"""VGG-16 face classifiers: variants, pretrained weights, training and loading.

Public API (see DESIGN.md):

- :func:`build_vgg16` -- torchvision's VGG-16 (``vgg16``/``vgg16_bn``) with a width multiplier.
- :func:`load_variant` / :class:`LoadedVariant` -- a trained variant for inference.
- :func:`to_model_input` -- grey stimuli in [0, 1] -> the normalised model input.
- :func:`select_device` -- cuda, else mps, else cpu.

Commands: ``python -m model train CONFIG.yaml [--only VARIANT] [--out DIR] [--device D]``.

Examples
--------
>>> from model import select_device
>>> select_device("cpu")
device(type='cpu')
"""

from .architecture import build_vgg16
from .device import select_device
from .preprocess import to_model_input
from .variants import LoadedVariant, load_variant

__all__ = [
    "build_vgg16",
    "load_variant",
    "LoadedVariant",
    "select_device",
    "to_model_input",
]
