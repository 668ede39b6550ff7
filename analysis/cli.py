"""``python -m analysis run``: the whole analysis from a YAML config, as ``report.html``.

The command line of :func:`analysis.report.run_report` (until the report's own command
module takes this verb over).

Examples
--------
>>> main(["analysis/configs/demo.yaml", "--out", "results/demo"])     # doctest: +SKIP
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from stimuli.contracts.cli import add_force, add_out
from stimuli.contracts.errors import cli_errors

from .report import main_run

__all__ = ["main"]


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis run CONFIG [--out DIR] [--force] [--embed]``: the report.

    Parameters
    ----------
    argv : sequence of str, optional
        The config and options (default: the process's arguments after ``run``).

    Returns
    -------
    int
        The exit status (2 with one line on stderr for bad input).
    """
    args = _parser().parse_args(argv)
    return main_run(argparse.Namespace(config=args.config, out=args.out, overwrite=args.force, embed=args.embed))


def _parser() -> argparse.ArgumentParser:
    """The options of ``run`` (the report module's own command replaces this one)."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis run",
        description="The whole analysis as one report: classification images and Stat4Ci tests per observer "
                    "group, relevance maps per variant, their stability across seeds, tasks and pretraining, "
                    "relevance-based masking, human-model alignment, accuracy by condition, and the findings "
                    "next to the seed study's. Writes report.html, tables/*.csv, maps/*.npz, figures/*.png and "
                    "provenance.json. Example config: analysis/configs/demo.yaml.")
    parser.add_argument("config", help="analysis config (YAML), e.g. analysis/configs/demo.yaml")
    add_out(parser, what="the report folder (default: <results>/analysis/<name>, name from the config or "
                         "its file name)")
    add_force(parser)
    parser.add_argument("--embed", action="store_true",
                        help="one self-contained report.html: every figure inlined (base64 PNG), no link to a "
                             "local file, for sending to a colleague (also 'embed: true' in the config)")
    return parser
