"""The validating config loader (stimuli/contracts/config.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from stimuli.contracts.config import from_dict, load_config, require, to_dict
from stimuli.contracts.errors import InputError


@dataclass
class Inner:
    sigma_px: float = 10.0
    keys: list[str] = field(default_factory=lambda: ["f", "j"])

    def __post_init__(self):
        require(self.sigma_px > 0, "sigma_px", "must be positive")


@dataclass
class Outer:
    name: str
    mode: Literal["random", "guided"] = "random"
    inner: Inner = field(default_factory=Inner)
    count: int | None = None


def test_config_builds_nested_dataclasses_and_round_trips():
    config = from_dict(Outer, {"name": "x", "mode": "guided", "inner": {"sigma_px": 3}}, "c.yaml")
    assert config.inner.sigma_px == 3.0 and isinstance(config.inner.sigma_px, float)
    assert config.mode == "guided" and config.count is None
    assert from_dict(Outer, to_dict(config), "c.yaml") == config


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"name": "x", "inner": {"sigma_pxx": 3}}, "unknown key 'inner.sigma_pxx' (did you mean 'inner.sigma_px'?)"),
        ({"name": "x", "inner": {"sigma_px": -1}}, "key 'inner.sigma_px' must be positive"),
        ({"name": "x", "mode": "other"}, "key 'mode' must be one of 'random', 'guided'"),
        ({"name": "x", "count": "many"}, "key 'count' should be int or null"),
        ({"name": "x", "inner": {"keys": "f"}}, "key 'inner.keys' should be list of str"),
        ({"mode": "random"}, "missing required key 'name'"),
    ],
)
def test_config_errors_name_the_file_and_key(data, needle):
    with pytest.raises(InputError) as error:
        from_dict(Outer, data, "exp.yaml")
    message = str(error.value)
    assert message.startswith("exp.yaml: ") and needle in message and "\n" not in message


def test_load_config_reports_yaml_syntax_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match=r"bad.yaml \(line \d+\): not valid YAML"):
        load_config(Outer, bad)
    with pytest.raises(InputError, match="config file not found"):
        load_config(Outer, tmp_path / "absent.yaml")
