"""The similarity task runs headless (no model, no psychopy) and the commands it uses have --help."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_the_similarity_task_runs_headless_without_model_or_psychopy():
    code = ("import sys; import experiments.similarity, experiments.run; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psychopy', 'model', 'torch')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_commands_have_help():
    for command in (["-m", "model", "rdm", "--help"], ["-m", "experiments", "run", "--help"]):
        result = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=180)
        assert result.returncode == 0 and "usage:" in result.stdout
    overview = subprocess.run([sys.executable, "-m", "model", "--help"], capture_output=True, text=True, timeout=60)
    assert "rdm" in overview.stdout and "dissimilarity" in overview.stdout
