"""The participant dialog's answers (and the same flags) are checked before anything runs."""

from __future__ import annotations

import pytest

from experiments.__main__ import main
from experiments.participant import AGE_RANGE, check_participant_fields
from stimuli.contracts.errors import InputError


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("age", "abc", "age 'abc': must be a number of years from 1 to 120"),
    ("age", "230", "from 1 to 120"),
    ("age", "0", "from 1 to 120"),
    ("age", "nan", "from 1 to 120"),
    ("age", "-5", "from 1 to 120"),
    ("participant", "p 1", "participant 'p 1' must be letters and digits only"),
    ("participant", "../x", "must be letters and digits only"),
    ("session", "1_2", "session '1_2' must be letters and digits only"),
    ("participant", "", "must be letters and digits only"),
    ("sex", "f\tm", "sex 'f\\tm': must be a word of letters"),
    ("handedness", "3", "handedness '3': must be a word of letters"),
])
def test_bad_answers_are_one_line(field, value, needle):
    with pytest.raises(InputError) as error:
        check_participant_fields({field: value})
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_good_answers_pass_and_empty_ones_stay_empty():
    answers = {"participant": " 07 ", "session": "2", "age": "23.5", "sex": "female", "handedness": "left",
               "extra": "n/a"}
    assert check_participant_fields(answers) == {"participant": "07", "session": "2", "age": "23.5",
                                                 "sex": "female", "handedness": "left", "extra": ""}
    assert check_participant_fields({"age": "", "sex": None}) == {"age": "", "sex": ""}
    assert check_participant_fields({"age": str(AGE_RANGE[1])})["age"] == "120"


def test_the_age_flag_is_checked_like_the_dialog(make_config, results, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", str(make_config()), "--participant", "p1", "--session", "1", "--age", "abc",
              "--observer", "template", "--results", str(results), "--data-root", str(tmp_path / "data")])
    assert done.value.code == 2 and "age 'abc'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
