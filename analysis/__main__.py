"""Command line of the analysis part: ``python -m analysis <command> ...``.

Each command lives in its own module with a ``main(argv)`` (its own argparse, ``--help``);
adding a command is one entry in :data:`COMMANDS` (the pattern of every package:
:func:`stimuli.contracts.cli.dispatch`).

Examples
--------
::

    python -m analysis ci --data-root participants --task gender --stimuli orl128 --out results/analysis/ci
    python -m analysis run analysis/configs/demo.yaml --out results/demo
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stimuli.contracts.cli import dispatch

# command -> (module with main(argv), one line for the overview)
COMMANDS: dict[str, tuple[str, str]] = {
    "ci": ("analysis.ci", "classification images and Stat4Ci pixel/cluster tests from trial files"),
    "run": ("analysis.report.run", "the whole analysis from a YAML config, as report.html"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one analysis command: ``argv`` is the verb and its options (default: the command line).

    Returns the command's exit status; 2 for a missing or unknown verb (the overview goes to stderr).
    """
    return dispatch("analysis", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
