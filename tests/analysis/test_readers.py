"""Issue 13: the trial reader forgives only a torn last line. Every other damage (a malformed
middle row, duplicated rows, ``correct`` that contradicts the answer, a byte that is not UTF-8,
an invalid condition name) excludes the file with a reason, in a warning line and in
``ci_exclusions.csv``, and the rest of the data is still analysed."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ci_simulation import simulate_trials, write_trial_file

from analysis.ci_pipeline import CIConfig, run_ci
from analysis.readers.similarity import load_human_rdms
from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import SIMILARITY_COLUMNS, read_trials

SHAPE = (40, 40)


def _write(data: Path, participant: str, seed: int, condition: str = "random") -> Path:
    rows = simulate_trials(SHAPE, "eyes", n_trials=120, sigma_px=2.5, n_bubbles=(6, 12), seed=seed,
                           condition=condition)
    return write_trial_file(data, participant, 1, "gender", rows)


def _lines(path: Path) -> list[str]:
    return path.read_text().split("\n")


def malformed_middle_row(path: Path) -> None:
    lines = _lines(path)
    lines[40] = lines[40].rsplit("\t", 1)[0]
    path.write_text("\n".join(lines))


def duplicated_rows(path: Path) -> None:
    lines = _lines(path)
    path.write_text("\n".join(lines[:-1] + lines[1:-1] + [""]))  # every trial twice: 240 instead of 120


def contradicting_correct(path: Path) -> None:
    lines = _lines(path)
    cells = lines[30].split("\t")
    cells[7] = "1" if cells[7] == "0" else "0"  # 'correct' edited by hand, response left as it was
    lines[30] = "\t".join(cells)
    path.write_text("\n".join(lines))


def latin1_byte(path: Path) -> None:
    data = path.read_bytes().split(b"\n")
    data[12] = data[12].replace(b"face", b"f\xe4ce", 1)
    path.write_bytes(b"\n".join(data))


def torn_last_line(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"121\t1\tmain\trandom\tface0")


ATTACKS = {  # participant -> (damage, the reason its warning and exclusion give)
    "04": (malformed_middle_row, "line 41: 14 fields where the header has 15"),
    "05": (duplicated_rows, "line 122: trial number 1 is a duplicate"),
    "06": (contradicting_correct, "line 31: 'correct' is"),
    "07": (latin1_byte, "line 13: not UTF-8 text (byte 0xe4)"),
}


@pytest.fixture
def damaged(tmp_path):
    data = tmp_path / "data"
    paths = {f"0{i}": _write(data, f"0{i}", seed=i) for i in range(1, 10)}
    for participant, (damage, _) in ATTACKS.items():
        damage(paths[participant])
    paths["08"].write_text(paths["08"].read_text().replace("\trandom\t", "\trandom A\t"))
    torn_last_line(paths["09"])
    return data, paths


def test_each_damaged_file_is_excluded_with_its_reason_and_the_rest_analysed(damaged, tiny_set, tmp_path):
    results, name, _ = tiny_set
    data, paths = damaged
    warnings: list[str] = []
    config = CIConfig(data_root=str(data), task="gender", stimuli=name, results=str(results), min_trials=50)
    outputs = run_ci(config, tmp_path / "out", progress=False, warn=warnings.append)
    exclusions = pd.read_csv(tmp_path / "out" / "tables" / "ci_exclusions.csv", dtype={"participant": str})
    reasons = dict(zip(exclusions.participant, exclusions.reason))
    for participant, (_, reason) in ATTACKS.items():
        assert reason in reasons[participant] and str(paths[participant]) in reasons[participant]
        assert sum(reason in w for w in warnings) == 1
    assert "line 2: condition 'random A' is not a valid name" in reasons["08"]
    assert "torn last line" in reasons["09"] and "line 122" in reasons["09"]  # reported, not silent
    assert len(exclusions) == len(warnings) == 6
    # the torn file's 120 complete trials are kept; the damaged files contribute nothing
    with np.load(outputs.maps["random"]) as maps:
        assert maps["participants"].tolist() == ["01", "02", "03", "09"]
        assert maps["n_trials"].tolist() == [120] * 4
    assert list(outputs.summary.condition) == ["random"]


def test_the_reader_itself_refuses_what_a_crash_cannot_make(damaged):
    _, paths = damaged
    for participant, (_, reason) in ATTACKS.items():
        with pytest.raises(InputError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            read_trials(paths[participant])
    seen: list[str] = []
    table = read_trials(paths["09"], warn=seen.append)
    assert len(table) == 120 and table.attrs["torn_line"] == "121\t1\tmain\trandom\tface0"
    assert len(seen) == 1 and "torn last line" in seen[0]


def test_an_out_of_order_or_n_a_trial_number_is_refused(tmp_path):
    path = _write(tmp_path, "01", seed=1)
    lines = _lines(path)
    lines[5], lines[6] = lines[6], lines[5]
    path.write_text("\n".join(lines))
    with pytest.raises(InputError, match="line 6: trial number 6 is out of order"):
        read_trials(path)


def _similarity_file(folder: Path, participant: str, seed: int) -> Path:
    """A triplet session over four faces: every triplet four times, answers from a fixed embedding."""
    from stimuli.contracts.trials import trial_file_path

    rng = np.random.default_rng(seed)
    faces = ["f0", "f1", "f2", "f3"]
    position = {"f0": 0.0, "f1": 1.0, "f2": 3.0, "f3": 6.0}
    path = trial_file_path(folder, participant, 1, "similarity")
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(SIMILARITY_COLUMNS)]
    for number, triplet in enumerate(list(itertools.combinations(faces, 3)) * 4, start=1):
        triplet = list(rng.permutation(triplet))
        odd = max(triplet, key=lambda f: sum(abs(position[f] - position[g]) for g in triplet))
        row = {"trial": number, "block": 1, "phase": "main", "condition": "triplet", "stimulus_1": triplet[0],
               "stimulus_2": triplet[1], "stimulus_3": triplet[2], "response": odd,
               "response_position": triplet.index(odd) + 1}
        lines.append("\t".join(str(row.get(c, "n/a")) for c in SIMILARITY_COLUMNS))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_similarity_rdms_leave_a_damaged_file_out_with_a_warning(tmp_path):
    good = _similarity_file(tmp_path, "01", seed=1)
    bad = _similarity_file(tmp_path, "02", seed=2)
    bad.write_bytes(bad.read_bytes().replace(b"f1", b"f\xe41", 1))
    with pytest.raises(InputError, match="not UTF-8"):  # without a warn callback: an error, never silence
        load_human_rdms({"01": [good], "02": [bad]}, ids=["f0", "f1", "f2", "f3"])
    warnings: list[str] = []
    rdms = load_human_rdms({"01": [good], "02": [bad]}, ids=["f0", "f1", "f2", "f3"], warn=warnings.append)
    assert rdms.participants == ["01"] and len(warnings) == 1
    assert str(bad) in warnings[0] and "not UTF-8" in warnings[0] and "left out" in warnings[0]
