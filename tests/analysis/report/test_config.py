"""The report config: the demo's is valid, and bad values are named by file and key."""

from pathlib import Path

import pytest

import analysis
from analysis.report.config import ReportConfig
from stimuli.contracts.config import from_dict, load_config
from stimuli.contracts.errors import InputError


def test_the_demo_config_is_valid():
    config = load_config(ReportConfig, Path(analysis.__file__).parent / "configs" / "demo.yaml")
    assert config.stimuli == "orl128" and config.tasks == ["gender"] and config.alignment.reference == "template"
    assert config.models.evaluate == "results/evaluate/demo_evaluate" and config.exclusion.min_trials == 50
    ci = config.ci_config("gender", "results/simulated", ["01"])
    assert (ci.min_trials, ci.alpha, ci.trial_files, ci.seed) == (50, 0.05, ["01"], 0)


@pytest.mark.parametrize("data, message", [
    ({}, "missing required key 'stimuli'"),
    ({"stimuli": "s", "tasks": []}, "key 'tasks' must name at least one task"),
    ({"stimuli": "s", "tasks": ["gen der"]}, "key 'tasks[0]' must be letters and digits"),
    ({"stimuli": "s", "ci": {"z": "exact"}}, "key 'ci.z' must be one of 'analytic', 'permutation'"),
    ({"stimuli": "s", "models": {"top_percent": 0}}, "key 'models.top_percent' must lie in (0, 100]"),
    ({"stimuli": "s", "alignment": {"null_draw": 5}}, "did you mean 'alignment.null_draws'"),
    ({"stimuli": "s", "name": "../x"}, "key 'name' must be a plain folder name"),
    ({"stimuli": "s", "findings": {"stable_r": 1}}, "key 'findings.stable_r' must lie between -1 and 1"),
])
def test_bad_values_are_named(data, message):
    with pytest.raises(InputError) as error:
        from_dict(ReportConfig, data, "report.yaml")
    assert str(error.value).startswith("report.yaml: ") and message in str(error.value)
