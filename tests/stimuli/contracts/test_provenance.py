"""Provenance records and all-or-nothing output folders (stimuli/contracts/provenance.py)."""

from __future__ import annotations

import numpy as np
import pytest

from stimuli.contracts.errors import InputError
from stimuli.contracts.outputs import atomic_output_dir
from stimuli.contracts.provenance import Provenance, file_sha256, read_provenance, record_run


def test_atomic_output_dir_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output_dir(target) as work:
        (work / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_output_dir(target) as work:
        (work / "done.txt").write_text("done")
    assert (target / "done.txt").read_text() == "done"
    with pytest.raises(FileExistsError):
        with atomic_output_dir(target):
            pass


def test_atomic_output_dir_checks_before_work_and_never_deletes(tmp_path):
    data = tmp_path / "participants"
    data.mkdir()
    (data / "participants.tsv").write_text("participant_id\nsub-01\n")
    ran = []
    with pytest.raises(InputError, match="it is a data root .participants.tsv."):
        with atomic_output_dir(data, replace=True, command="analysis ci"):
            ran.append(True)
    assert not ran and (data / "participants.tsv").read_text() == "participant_id\nsub-01\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["participants"]


def test_provenance_records_inputs_seeds_and_versions(tmp_path):
    source = tmp_path / "input.csv"
    source.write_text("a,b\n1,2\n")
    record_run(tmp_path, Provenance(command=["prog", "--x"], config={"k": 1}, seeds={"split": 7}, inputs=[source]))
    record = read_provenance(tmp_path)
    assert record["command"] == ["prog", "--x"] and record["seeds"] == {"split": 7}
    assert record["inputs"] == {str(source): file_sha256(source)}
    assert record["versions"]["numpy"] == np.__version__
    assert record["started"] <= record["finished"]
