"""The report reads files: importing its modules (and pingouin, which they use), drawing its
figures and running ``python -m analysis run --help`` load neither torch nor psychopy (nor
experiments or model)."""

import subprocess
import sys

import pytest

HEAVY = "{'torch', 'torchvision', 'zennit', 'psychopy', 'experiments', 'model'}"

CHECK = f"""
import runpy, sys
import numpy as np, pandas as pd, pingouin
import analysis.report.run, analysis.report.sections_people, analysis.alignment, analysis.model_stats, stimuli.contracts.variants
from analysis.report.plots import plot_matrix
plot_matrix(pd.DataFrame(np.eye(2)), sys.argv[1])
sys.argv = ['analysis', 'run', '--help']
try:
    runpy.run_module('analysis', run_name='__main__')
except SystemExit as exit:
    assert exit.code == 0, exit.code
print('HEAVY:' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY})))
"""


@pytest.mark.slow
def test_report_imports_neither_torch_nor_psychopy(tmp_path):
    result = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path / "m.png")], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "HEAVY:", f"the report pulled in {lines[-1][6:]}"
    assert "--force" in result.stdout and (tmp_path / "m.png").stat().st_size > 1000
