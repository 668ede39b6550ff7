"""``python -m experiments check CONFIG``: validate an experiment YAML and its inputs.

Loads the YAML, its stimulus set and relevance maps (every check the ``run`` command makes
before a window opens) and prints its trial sequence summary: trials per block, phase and
condition.

Examples
--------
::

    python -m experiments check experiments/bubbles_gender.yaml --seed 3
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import pandas as pd

from stimuli.contracts.cli import add_results, command_parser
from stimuli.contracts.errors import cli_errors

from .engine import load_task

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m experiments check``: the YAML, ``--results`` and ``--seed``.

    Returns
    -------
    argparse.ArgumentParser
        Ready for the words after ``check``.
    """
    check = command_parser("experiments", "check",
        "Load an experiment YAML, its stimulus set and relevance "
        "maps, and print its trial sequence summary.")
    check.add_argument("config")
    add_results(check)
    check.add_argument("--seed", type=int, default=0, help="seed of the sequence shown (default: 0)")
    return check


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m experiments check`` with ``argv`` (default: the command line).

    Prints the trial sequence summary and returns 0 (bad input: one line on stderr, exit status 2).
    """
    args = build_parser().parse_args(argv)
    task = load_task(args.config, args.results)
    plan = task.plan(args.seed)
    table = pd.DataFrame(plan)
    print(f"{args.config}: paradigm {task.paradigm}, task {task.label}, {len(plan)} trials")
    print(table.groupby(["block", "phase", "condition"], sort=False).size().to_string())
    return 0
