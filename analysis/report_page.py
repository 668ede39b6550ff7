"""How the report's page is put together: the order of its sections by what the data contain,
and the self-contained page (every figure inlined) for sending to a colleague.

* :func:`data_kind`: whether the report has people (observers other than models: people and
  simulated template observers), models (relevance maps, masking results, model observers),
  both or neither;
* :func:`order_sections`: a people-only report opens with its people (QC, classification
  images, conditions), a model-only one with its models (relevance, similarity, masking);
  with both, the findings come first (:data:`analysis.report.SECTIONS` order);
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
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from stimuli.contracts.errors import InputError

__all__ = ["PEOPLE_FIRST", "MODELS_FIRST", "data_kind", "order_sections", "embed_page"]

# the sections that open the page when the report holds only people / only models
PEOPLE_FIRST = ("qc", "ci", "conditions", "overview", "findings")
MODELS_FIRST = ("relevance", "similarity", "masking", "findings", "overview")

DataKind = Literal["people", "models", "both", "none"]


def data_kind(ctx) -> DataKind:
    """What a report's inputs hold (``ctx``: :class:`analysis.report_base.ReportContext`)."""
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
    :data:`PEOPLE_FIRST` / :data:`MODELS_FIRST` order), the others after, as they were."""
    first = {"people": PEOPLE_FIRST, "models": MODELS_FIRST}.get(kind, ())
    front = [k for k in first if k in keys]
    return front + [k for k in keys if k not in front]


_IMG = re.compile(r'<img src="([^"]*)"')
_LINK = re.compile(r'<a href="(?!#)([^"]*)">(.*?)</a>', re.S)


def embed_page(page: str, folder: str | Path) -> str:
    """``page`` with every figure inlined (base64 PNG data URIs) and no link to a local file:
    figure links are dropped (the image stays), table and provenance links become their file
    names as text (the files stay in the report folder).

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
