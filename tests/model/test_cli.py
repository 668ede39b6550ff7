"""The command line: subcommand overview, --help, unknown commands and devices."""

from __future__ import annotations

import pytest
import torch

from model import select_device
from model.__main__ import COMMANDS
from model.__main__ import main as model_main
from stimuli.contracts.errors import InputError


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
