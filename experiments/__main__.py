"""Command line of the experiments part: ``python -m experiments <command> ...``.

Each command lives in its own module with a ``main(argv)`` (its own argparse, ``--help``);
adding a command is one entry in :data:`COMMANDS` (the pattern of every package:
:func:`stimuli.contracts.cli.dispatch`).

Examples
--------
::

    python -m experiments run experiments/bubbles_gender.yaml --participant 01 --session 1
    python -m experiments check experiments/similarity.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stimuli.contracts.cli import dispatch

# command -> (module with main(argv), one line for the overview)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("experiments.run", "run or resume one session (people on screen, simulated or model observers)"),
    "check": ("experiments.check", "validate an experiment YAML and its inputs, summarise its trial sequence"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Look the verb of ``argv`` up in :data:`COMMANDS` and run it, as ``python -m experiments`` does.

    The exit status is the command's own (3: a session stopped early, resumable), else 2 for no verb.
    """
    return dispatch("experiments", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
