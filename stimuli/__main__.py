"""Command line of the stimuli part: ``python -m stimuli <command> ...``.

Each command lives in its own module with a ``main(argv)`` (its own argparse, ``--help``);
adding a command is one entry in :data:`COMMANDS` (the pattern of every package:
:func:`stimuli.contracts.cli.dispatch`).

Examples
--------
::

    python -m stimuli prepare --faces orl --size 128 --name orl128
    python -m stimuli render --stimuli orl128 --mode random --n-bubbles 20 --sigma 6 --out results/render
    python -m stimuli synth --region eyes --size 64 --name synth-eyes
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stimuli.contracts.cli import dispatch

# command -> (module with main(argv), one line for the overview)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("stimuli.prepare", "make a prepared stimulus set from a face set"),
    "render": ("stimuli.render", "render bubbles stimuli (random, guided, antiguided, top-k) as PNGs"),
    "synth": ("stimuli.synthetic", "make a two-class synthetic face set whose evidence lies only in one region"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """The ``python -m stimuli`` entry point: ``argv`` starts with one of the verbs of :data:`COMMANDS`.

    Returns the verb's exit status (0 on success, 2 on bad input or an unknown verb).
    """
    return dispatch("stimuli", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
