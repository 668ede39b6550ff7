"""The report's sections, registered by decorator in one dict (as zennit registers composites).

A section is a function ``build(ctx, section)`` (:class:`~analysis.report.context.ReportContext`,
:class:`~analysis.report.page.Section`). It registers itself with :func:`register_section`
under its anchor key; :data:`SECTIONS` holds every registered section in page order
(:data:`PAGE_ORDER` places the platform's own; another part's section goes before the one it
names, ``problems`` by default). A builder raises :class:`Absent` when its inputs do not exist
and :class:`~stimuli.InputError` when they are bad: the page says so and the other sections
are still built. An ``optional`` section is in a report only when its config key is set
(``rsa:``) or ``sections`` names it.

The section modules import this one; :mod:`analysis.report.run` imports the section modules,
so running a report registers them all.

Examples
--------
>>> @register_section("hello", "A greeting")
... def build_hello(ctx, section):
...     section.text("hello")
>>> SECTIONS["hello"].title, SECTIONS["hello"].build is build_hello
('A greeting', True)
>>> del SECTIONS["hello"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import ReportConfig
from .context import ReportContext
from .page import Section

__all__ = ["Absent", "SectionBuilder", "SectionSpec", "SECTIONS", "PAGE_ORDER", "register_section",
           "sections_for"]

SectionBuilder = Callable[[ReportContext, Section], None]
# the platform's sections in page order (a people-only or model-only report reorders them: page.order_sections)
PAGE_ORDER = ("findings", "overview", "qc", "ci", "relevance", "similarity", "masking", "alignment", "conditions",
              "rsa", "problems")


class Absent(Exception):
    """A section's inputs do not exist: the page says so (with how to make them)."""


@dataclass(frozen=True)
class SectionSpec:
    """A registered section.

    Parameters
    ----------
    key : str
        Its anchor in the page and its name in ``sections:``.
    title : str
        Its heading.
    build : callable
        ``build(ctx, section)``.
    deferred : bool
        Built after the others (it reads what they found).
    optional : bool
        In a report only when the config's key of that name is set or ``sections`` names it.
    """

    key: str
    title: str
    build: SectionBuilder
    deferred: bool = False
    optional: bool = False


SECTIONS: dict[str, SectionSpec] = {}
_RANK: dict[str, tuple[float, int]] = {}


def register_section(key: str, title: str, *, deferred: bool = False, optional: bool = False,
                     before: str = "problems") -> Callable[[SectionBuilder], SectionBuilder]:
    """Decorate a section builder: add it to :data:`SECTIONS` (a key registered again is replaced).

    Parameters
    ----------
    key : str
        The section's anchor and name.
    title : str
        Its heading.
    deferred : bool
        Build it after the others.
    optional : bool
        Only in reports whose config sets ``key`` or names it in ``sections``.
    before : str
        A section not in :data:`PAGE_ORDER` is placed before this one (after it when unknown).

    Returns
    -------
    callable
        The decorator; it returns the builder unchanged.
    """

    def register(build: SectionBuilder) -> SectionBuilder:
        if key in PAGE_ORDER:
            rank = float(PAGE_ORDER.index(key))
        else:
            rank = PAGE_ORDER.index(before) - 0.5 if before in PAGE_ORDER else float(len(PAGE_ORDER))
        _RANK[key] = _RANK.get(key, (rank, len(_RANK)))
        SECTIONS[key] = SectionSpec(key, title, build, deferred, optional)
        ordered = sorted(SECTIONS.values(), key=lambda spec: _RANK[spec.key])
        SECTIONS.clear()
        SECTIONS.update((spec.key, spec) for spec in ordered)
        return build

    return register


def sections_for(config: ReportConfig) -> list[SectionSpec]:
    """The sections of a report of ``config``, in page order.

    Parameters
    ----------
    config : ReportConfig
        The report's config.

    Returns
    -------
    list of SectionSpec
        Every registered section but the optional ones whose config key is unset and that
        ``sections`` does not name.
    """
    named = set(config.sections or [])
    return [spec for spec in SECTIONS.values()
            if not spec.optional or getattr(config, spec.key, None) is not None or spec.key in named]
