"""Observers: what answers a task's trials. One module per kind, all writing the same trial file.

- :mod:`~experiments.observers.base`: :class:`Observer`, the interface (the human observer is
  the PsychoPy display, :class:`experiments.display.Display`);
- :mod:`~experiments.observers.template`: :class:`TemplateObserver`, a noisy ideal template
  matcher restricted to a diagnostic region (bubbles);
- :mod:`~experiments.observers.model`: :class:`ModelObserver`, a trained variant (bubbles);
- :mod:`~experiments.observers.embedding`: :class:`EmbeddingObserver`, similarity judgements
  from distances between faces (the similarity task's ``simulated`` and ``model:VARIANT``);
- :mod:`~experiments.observers.spec`: the ``--observer`` forms, :func:`parse_observer` and
  :func:`make_observer`.

Examples
--------
>>> parse_observer("template:eyes")
('template', 'eyes')
"""

from .base import Observer
from .embedding import RATING_SCALE, EmbeddingObserver, load_embedding, scaled_distances
from .model import ModelObserver
from .spec import CLASSIFICATION_FORMS, make_observer, parse_observer
from .template import TemplateObserver

__all__ = [
    "CLASSIFICATION_FORMS",
    "RATING_SCALE",
    "EmbeddingObserver",
    "ModelObserver",
    "Observer",
    "TemplateObserver",
    "load_embedding",
    "make_observer",
    "parse_observer",
    "scaled_distances",
]
