"""How the report's page is put together: a :class:`Section`'s HTML blocks (text, figures,
table previews), the numbers in its prose, the page around the sections, the order of the
sections by what the data contain, and the self-contained page (every figure inlined) for
sending to a colleague.

* :class:`Section`: one part of the page; :func:`render_html`: the whole page;
* :func:`fmt`, :func:`p_text`, :func:`plural`: numbers in prose;
* :func:`data_kind`: whether the report has people (observers other than models: people and
  simulated template observers), models (relevance maps, masking results, model observers),
  both or neither;
* :func:`order_sections`: a people-only report opens with its people (QC, classification
  images, conditions), a model-only one with its models (relevance, similarity, masking);
  with both, the findings come first (:data:`analysis.report.registry.SECTIONS` order);
* :func:`embed_page`: every ``<img src>`` becomes a ``data:image/png;base64`` URI and every
  link to a local file becomes plain text, so ``report.html`` travels alone.

Examples
--------
>>> order_sections(["findings", "overview", "qc", "ci", "relevance", "problems"], "people")
['qc', 'ci', 'overview', 'findings', 'relevance', 'problems']
>>> order_sections(["findings", "overview", "qc", "ci", "relevance", "problems"], "models")
['relevance', 'findings', 'overview', 'qc', 'ci', 'problems']
"""

from __future__ import annotations

import base64
import datetime
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import git_commit

from .config import ReportConfig
from .context import ReportContext

__all__ = ["Section", "fmt", "p_text", "plural", "render_html", "PEOPLE_FIRST", "MODELS_FIRST", "data_kind",
           "order_sections", "embed_page"]

# the sections that open the page when the report holds only people / only models
PEOPLE_FIRST = ("qc", "ci", "conditions", "overview", "findings")
MODELS_FIRST = ("relevance", "similarity", "masking", "findings", "overview")

DataKind = Literal["people", "models", "both", "none"]


def data_kind(ctx: ReportContext) -> DataKind:
    """What a report's inputs hold.

    Parameters
    ----------
    ctx : ReportContext
        The report's inputs: the observer groups of its tasks, the variants with relevance maps
        and the ``models.evaluate`` folder of its config.

    Returns
    -------
    {"people", "models", "both", "none"}
        ``people`` (observers other than models), ``models`` (relevance maps, masking results,
        model observers), ``both`` or ``none``.
    """
    people = models = False
    for task in ctx.config.tasks:
        for group in ctx.groups(task):
            if group.kind == "model":
                models = True
            else:
                people = True
    evaluate = ctx.config.models.evaluate
    try:
        variants = ctx.variants()
    except InputError:  # the relevance section says why
        variants = []
    if variants or (evaluate and Path(evaluate).is_dir()):
        models = True
    return "both" if people and models else "people" if people else "models" if models else "none"


def order_sections(keys: Sequence[str], kind: DataKind) -> list[str]:
    """``keys`` in page order for data of ``kind``: the kind's own sections first (in
    :data:`PEOPLE_FIRST` / :data:`MODELS_FIRST` order), the others after, as they were.

    Parameters
    ----------
    keys : sequence of str
        The section keys in registry order.
    kind : str
        What the data hold (:func:`data_kind`).

    Returns
    -------
    list of str
        The keys in page order.
    """
    first = {"people": PEOPLE_FIRST, "models": MODELS_FIRST}.get(kind, ())
    front = [k for k in first if k in keys]
    return front + [k for k in keys if k not in front]


def fmt(value: Any, digits: int = 3) -> str:
    """A number for prose: ``digits`` significant digits, NaN and None as 'n/a'.

    Parameters
    ----------
    value : any
        A number (or anything else, written as it is).
    digits : int
        Significant digits.

    Returns
    -------
    str
        ``digits`` significant digits (``g`` format); integers and booleans as they are;
        'n/a' for NaN, infinity and None; anything else as ``str`` writes it.

    Examples
    --------
    >>> fmt(0.123456), fmt(float("nan")), fmt(3), fmt(0.5, 2)
    ('0.123', 'n/a', '3', '0.5')
    """
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "n/a"
    return f"{number:.{digits}g}"


