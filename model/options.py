"""The options every ``python -m model`` command shares, worded once.

Each command reads its inputs (prepared sets, variants, relevance maps) from the results root
and writes under it, so ``--out`` means the same for all of them; the flags themselves come
from :mod:`stimuli.contracts.cli` (one definition and help text per flag in the whole tree).

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="python -m model demo")
>>> add_results_root(parser)
>>> vars(parser.parse_args(["--device", "cpu"]))
{'out': 'results', 'device': 'cpu'}
"""

from __future__ import annotations

import argparse

from stimuli.contracts.cli import add_device, add_out

__all__ = ["RESULTS_ROOT", "add_results_root"]

RESULTS_ROOT = "the results root (reads models/, stimuli/, relevance/ from it and writes under it)"


def add_results_root(parser: argparse.ArgumentParser, *, device: bool = True) -> None:
    """Add ``--out DIR`` (the results root, default ``results``) and, with ``device``, ``--device``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    device : bool
        Also add ``--device`` (every command that runs a model does).
    """
    add_out(parser, default="results", what=RESULTS_ROOT)
    if device:
        add_device(parser)
