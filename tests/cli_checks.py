"""Checks shared by the attack tests of every package's command line."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (relative path -> digest)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(capsys, main: Callable[[Sequence[str]], object], argv: list[str]) -> str:
    """Run a ``python -m <package>`` main in-process; it must exit 2 with exactly one line on stderr."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def run_command(main: Callable[[Sequence[str]], object], argv: list[str], capsys) -> tuple[object, str, str]:
    """Run a command's ``main`` in-process: (exit code, stdout, stderr), whether it returns or exits."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err
