"""The examples in the similarity modules' docstrings run; analysis reads RDMs without torch or psychopy."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = "{'torch', 'torchvision', 'zennit', 'psychopy', 'experiments', 'model'}"
CHECK = f"""
import runpy, sys
import numpy as np
import analysis.rdm, analysis.rsa, analysis.report.sections_similarity, analysis.report.run, stimuli.contracts.rdm
analysis.report.charts.plot_rsa_bars  # figures too
print('HEAVY:' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY})))
"""


def test_analysis_of_similarity_imports_neither_torch_nor_psychopy():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY:"


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
