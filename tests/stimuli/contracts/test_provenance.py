"""Provenance records (stimuli/contracts/provenance.py)."""

from __future__ import annotations

import numpy as np

from stimuli.contracts.provenance import Provenance, file_sha256, read_provenance, record_run


def test_provenance_records_inputs_seeds_and_versions(tmp_path):
    source = tmp_path / "input.csv"
    source.write_text("a,b\n1,2\n")
    record_run(tmp_path, Provenance(command=["prog", "--x"], config={"k": 1}, seeds={"split": 7}, inputs=[source]))
    record = read_provenance(tmp_path)
    assert record["command"] == ["prog", "--x"] and record["seeds"] == {"split": 7}
    assert record["inputs"] == {str(source): file_sha256(source)}
    assert record["versions"]["numpy"] == np.__version__
    assert record["started"] <= record["finished"]
