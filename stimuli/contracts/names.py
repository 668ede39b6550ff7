"""Free text as a part of a file name: the one cleaner every package uses.

Names that are part of a contract (participants, tasks, conditions, stimulus ids) are
*validated*, never rewritten (:func:`stimuli.contracts.trials.check_name`), so two of them
cannot share a file. Free text that only labels an output (an observer group, a variant
with a file path in it) is *cleaned* by :func:`safe_name`.
"""

from __future__ import annotations

import re

__all__ = ["safe_name"]


def safe_name(text: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``_ . -`` made one ``-``.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The cleaned text without leading or trailing ``-``; ``"none"`` when nothing is left.

    Examples
    --------
    >>> safe_name("model:vgg16 imagenet/gender s0")
    'model-vgg16-imagenet-gender-s0'
    >>> safe_name("?!")
    'none'
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "none"
