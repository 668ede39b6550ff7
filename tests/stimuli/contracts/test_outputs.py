"""Output folders made all or nothing, replaced only when they are the command's own (stimuli/contracts/outputs.py)."""

from __future__ import annotations

import pytest

from stimuli.contracts.errors import InputError
from stimuli.contracts.outputs import atomic_output_dir


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
