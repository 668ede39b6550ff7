"""The model observer: a trained variant answers a classification task.

**Model observer** (:class:`ModelObserver`): ``model.load_variant(VARIANT, results)`` (imported
only here, lazily) classifies the composed stimuli in batches; the answer is the task's answer
with the largest logit (other classes of the variant are ignored: a k-alternative choice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stimuli.contracts.errors import InputError

from ..task import Response, Trial
from .base import Observer

__all__ = ["ModelObserver"]


class ModelObserver(Observer):
    """A trained variant answers: the task's answer with the largest logit.

    Parameters
    ----------
    variant : str
        The model variant (``model.load_variant``), e.g. ``vgg16-imagenet-gender-s0``.
    classes : sequence of str
        The task's answers, each a class of the variant.
    results : str
        The results root holding the variant.
    batch : int
        How many trials it classifies in one call, at most.
    """

    kind = "model"

    def __init__(self, variant: str, classes: Sequence[str], *, results: str = "results", batch: int = 8) -> None:
        try:
            from model import load_variant  # lazy: model imports torch (model observers only)
        except ImportError as error:
            raise InputError(f"the model observer needs the model package (pip install '.[all]'): {error}") from None
        self.variant = variant
        self.loaded = load_variant(variant, results)
        names = [str(c) for c in self.loaded.classes]
        missing = [c for c in classes if c not in names]
        if missing:
            raise InputError(f"model variant '{variant}' has no class '{missing[0]}' (it classifies "
                             f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''})")
        self.classes = list(classes)
        self.columns = np.array([names.index(c) for c in self.classes])
        self.batch = int(batch)

    def respond(self, trials: Sequence[Trial]) -> list[Response]:
        images = np.stack([t.images[0] for t in trials]).astype(np.float32)
        logits = np.asarray(self.loaded.predict_logits(images), dtype=np.float64)
        choice = np.argmax(logits[:, self.columns], axis=1)
        return [Response(self.classes[int(c)], extra={"logits": logits[i, self.columns].tolist()})
                for i, c in enumerate(choice)]

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": self.kind, "variant": self.variant, "batch_trials": self.batch,
                                "classes_used": self.classes}
        for attr in ("config", "folder", "path"):
            value = getattr(self.loaded, attr, None)
            if value is not None and isinstance(value, (str, int, float, dict, list)):
                info[attr] = value
        return info
