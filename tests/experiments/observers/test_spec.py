"""The ``--observer`` spec: its forms, and the observer it names."""

from __future__ import annotations

import pytest

from experiments.engine import load_task, run_session
from experiments.observers import make_observer, parse_observer
from stimuli.contracts.errors import InputError
from stimuli.contracts.trials import read_trials
from stimuli.regions import region_mask


def test_observer_specs():
    assert parse_observer("template") == ("template", None)
    assert parse_observer("template:box:0,0.5,0,1") == ("template", "box:0,0.5,0,1")
    assert parse_observer("model:vgg16-imagenet-gender-s0") == ("model", "vgg16-imagenet-gender-s0")
    for bad in ("robot", "model", "human:x"):
        with pytest.raises(InputError, match="use human, template, template:REGION or model:VARIANT"):
            parse_observer(bad)


def test_template_region_from_the_command_line(make_config, results, tmp_path):
    task = load_task(make_config(), results)
    observer = make_observer("template:mouth", task, seed=1)
    assert observer.region_spec == "mouth" and observer.region.sum() == region_mask("mouth", (32, 32)).sum()
    result = run_session(make_config(), "m1", 1, observer="template:mouth", data_root=tmp_path, results=results,
                         seed=1, progress=False)
    assert read_trials(result.path).shape[0] == 15
