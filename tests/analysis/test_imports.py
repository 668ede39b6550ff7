"""analysis reads files: importing it, drawing a figure and running its command's --help load
neither torch nor psychopy (nor experiments or model); nor does reading and comparing RDMs."""

import subprocess
import sys

HEAVY = "{'torch', 'torchvision', 'zennit', 'psychopy', 'experiments', 'model'}"

CHECK = f"""
import runpy, sys
import analysis, analysis.classification, analysis.stat4ci, analysis.permutation, analysis.metrics
import analysis.ci, analysis.ci_pipeline, analysis.readers, analysis.report.plots
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


SIMILARITY_CHECK = f"""
import runpy, sys
import numpy as np
import analysis.rdm, analysis.rsa, analysis.report.sections_similarity, analysis.report.run, stimuli.contracts.rdm
analysis.report.charts.plot_rsa_bars  # figures too
print('HEAVY:' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY})))
"""


def test_analysis_of_similarity_imports_neither_torch_nor_psychopy():
    result = subprocess.run([sys.executable, "-c", SIMILARITY_CHECK], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY:"
