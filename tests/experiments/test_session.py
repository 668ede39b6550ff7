"""Session files: the torn tail of a trial file, participants.tsv, and the session lock."""

from __future__ import annotations

import json

import pytest

from experiments.session import SessionFiles, read_session_rows, update_participants
from stimuli.contracts.errors import InputError


def test_read_session_rows_separates_the_torn_tail(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes(b"trial\tcorrect\n1\t1\n2\t0\n3\t")
    header, rows, torn = read_session_rows(path)
    assert header == ["trial", "correct"] and list(rows.trial) == ["1", "2"] and torn == b"3\t"


def test_participants_tsv_keeps_rows_and_columns(tmp_path):
    (tmp_path / "participants.tsv").write_text("participant_id\tage\tsex\thandedness\tgroup\nsub-01\t25\tM\tL\tA\n")
    update_participants(tmp_path, "02", {"age": 31, "sex": "F"})
    update_participants(tmp_path, "01", {"age": 99})  # already there: unchanged
    assert (tmp_path / "participants.tsv").read_text() == (
        "participant_id\tage\tsex\thandedness\tgroup\nsub-01\t25\tM\tL\tA\nsub-02\t31\tF\tn/a\tn/a\n")


def test_only_the_lock_holder_writes_session_files(tmp_path):
    files = SessionFiles(tmp_path, "w1", 1, "gender")
    files.create(["trial", "correct"], {"Seed": 1})
    other = SessionFiles(tmp_path, "w1", 1, "gender")
    with pytest.raises(InputError, match="running in another process"):
        other.lock()
    with pytest.raises(RuntimeError, match="lock is not held"):
        other.write_sidecar({"Seed": 2})
    files.close()
    other.lock()  # free again once the holder closes
    assert other.read()[0].empty and json.loads(other.sidecar_path.read_text()) == {"Seed": 1}
    other.close()
