"""analysis reads files: importing it (and running its command) loads neither torch nor psychopy."""

import subprocess
import sys

HEAVY = "{'torch', 'torchvision', 'zennit', 'psychopy', 'experiments', 'model'}"

CHECK = f"""
import sys
import analysis, analysis.classification, analysis.stat4ci, analysis.permutation, analysis.metrics
import analysis.ci_command, analysis.cli, analysis.figures
analysis.figures._pyplot()  # matplotlib as well
print('HEAVY:' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY})))
"""

HELP = f"""
import runpy, sys
sys.argv = ['analysis', 'ci', '--help']
try:
    runpy.run_module('analysis', run_name='__main__')
except SystemExit as exit:
    assert exit.code == 0, exit.code
print('HEAVY:' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY})))
"""


def _run(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def test_analysis_imports_neither_torch_nor_psychopy():
    assert _run(CHECK)[-1] == "HEAVY:"


def test_ci_help_runs_without_heavy_imports():
    lines = _run(HELP)
    assert lines[-1] == "HEAVY:"
    text = "\n".join(lines)
    assert "--data-root" in text and "--sigma-smooth" in text and "--min-trials" in text
