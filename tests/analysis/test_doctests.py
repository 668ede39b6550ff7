"""The examples in the analysis docstrings run and give what they show."""

import doctest

import pytest

import analysis
import analysis.apertures
import analysis.ci_null
import analysis.classification
import analysis.metrics
import analysis.stat4ci
import stimuli.maps


@pytest.mark.parametrize("module", [analysis, analysis.apertures, analysis.ci_null, analysis.classification, analysis.metrics, analysis.stat4ci,
                                    stimuli.maps], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
