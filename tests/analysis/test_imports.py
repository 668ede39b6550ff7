"""analysis reads files: importing it, drawing a figure and running its command's --help load
neither torch nor psychopy (nor experiments or model)."""

import subprocess
import sys

HEAVY = "{'torch', 'torchvision', 'zennit', 'psychopy', 'experiments', 'model'}"

CHECK = f"""
import runpy, sys
import analysis, analysis.classification, analysis.stat4ci, analysis.permutation, analysis.metrics
import analysis.ci_command, analysis.cli, analysis.report.plots, analysis.guided_densities
analysis.report.plots.pyplot()  # matplotlib as well
sys.argv = ['analysis', 'ci', '--help']
try:
    runpy.run_module('analysis', run_name='__main__')
except SystemExit as exit:
    assert exit.code == 0, exit.code
print('HEAVY:' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY})))
"""


def test_analysis_imports_neither_torch_nor_psychopy():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "HEAVY:", f"analysis pulled in {lines[-1][6:]}"
    assert "--data-root" in result.stdout and "--sigma-smooth" in result.stdout  # the help ran