def plural(count: int, word: str) -> str:
    """``1 participant`` / ``4 participants``.

    Parameters
    ----------
    count : int
        How many.
    word : str
        The singular.

    Returns
    -------
    str
        The count and the word.

    Examples
    --------
    >>> plural(1, "participant"), plural(4, "participant")
    ('1 participant', '4 participants')
    """
    return f"{count} {word}" + ("" if count == 1 else "s")


def p_text(p: Any) -> str:
    """``p = 0.012`` / ``p < 0.001``.

    Parameters
    ----------
    p : any
        A p-value (anything not a finite number: ``p = n/a``).

    Returns
    -------
    str
        ``p = ...`` with three decimals, or ``p < 0.001``.

    Examples
    --------
    >>> p_text(0.0123), p_text(1e-5), p_text(None)
    ('p = 0.012', 'p < 0.001', 'p = n/a')
    """
    try:
        p = float(p)
    except (TypeError, ValueError):
        return "p = n/a"
    if not math.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


@dataclass
class Section:
    """One part of the page: a title and HTML blocks, with a status (ok, absent, error).

    Parameters
    ----------
    key : str
        The section's anchor (its registry key).
    title : str
        Its heading.
    ctx : ReportContext
        The report's inputs (the report folder, where tables are written).
    blocks : list of str
        The HTML made so far.
    status : str
        ``ok``, ``absent`` (inputs missing) or ``error`` (inputs bad).
    """

    key: str
    title: str
    ctx: ReportContext
    blocks: list[str] = field(default_factory=list)
    status: str = "ok"

    def text(self, text: str) -> None:
        """A paragraph (escaped)."""
        self.blocks.append(f"<p>{html.escape(text)}</p>")

    def html(self, markup: str) -> None:
        """Raw markup (caller escapes)."""
        self.blocks.append(markup)

    def heading(self, text: str) -> None:
        """A sub-heading (escaped)."""
        self.blocks.append(f"<h3>{html.escape(text)}</h3>")

    def note(self, text: str, kind: str = "note") -> None:
        """A boxed note; ``kind`` ``absent`` or ``error`` colours it."""
        self.blocks.append(f'<div class="{kind}">{html.escape(text)}</div>')

    def figure(self, path: Path, caption: str, *, width: int | None = None) -> None:
        """A figure of the report folder with its caption (``width``: its largest width in pixels)."""
        rel = path.relative_to(self.ctx.out).as_posix()
        style = f' style="max-width:{width}px"' if width else ""
        self.blocks.append(f'<figure{style}><a href="{html.escape(rel)}"><img src="{html.escape(rel)}" '
                           f'alt="{html.escape(caption)}"></a><figcaption>{html.escape(caption)}'
                           "</figcaption></figure>")

    def table(self, name: str, table: pd.DataFrame, caption: str, *, columns: list[str] | None = None,
              max_rows: int = 12, write: bool = True) -> Path:
        """Write ``tables/<name>.csv`` (all rows and columns) and show a preview."""
        path = self.ctx.write_table(name, table) if write else self.ctx.out / "tables" / f"{name}.csv"
        shown = table[[c for c in columns if c in table.columns]] if columns else table
        rel = path.relative_to(self.ctx.out).as_posix()
        more = f" (first {max_rows} of {len(table)} rows)" if len(table) > max_rows else ""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                       for row in shown.head(max_rows).itertuples(index=False))
        if len(shown) == 0:
            rows = f'<tr><td colspan="{max(len(shown.columns), 1)}">(none)</td></tr>'
        self.blocks.append(
            f'<div class="table"><div class="caption">{html.escape(caption)}{more} '
            f'<a href="{html.escape(rel)}">{html.escape(rel)}</a></div>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")
        return path


_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d1d1f;background:#fafafa;
line-height:1.45;font-size:15px}
header{background:#23395b;color:#fff;padding:22px 40px 16px}
header h1{margin:0 0 6px;font-size:26px;font-weight:600}
header p{margin:0;color:#d6deeb;font-size:13px}
nav{background:#fff;border-bottom:1px solid #ddd;padding:8px 40px;font-size:14px;position:sticky;top:0;z-index:2;
display:flex;flex-wrap:wrap;gap:4px 18px}
nav a{color:#23395b;text-decoration:none;white-space:nowrap}
nav a.absent,nav a.error{color:#888}
main{max-width:1180px;margin:0 auto;padding:8px 40px 60px}
section{scroll-margin-top:80px;background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:6px 24px 18px;margin:22px 0}
h2{font-size:20px;border-bottom:2px solid #23395b;padding-bottom:4px;margin-top:16px}
h3{font-size:16px;margin:22px 0 6px;color:#23395b}
.badge{font-size:11px;font-weight:normal;border-radius:3px;padding:2px 6px;margin-left:8px;vertical-align:middle}
.badge.absent{background:#eee;color:#555}.badge.error{background:#fde2e1;color:#a61b1b}
figure{display:inline-block;vertical-align:top;margin:8px 14px 12px 0;max-width:100%}
figure img{width:100%;border:1px solid #eee}
figcaption{font-size:12.5px;color:#555}
.table{overflow-x:auto;margin:10px 0 16px}
.caption{font-size:13px;color:#444;margin-bottom:4px}.caption a{font-size:12px;color:#23395b}
table{border-collapse:collapse;font-size:12.5px}
th,td{border-bottom:1px solid #e6e6e6;padding:3px 9px;text-align:left;vertical-align:top}
th{background:#f2f4f8;font-weight:600}
tbody tr:nth-child(even){background:#fbfbfd}
table.findings{font-size:13.5px;width:100%}table.findings td{padding:7px 10px}
table.findings td:nth-child(1){font-weight:600;width:15%}table.findings td:nth-child(2){width:26%;color:#444}
td.verdict{font-weight:600;width:14%}
td.agrees,td.helped,td.aligned{color:#1a7f37}td.differs,td.hurt{color:#b3261e}
td.not,td.no,td.mixed{color:#6b6b6b}
div.note,div.absent,div.error{border-left:4px solid #9aa5b8;background:#f4f6fa;padding:8px 12px;margin:10px 0;font-size:14px}
div.error{border-color:#c62828;background:#fdecea}
ul.problems{font-size:13px;color:#5a2a00}
"""


def render_html(config: ReportConfig, sections: list[Section]) -> str:
    """The page: a header, a table of contents with each section's status, the sections.

    Parameters
    ----------
    config : ReportConfig
        The report's config (title, set, tasks).
    sections : list of Section
        The built sections in page order.

    Returns
    -------
    str
        The HTML page (no script, no network).
    """
    nav = "".join(f'<a class="{s.status}" href="#{html.escape(s.key)}">{html.escape(s.title)}</a>' for s in sections)
    parts = []
    for s in sections:
        badge = "" if s.status == "ok" else f'<span class="badge {s.status}">{"not available" if s.status == "absent" else "problem"}</span>'
        parts.append(f'<section id="{html.escape(s.key)}" data-status="{s.status}"><h2>{html.escape(s.title)}{badge}'
                     f'</h2>{"".join(s.blocks)}</section>')
    commit = git_commit() or "unknown"
    made = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    tasks = ", ".join(config.tasks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(config.title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(config.title)}</h1><p>Stimulus set {html.escape(config.stimuli)} &middot; "
        f"task(s) {html.escape(tasks)} &middot; made {html.escape(made)} &middot; git {html.escape(commit[:10])}"
        "</p></header>"
        f"<nav>{nav}</nav><main>{''.join(parts)}</main></body></html>\n")


_IMG = re.compile(r'<img src="([^"]*)"')
_LINK = re.compile(r'<a href="(?!#)([^"]*)">(.*?)</a>', re.S)


def embed_page(page: str, folder: str | Path) -> str:
    """``page`` with every figure inlined (base64 PNG data URIs) and no link to a local file:
    figure links are dropped (the image stays), table and provenance links become their file
    names as text (the files stay in the report folder).

    Parameters
    ----------
    page : str
        The HTML page.
    folder : path-like
        The report folder the page's links are relative to.

    Returns
    -------
    str
        The page that travels alone.

    Examples
    --------
    >>> embed_page('<p><a href="tables/a.csv">tables/a.csv</a> <a href="#x">x</a></p>', ".")
    '<p>tables/a.csv <a href="#x">x</a></p>'
    """
    folder = Path(folder)

    def inline(match: re.Match) -> str:
        source = html.unescape(match.group(1))
        if source.startswith("data:"):
            return match.group(0)
        path = folder / source
        if not path.is_file():
            raise InputError(f"{path}: a figure of the page is missing; cannot embed it")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}"'

    return _LINK.sub(lambda m: m.group(2), _IMG.sub(inline, page))
