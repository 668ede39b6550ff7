"""Who takes part: the participant dialog and the checks of what it (or the flags) give.

The dialog itself is PsychoPy's (:func:`experiments.display.ask_participant`); whether it can
start at all is :mod:`experiments.dialog`'s question; this module validates the answers
(:func:`check_participant_fields`) so that a typo such as age ``abc`` is refused in one line
before anything runs.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from stimuli.contracts.errors import InputError
from stimuli.contracts.names import check_label

from .dialog import require_screen
from .task import NA

__all__ = ["AGE_RANGE", "check_participant_fields", "ask_participant_for"]


AGE_RANGE = (1, 120)  # years: an age outside is a typo in the dialog or the flag


def check_participant_fields(values: dict[str, Any]) -> dict[str, str]:
    """The participant dialog's (or flags') answers checked, each refusal one line.

    ``participant`` and ``session`` are BIDS labels (letters and digits); ``age`` is a number
    of years in ``AGE_RANGE``; ``sex`` and ``handedness`` are words (letters, spaces and '-',
    at most 32). Empty values and ``n/a`` stay empty (not asked).

    Parameters
    ----------
    values : dict
        Field name -> the value given (text, a number or None).

    Returns
    -------
    dict
        Field name -> the checked value as text (empty when not given).

    Examples
    --------
    >>> check_participant_fields({"participant": "07", "session": "1", "age": "23.5", "sex": "female"})
    {'participant': '07', 'session': '1', 'age': '23.5', 'sex': 'female'}
    >>> check_participant_fields({"age": "abc"})
    Traceback (most recent call last):
    stimuli.contracts.errors.InputError: age 'abc': must be a number of years from 1 to 120
    """
    checked = {}
    for key, raw in values.items():
        value = "" if raw is None else str(raw).strip()
        if key in ("participant", "session"):
            value = check_label(value, key)
        elif value in ("", NA):
            value = ""
        elif key == "age":
            try:
                age = float(value)
            except ValueError:
                age = float("nan")
            if not AGE_RANGE[0] <= age <= AGE_RANGE[1]:  # NaN fails too
                raise InputError(f"age {value[:20]!r}: must be a number of years from {AGE_RANGE[0]} to "
                                 f"{AGE_RANGE[1]}")
        elif key in ("sex", "handedness") and not re.fullmatch(r"[A-Za-z][A-Za-z -]{0,31}", value):
            raise InputError(f"{key} {value[:20]!r}: must be a word of letters (e.g. female, left), at most "
                             "32 characters")
        checked[key] = value
    return checked


def ask_participant_for(args: argparse.Namespace) -> dict[str, str]:
    """The dialog that asks what the command line left out (people only), its answers checked.

    Parameters
    ----------
    args : argparse.Namespace
        The ``run`` command's options (participant, session, age, sex, handedness, observer).

    Returns
    -------
    dict
        The dialog's answers, checked by :func:`check_participant_fields`.
    """
    if args.observer != "human":
        raise InputError("--participant and --session are required for simulated observers")
    require_screen()  # before psychopy is imported: no screen is one line, not a crash
    from .display import ask_participant  # lazy: the display imports psychopy

    answers = ask_participant({"participant": args.participant or "", "session": args.session or "1",
                               "age": args.age or "", "sex": args.sex or "", "handedness": args.handedness or ""})
    return check_participant_fields(answers)
