"""Names that become parts of file names: the rules they are validated by, and the one cleaner.

Names that are part of a contract are *validated*, never rewritten, so two of them cannot
share a file: BIDS labels (participant, session, task: :func:`check_label`) and names
(conditions, class labels: :func:`is_name`, :func:`check_name`). Free text that only labels
an output (an observer group, a variant with a file path in it) is *cleaned* by
:func:`safe_name`.
"""

from __future__ import annotations

import re

from .errors import InputError

__all__ = ["MAX_LABEL_LENGTH", "NAME_RULE", "check_label", "is_name", "check_name", "safe_name"]

_LABEL = re.compile(r"[A-Za-z0-9]+")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
# a label names folders and files: long ones break file systems (255 bytes a name) and reports
MAX_LABEL_LENGTH = 64
NAME_RULE = "letters, digits, '_' and '-' only"


def check_label(value: object, what: str) -> str:
    """A BIDS label (participant, session or task): letters and digits only, at most 64 of them.

    Parameters
    ----------
    value : object
        The label (converted with ``str`` and stripped).
    what : str
        What it labels, for the error message.

    Returns
    -------
    str
        The label.

    Examples
    --------
    >>> check_label("01", "participant")
    '01'
    """
    text = str(value).strip()
    if len(text) > MAX_LABEL_LENGTH:
        raise InputError(f"{what} '{text[:20]}...' is {len(text)} characters long; at most "
                         f"{MAX_LABEL_LENGTH} (letters and digits, BIDS label)")
    if not _LABEL.fullmatch(text):
        raise InputError(f"{what} {text[:40]!r} must be letters and digits only (BIDS label), e.g. 01")
    return text


def is_name(value: object) -> bool:
    """Whether ``value`` is a valid name (a condition or a class label): letters, digits, ``_``, ``-``.

    Such names key files and tables (``ci_group_<task>_<condition>.npz``), so two different
    names can never land in one file, and a trial file's cells never hold a tab or newline.

    Parameters
    ----------
    value : object
        The candidate (only a ``str`` can be a name).

    Returns
    -------
    bool
        Whether it is one (at most :data:`MAX_LABEL_LENGTH` characters).

    Examples
    --------
    >>> is_name("random-A"), is_name("random A")
    (True, False)
    """
    return isinstance(value, str) and len(value) <= MAX_LABEL_LENGTH and bool(_NAME.fullmatch(value))


def check_name(value: object, what: str) -> str:
    """``value`` if :func:`is_name`, else one :class:`InputError` line naming ``what``.

    Parameters
    ----------
    value : object
        The candidate name.
    what : str
        What it names (``"condition"``), for the error message.

    Returns
    -------
    str
        ``value`` as a string, unchanged.

    Examples
    --------
    >>> check_name("guided", "condition")
    'guided'
    """
    if not is_name(value):
        raise InputError(f"{what} {str(value)[:40]!r} must be {NAME_RULE} (at most {MAX_LABEL_LENGTH})")
    return str(value)


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
