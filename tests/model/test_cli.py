"""The command line: subcommand overview, --help, unknown commands, devices, and every command
wired into ``python -m model``."""

from __future__ import annotations

import pytest
import torch
from cli_checks import run_command  # tests/cli_checks.py

from model import select_device
from model.__main__ import COMMANDS
from model.__main__ import main as model_main
from stimuli.contracts.errors import InputError
from stimuli.contracts.relevance import load_relevance

V0 = "vgg16-bn-w0.0625-none-gender-s0"


def test_overview_lists_the_commands(capsys):
    assert model_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "python -m model <command>" in out and "train" in out and set(COMMANDS) >= {"train"}
    assert model_main([]) == 2
    assert model_main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_train_help(capsys):
    with pytest.raises(SystemExit) as code:
        model_main(["train", "--help"])
    assert code.value.code == 0
    out = capsys.readouterr().out
    for option in ("--only", "--out", "--device", "--list"):
        assert option in out


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(None).type in ("cpu", "cuda", "mps")
    with pytest.raises(InputError, match="--device: unknown device 'gpu0'"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU is available"):
            select_device("cuda")
        assert select_device("auto") != torch.device("cuda")


@pytest.mark.slow
def test_commands_are_wired_into_python_m_model(trained, capsys):
    import subprocess
    import sys

    from model.__main__ import main as model_main

    for command in ("explain", "evaluate", "groundtruth"):
        code, out, _ = run_command(model_main, [command, "--help"], capsys)
        assert code == 0 and f"python -m model {command}" in out
    code, _, err = run_command(model_main, ["evaluate", str(trained / "missing.yaml")], capsys)
    assert code == 2 and err.count("\n") == 1 and "config file not found" in err
    # one real run through the interpreter's -m entry point
    done = subprocess.run([sys.executable, "-m", "model", "explain", "--variant", V0, "--stimuli", "synth-eyes",
                           "--out", str(trained), "--device", "cpu", "--composite", "gradient", "--target", "pred"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    maps = load_relevance(V0, "synth-eyes", trained)
    assert maps.meta["composite"] == "gradient" and maps.meta["target_rule"] == "pred"
    assert list(maps.target) == list(maps.prediction)
