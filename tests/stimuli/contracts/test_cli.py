"""The one command pattern and the shared options (stimuli/contracts/cli.py)."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from stimuli.contracts.cli import (
    DEVICE_CHOICES_HELP,
    add_device,
    add_force,
    add_out,
    add_results,
    command_parser,
    dispatch,
    parse_command,
)

COMMANDS = {"hello": ("fake_hello_command", "say hello"), "fail": ("fake_fail_command", "exit 3")}


@pytest.fixture
def commands(monkeypatch):
    """Two command modules: ``hello`` prints its arguments and returns None, ``fail`` returns 3."""
    seen = []
    hello = types.ModuleType("fake_hello_command")
    hello.main = lambda argv: seen.append(list(argv))
    fail = types.ModuleType("fake_fail_command")
    fail.main = lambda argv: 3
    monkeypatch.setitem(sys.modules, "fake_hello_command", hello)
    monkeypatch.setitem(sys.modules, "fake_fail_command", fail)
    return seen


def test_dispatch_refuses_an_unknown_verb_with_the_overview_on_stderr(commands, capsys):
    assert dispatch("demo", COMMANDS, ["helo", "--x"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: unknown command 'helo'\n")
    assert "usage: python -m demo <command>" in err and "  hello  say hello" in err and "  fail   exit 3" in err
    assert commands == []


def test_dispatch_help_exits_0_and_no_verb_exits_2(commands, capsys):
    for argv in (["--help"], ["-h"]):
        assert dispatch("demo", COMMANDS, argv) == 0
        assert "commands:\n  hello  say hello" in capsys.readouterr().out
    assert dispatch("demo", COMMANDS, []) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage: python -m demo" in err and "  hello  say hello" in err
    assert commands == []


def test_dispatch_passes_the_rest_and_the_exit_code_through(commands, monkeypatch):
    assert dispatch("demo", COMMANDS, ["hello", "a", "--b"]) == 0  # None is success
    assert commands == [["a", "--b"]]
    assert dispatch("demo", COMMANDS, ["fail"]) == 3
    monkeypatch.setattr(sys, "argv", ["python -m demo", "hello", "from-argv"])
    assert dispatch("demo", COMMANDS) == 0 and commands[-1] == ["from-argv"]


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(action for action in parser._actions if flag in action.option_strings)


def test_the_shared_flags_have_one_default_and_help_text():
    parser = argparse.ArgumentParser()
    add_results(parser)
    add_out(parser, default="results", what="the results root")
    add_device(parser)
    add_force(parser)
    assert vars(parser.parse_args([])) == {"results": "results", "out": "results", "device": "auto", "force": False}
    assert _option(parser, "--results").help == (
        "results root to read prepared sets, variants and maps from (default: results)")
    assert _option(parser, "--out").help == "where this command writes: the results root (default: results)"
    assert _option(parser, "--device").help == DEVICE_CHOICES_HELP and "auto" in DEVICE_CHOICES_HELP
    assert _option(parser, "--force").help.startswith("replace this command's own earlier output")
    other = argparse.ArgumentParser()
    add_results(other, default="elsewhere")
    assert other.parse_args([]).results == "elsewhere" and "(default: elsewhere)" in _option(other, "--results").help


def test_out_can_be_required_and_then_has_no_default(capsys):
    parser = argparse.ArgumentParser(prog="demo")
    add_out(parser, required=True, what="the output folder")
    assert _option(parser, "--out").help == "where this command writes: the output folder"
    assert parser.parse_args(["--out", "x"]).out == "x"
    with pytest.raises(SystemExit) as stop:
        parser.parse_args([])
    assert stop.value.code == 2 and "--out" in capsys.readouterr().err
    optional = argparse.ArgumentParser()
    add_out(optional)
    assert optional.parse_args([]).out is None


def test_command_parser_and_parse_command_name_the_command_as_typed(monkeypatch):
    parser = command_parser("demo", "hello", "Say hello.")
    add_force(parser)
    assert parser.prog == "python -m demo hello" and parser.description == "Say hello."
    args, command = parse_command(parser, ["--force"])
    assert args.force and command == ["python", "-m", "demo", "hello", "--force"]
    monkeypatch.setattr(sys, "argv", ["prog"])
    assert parse_command(parser)[1] == ["python", "-m", "demo", "hello"]
