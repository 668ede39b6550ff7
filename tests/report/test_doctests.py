"""The examples in the docstrings of the report's modules run and give what they show."""

import doctest

import pytest

import analysis.alignment
import analysis.model_stats
import analysis.reliability
import analysis.repeated
import analysis.report_base
import analysis.similarity_null
import stimuli.variants


@pytest.mark.parametrize("module", [analysis.alignment, analysis.model_stats, analysis.reliability,
                                    analysis.repeated, analysis.report_base, analysis.similarity_null,
                                    stimuli.variants],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
