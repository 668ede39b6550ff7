"""The one command pattern: ``python -m <package> <verb>`` and the options every command shares.

Every package's ``__main__`` holds a table of commands (verb -> module with ``main(argv)``, one
line for the overview) and hands it to :func:`dispatch`. Commands add the shared options with
the functions below, so a flag has one name, one meaning and one help text everywhere:

``--results DIR``
    the results root a command *reads* prepared sets, variants and relevance maps from.
``--out DIR``
    where this command *writes* (for ``model`` and ``stimuli`` commands the results root they
    write under; for ``render`` and ``analysis`` commands their own output folder).
``--device``
    ``auto`` (CUDA, else MPS, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
``--force``
    replace this command's own earlier output (moved aside, never deleted); participant data
    is never replaced.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="demo")
>>> add_out(parser, default="results", what="the results root")
>>> add_force(parser)
>>> vars(parser.parse_args(["--force"]))
{'out': 'results', 'force': True}
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence

__all__ = ["DEVICE_CHOICES_HELP", "add_device", "add_force", "add_out", "add_results", "command_parser", "dispatch",
           "parse_command"]

DEVICE_CHOICES_HELP = "auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps (default: auto)"


def add_results(parser: argparse.ArgumentParser, default: str = "results") -> None:
    """Add ``--results DIR``: the results root this command reads its inputs from.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    default : str
        The root when the flag is not given.
    """
    parser.add_argument("--results", default=default, metavar="DIR",
                        help=f"results root to read prepared sets, variants and maps from (default: {default})")


def add_out(parser: argparse.ArgumentParser, *, default: str | None = None, what: str = "the output folder",
            required: bool = False) -> None:
    """Add ``--out DIR``: where this command writes.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    default : str, optional
        The folder when the flag is not given (``None`` with ``required=False``: the command
        picks one and says so in its help).
    what : str
        What the folder is for this command (``"the results root"``, ``"the output folder"``).
    required : bool
        Whether the flag must be given.
    """
    tail = f" (default: {default})" if default is not None else ""
    parser.add_argument("--out", default=default, required=required, metavar="DIR",
                        help=f"where this command writes: {what}{tail}")


def add_device(parser: argparse.ArgumentParser) -> None:
    """Add ``--device``: where the model runs.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    """
    parser.add_argument("--device", default="auto", help=DEVICE_CHOICES_HELP)


def add_force(parser: argparse.ArgumentParser) -> None:
    """Add ``--force``: replace this command's own earlier output.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    """
    parser.add_argument("--force", action="store_true",
                        help="replace this command's own earlier output (moved aside, never deleted; "
                             "participant data is never replaced)")


def command_parser(package: str, verb: str, description: str) -> argparse.ArgumentParser:
    """The parser of one command, named as it is typed: ``python -m <package> <verb>``.

    Parameters
    ----------
    package : str
        The package, e.g. ``"stimuli"``.
    verb : str
        The command's verb, e.g. ``"render"``.
    description : str
        What the command does (its ``--help`` text).

    Returns
    -------
    argparse.ArgumentParser
        A parser without options yet.

    Examples
    --------
    >>> command_parser("demo", "hello", "Say hello.").prog
    'python -m demo hello'
    """
    return argparse.ArgumentParser(prog=f"python -m {package} {verb}", description=description)


def parse_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
                  ) -> tuple[argparse.Namespace, list[str]]:
    """Parse a command's arguments and give the command line it records in ``provenance.json``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser; its ``prog`` is how the command is typed (``python -m stimuli render``).
    argv : sequence of str, optional
        The arguments after the verb (default: ``sys.argv[1:]``).

    Returns
    -------
    args : argparse.Namespace
        The parsed options.
    command : list of str
        ``prog`` split into words, then ``argv``.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="python -m demo hello")
    >>> add_force(parser)
    >>> parse_command(parser, ["--force"])
    (Namespace(force=True), ['python', '-m', 'demo', 'hello', '--force'])
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    return parser.parse_args(argv), [*parser.prog.split(), *argv]


def _overview(package: str, commands: Mapping[str, tuple[str, str]]) -> str:
    width = max(len(name) for name in commands)
    lines = [f"usage: python -m {package} <command> [options]   (python -m {package} <command> --help)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in commands.items()]
    return "\n".join(lines)


def dispatch(package: str, commands: Mapping[str, tuple[str, str]], argv: Sequence[str] | None = None) -> int:
    """Run ``python -m <package> <command> ...``: look the verb up and call its module's ``main``.

    Parameters
    ----------
    package : str
        The package's name, for the usage line.
    commands : mapping
        verb -> (module that has ``main(argv) -> int``, one line for the overview). Modules are
        imported only when their verb is asked for, so ``--help`` of one command stays fast.
    argv : sequence of str, optional
        The arguments after ``python -m <package>`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: the command's, 0 for ``--help``, 2 for no or an unknown command (then
        the overview goes to stderr).

    Examples
    --------
    >>> dispatch("demo", {"hello": ("json", "say hello")}, ["--help"])
    usage: python -m demo <command> [options]   (python -m demo <command> --help)
    <BLANKLINE>
    commands:
      hello  say hello
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(_overview(package, commands))
        return 0
    if not argv:  # a usage error: the overview goes where errors go
        print(_overview(package, commands), file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"error: unknown command '{name}'\n{_overview(package, commands)}", file=sys.stderr)
        return 2
    module = importlib.import_module(commands[name][0])
    return int(module.main(rest) or 0)
