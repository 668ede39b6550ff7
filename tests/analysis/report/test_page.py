"""The page: a section's blocks, table previews written as CSV, and the whole page around them."""

from __future__ import annotations

import pandas as pd

from analysis.report.config import ReportConfig
from analysis.report.context import ReportContext
from analysis.report.page import Section, embed_page, render_html
from stimuli.contracts.config import from_dict


def test_a_section_escapes_its_text_and_writes_its_tables(tmp_path):
    config = from_dict(ReportConfig, {"stimuli": "s", "title": "A <b>title</b>"}, "c.yaml")
    ctx = ReportContext(config, tmp_path, warn=lambda message: None)
    section = Section("demo", "Demo & more", ctx)
    section.text("a < b")
    path = section.table("numbers", pd.DataFrame({"x": range(20), "y": [0.5] * 20}), "Numbers", max_rows=3)
    assert path == tmp_path / "tables" / "numbers.csv" and len(pd.read_csv(path)) == 20
    assert "<p>a &lt; b</p>" in section.blocks[0] and "(first 3 of 20 rows)" in section.blocks[1]
    section.status = "absent"
    page = render_html(config, [section])
    assert "<title>A &lt;b&gt;title&lt;/b&gt;</title>" in page and 'class="absent" href="#demo"' in page
    assert 'data-status="absent"' in page and "not available" in page and "<script" not in page
    figure = tmp_path / "figures" / "f.png"
    figure.parent.mkdir()
    figure.write_bytes(b"\x89PNG fake")
    section.figure(figure, "a figure")
    embedded = embed_page(render_html(config, [section]), tmp_path)
    assert 'src="data:image/png;base64,' in embedded and 'href="tables/numbers.csv"' not in embedded
