"""Written files and folders get the modes the process umask gives (stimuli/contracts/provenance.py),
in outputs and in session files alike."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from experiments.engine import run_session
from stimuli.contracts.outputs import atomic_output_dir
from stimuli.contracts.prepared import write_prepared_set
from stimuli.contracts.provenance import atomic_write_text


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o002, 0o664, 0o775), (0o077, 0o600, 0o700),
                                                              (0o022, 0o644, 0o755)])
def test_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        written = atomic_write_text(tmp_path / "a" / "table.csv", "x\n")
        with atomic_output_dir(tmp_path / "out") as work:
            atomic_write_text(work / "inner.txt", "y")
        stim = write_prepared_set(tmp_path / "set", np.zeros((1, 8, 8)), pd.DataFrame(
            {"stimulus_id": ["a"], "identity": ["i"], "gender": ["f"], "source": ["s"]}), background=0.5)
    finally:
        os.umask(old)
    assert written.stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "out").stat().st_mode & 0o777 == dir_mode
    assert (tmp_path / "out" / "inner.txt").stat().st_mode & 0o777 == file_mode
    for path in (stim / "set.json", stim / "provenance.json", stim / "manifest.csv"):
        assert path.stat().st_mode & 0o777 == file_mode, path
    assert stim.stat().st_mode & 0o777 == dir_mode


@pytest.mark.parametrize(("umask", "mode", "folder_mode"), [(0o002, 0o664, 0o775), (0o077, 0o600, 0o700)])
def test_session_files_follow_the_umask(study, tmp_path, umask, mode, folder_mode, experiment):
    results, _ = study
    old = os.umask(umask)
    try:
        done = run_session(experiment(tmp_path), "u1", 1, observer="template", data_root=tmp_path / "sim",
                           results=results, seed=1, progress=False)
    finally:
        os.umask(old)
    for path in (done.path, done.path.with_suffix(".json"), tmp_path / "sim" / "participants.tsv"):
        assert path.stat().st_mode & 0o777 == mode, path
    assert done.path.parent.stat().st_mode & 0o777 == folder_mode
