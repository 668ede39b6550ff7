"""Trial files: path, reader and checks (stimuli/contracts/trials.py)."""

from __future__ import annotations

import pytest

from stimuli.contracts.errors import InputError
from stimuli.contracts.names import check_label
from stimuli.contracts.trials import TRIAL_COLUMNS, find_trial_files, read_trials, trial_file_path


def _write_trials(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(TRIAL_COLUMNS)] + ["\t".join(str(r[c]) for c in TRIAL_COLUMNS) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _row(trial):
    return {"trial": trial, "block": 1, "phase": "main", "condition": "random", "stimulus_id": "s1-01",
            "truth": "male", "response": "male", "correct": 1, "rt_s": 0.5, "n_bubbles": 2,
            "sigma_px": 3.0, "bubbles": "[[1,2],[3,4]]", "mask_seed": 11, "onset_s": 1.0,
            "dropped_frames": 0}


def test_trial_file_reader_keeps_complete_rows_and_drops_a_torn_last_line(tmp_path):
    path = trial_file_path(tmp_path, "01", 1, "gender")
    _write_trials(path, [_row(1), _row(2)])
    with open(path, "a") as handle:
        handle.write("3\t1\tmain\trand")  # SIGKILL during a write
    table = read_trials(path)
    assert table.trial.tolist() == [1, 2] and table.correct.dtype.kind == "f"
    assert [f.participant for f in find_trial_files(tmp_path, "gender")] == ["01"]


def test_trial_file_reader_names_missing_columns_and_bad_numbers(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("trial\tblock\n1\t1\n")
    with pytest.raises(InputError, match="missing column\\(s\\) phase, condition"):
        read_trials(path)
    row = _row(1)
    row["rt_s"] = "fast"
    _write_trials(path, [row])
    with pytest.raises(InputError, match="line 2: column 'rt_s' holds 'fast'"):
        read_trials(path)
    with pytest.raises(InputError, match="letters and digits"):
        check_label("0 1", "participant")
