"""Sections register by decorator in one dict, in page order; optional ones only when asked for."""

from __future__ import annotations

import pytest

import analysis.report.run  # noqa: F401  (imports the section modules, which register)
from analysis.report.config import ReportConfig
from analysis.report.registry import PAGE_ORDER, SECTIONS, register_section, sections_for
from stimuli.contracts.config import from_dict


@pytest.fixture
def extra_sections():
    added: list[str] = []
    yield added
    for key in added:
        SECTIONS.pop(key, None)


def test_the_platforms_sections_are_registered_in_page_order():
    assert list(SECTIONS) == list(PAGE_ORDER)
    assert [k for k, s in SECTIONS.items() if s.deferred] == ["findings", "problems"]
    assert [k for k, s in SECTIONS.items() if s.optional] == ["rsa"]


def test_a_new_section_goes_before_the_one_it_names_and_replaces_itself(extra_sections):
    def build(ctx, section):
        section.text("one")

    assert register_section("extra", "Extra")(build) is build
    extra_sections.append("extra")
    assert list(SECTIONS).index("extra") == list(SECTIONS).index("problems") - 1
    register_section("early", "Early", before="qc")(build)
    extra_sections.append("early")
    assert list(SECTIONS).index("early") == list(SECTIONS).index("qc") - 1
    register_section("extra", "Extra again")(build)  # the same key: replaced, in its place
    assert list(SECTIONS).count("extra") == 1 and SECTIONS["extra"].title == "Extra again"
    assert list(SECTIONS).index("extra") == list(SECTIONS).index("problems") - 1


def test_sections_for_adds_an_optional_section_by_its_key_or_by_name():
    plain = from_dict(ReportConfig, {"stimuli": "s"}, "c.yaml")
    assert [s.key for s in sections_for(plain)] == [k for k in PAGE_ORDER if k != "rsa"]
    with_rsa = from_dict(ReportConfig, {"stimuli": "s", "rsa": {}}, "c.yaml")
    assert [s.key for s in sections_for(with_rsa)] == list(PAGE_ORDER)
    named = from_dict(ReportConfig, {"stimuli": "s", "sections": ["rsa"]}, "c.yaml")
    assert "rsa" in [s.key for s in sections_for(named)]
