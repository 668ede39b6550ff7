"""The ``--observer`` spec: the forms a task takes, and the screenless observer it names.

``human`` is the PsychoPy display (:mod:`experiments.display`); classification tasks (bubbles)
take ``template``, ``template:REGION`` and ``model:VARIANT`` (:data:`CLASSIFICATION_FORMS`);
a task with other observers (the similarity task's ``simulated`` and ``model:VARIANT``) names
its forms in ``observer_forms`` and builds them itself (:meth:`experiments.task.Task.make_observer`),
and :func:`make_observer` asks it first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stimuli.contracts.errors import InputError

from .base import Observer
from .model import ModelObserver
from .template import TemplateObserver

__all__ = ["CLASSIFICATION_FORMS", "parse_observer", "make_observer"]


# the --observer forms of classification tasks (bubbles); other tasks name their own
CLASSIFICATION_FORMS: dict[str, tuple[str, ...]] = {"template": ("template", "template:REGION"),
                                                    "model": ("model:VARIANT",)}


def parse_observer(spec: str, forms: Mapping[str, Sequence[str]] | None = None) -> tuple[str, str | None]:
    """``human`` or one of ``forms`` (kind -> accepted forms) -> (kind, argument).

    ``forms`` defaults to the classification observers: ``template``, ``template:REGION``,
    ``model:VARIANT``. A form with a colon takes an argument, one without stands alone.

    Parameters
    ----------
    spec : str
        The ``--observer`` value, e.g. ``template:eyes``.
    forms : mapping, optional
        kind -> the forms it takes, e.g. ``{"simulated": ("simulated",)}``.

    Returns
    -------
    tuple
        ``(kind, argument)``; the argument is None for a form without one.

    Examples
    --------
    >>> parse_observer("model:vgg16-imagenet-gender-s0")
    ('model', 'vgg16-imagenet-gender-s0')
    """
    forms = CLASSIFICATION_FORMS if forms is None else forms
    kind, _, argument = str(spec).partition(":")
    accepted = {"human": ("human",), **{k: tuple(v) for k, v in forms.items()}}
    shapes = accepted.get(kind, ())
    bare, with_argument = kind in shapes, any(":" in f for f in shapes)
    if not shapes or (argument and not with_argument) or (not argument and not bare):
        listed = [f for shape in accepted.values() for f in shape]
        usage = ", ".join(listed[:-1]) + f" or {listed[-1]}" if len(listed) > 1 else listed[0]
        raise InputError(f"--observer '{spec}': use {usage}")
    return kind, argument or None


def make_observer(spec: str, task: Any, *, seed: int, results: str = "results") -> Observer:
    """A screenless observer of ``task``: the task's own (:meth:`Task.make_observer`), else a
    classification observer for a task with ``classification_set``.

    Parameters
    ----------
    spec : str
        The ``--observer`` value (not ``human``).
    task : Task
        The loaded task.
    seed : int
        The session seed (the observer's noise is drawn from it).
    results : str
        The results root (model variants).

    Returns
    -------
    Observer
        The task's own observer, else a :class:`TemplateObserver` or :class:`ModelObserver`.
    """
    forms = getattr(task, "observer_forms", None) or CLASSIFICATION_FORMS
    kind, argument = parse_observer(spec, forms)
    if kind == "human":
        raise InputError(f"--observer {spec}: people answer through the display (experiments.display)")
    own = getattr(task, "make_observer", None)
    observer = own(kind, argument, seed=seed, results=results) if own is not None else None
    if observer is not None:
        return observer
    if not hasattr(task, "classification_set"):
        raise InputError(f"--observer {spec}: the {task.paradigm} task has no {kind} observer")
    if kind == "template":
        settings = task.config.template_observer
        images, labels, classes = task.classification_set()
        region = argument or settings.region
        if region == "aperture":
            if task.set.aperture is None:
                raise InputError("template observer region 'aperture': the stimulus set has no aperture")
            region = task.set.aperture
        observer = TemplateObserver(images, labels, classes, task.background, region,
                                    templates=settings.templates, noise_sd=settings.noise_sd,
                                    full_view_accuracy=settings.full_view_accuracy, seed=seed)
        observer.region_spec = argument or settings.region
        return observer
    if kind == "model":
        return ModelObserver(argument, task.classification_set()[2], results=results,
                             batch=task.config.model_observer.batch_trials)
    raise InputError(f"--observer {spec}: the {task.paradigm} task has no {kind} observer")
