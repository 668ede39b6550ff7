"""Names that become parts of file names (stimuli/contracts/names.py)."""

from __future__ import annotations

import pytest

from stimuli.contracts.errors import InputError
from stimuli.contracts.names import MAX_LABEL_LENGTH, check_label, check_name, is_name, safe_name


def test_names_are_validated_never_rewritten():
    assert check_name("guided_A-1", "condition") == "guided_A-1"
    for bad in ("a b", "a/b", "", "x" * (MAX_LABEL_LENGTH + 1), 3):
        assert not is_name(bad)
    with pytest.raises(InputError, match="condition 'a b' must be letters, digits, '_' and '-' only"):
        check_name("a b", "condition")
    assert check_label(" 07 ", "session") == "07"
    with pytest.raises(InputError, match="at most 64"):
        check_label("1" * 65, "participant")


def test_safe_name_cleans_free_text_for_a_file_name():
    assert safe_name("model:vgg16-imagenet-gender-s0") == "model-vgg16-imagenet-gender-s0"
    assert safe_name("  template: mouth / eyes ") == "template-mouth-eyes"
    assert safe_name("file_v1.2") == "file_v1.2" and safe_name("///") == "none"
