"""The paradigm registry: ``paradigm: NAME`` in an experiment YAML -> its task class.

A paradigm module registers its task class with :func:`register_paradigm` (as zennit
registers composites); the class names its config dataclass in ``config_class``. This module
holds only the registry: the engine (:mod:`experiments.engine`) imports the paradigm modules
(:mod:`experiments.bubbles`, :mod:`experiments.similarity`), which fills it.

Examples
--------
>>> @register_paradigm("demo-paradigm")
... class DemoTask:
...     config_class = dict
>>> PARADIGMS["demo-paradigm"] is DemoTask
True
>>> del PARADIGMS["demo-paradigm"]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["PARADIGMS", "register_paradigm"]

PARADIGMS: dict[str, type] = {}  # name -> task class (with its ``config_class``)

T = TypeVar("T", bound=type)


def register_paradigm(name: str) -> Callable[[T], T]:
    """A class decorator that makes ``paradigm: name`` loadable.

    Parameters
    ----------
    name : str
        The ``paradigm`` value of the YAML (and the task class's ``paradigm``).

    Returns
    -------
    callable
        The decorator: it records the task class under ``name`` and returns it unchanged.
    """
    def register(task_class: T) -> T:
        PARADIGMS[name] = task_class
        return task_class

    return register
