"""``python -m experiments run``: its help, the command table, and the labels a person must give."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from experiments.__main__ import COMMANDS

REPO = Path(__file__).resolve().parents[2]


def test_command_line_help_and_missing_participant(tmp_path):
    done = subprocess.run([sys.executable, "-m", "experiments", "run", "--help"], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0 and "--resume" in done.stdout and "--observer" in done.stdout
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    # a simulated observer's labels default (test_bubbles.py), but not to resume a session
    done = subprocess.run([sys.executable, "-m", "experiments", "run", "experiments/bubbles_gender.yaml",
                           "--observer", "template", "--resume"], capture_output=True, text=True, cwd=REPO, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --participant and --session are required for simulated observers"
    done = subprocess.run([sys.executable, "-m", "experiments", "run", "experiments/bubbles_gender.yaml",
                           "--session", "1"], capture_output=True, text=True, cwd=REPO, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: no screen for the participant dialog: give --participant and "
                                   "--session")


def test_the_command_table_lists_run_and_check():
    done = subprocess.run([sys.executable, "-m", "experiments"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and list(COMMANDS) == ["run", "check"]
    assert all(verb in done.stderr for verb in COMMANDS)  # no verb: a usage error, the overview on stderr
