"""``python -m analysis run CONFIG.yaml``: the whole analysis as one self-contained HTML report.

The config (:class:`~analysis.report_base.ReportConfig`, YAML validated on load) names the
stimulus set, the task(s), the data roots (people, simulated observers), the results root
(relevance maps, prepared sets), the ``model evaluate`` output, the exclusion rule, alpha
and seeds. The report folder holds::

    report.html          the page (figures referenced as relative PNG paths; no network, no JS;
                         with --embed / ``embed: true`` every figure inlined: one file to send)
    tables/*.csv         every table the page shows, complete
    maps/*.npz           every map (group CIs of the contract at the top level; other
                         observer groups under maps/<group>/)
    figures/*.png
    provenance.json

The page opens with what the data hold (:mod:`analysis.report_page`: a people-only report
with its people, a model-only one with its models). It is a list of sections (:data:`SECTIONS`, plus :data:`OPTIONAL_SECTIONS` that a config
turns on with its own key, e.g. ``rsa:`` for similarity judgements), each built by one function; a section
whose inputs are absent says so, one whose inputs are bad shows the message, and the rest
of the report is still produced. Another part of the platform adds its own section with
:func:`register_section`.

Examples
--------
>>> config = load_config(ReportConfig, "analysis/configs/demo.yaml")          # doctest: +SKIP
>>> report = build_report(config, Path("results/demo"))                      # doctest: +SKIP
>>> [s.key for s in report.sections if s.status != "ok"]                      # doctest: +SKIP
['masking']
"""

from __future__ import annotations

import datetime
import html
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stimuli.contracts.config import load_config, to_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.outputs import atomic_output_dir, check_replaceable
from stimuli.contracts.prepared import prepared_set_dir
from stimuli.contracts.provenance import Provenance, atomic_write_text, git_commit, record_run
from stimuli.contracts.trials import sidecar_path

from .report_base import Absent, ReportConfig, ReportContext, Section
from .report_page import data_kind, embed_page, order_sections
from .report_quality import build_quality
from .report_rsa import build_rsa
from .report_sections import DEFAULT_SECTIONS, SectionSpec

__all__ = ["SECTIONS", "OPTIONAL_SECTIONS", "SectionSpec", "register_section", "sections_for", "Report", "build_report", "render_html", "run_report",
           "default_out"]

SECTIONS: list[SectionSpec] = list(DEFAULT_SECTIONS)
# timing and quality control, before the classification images it decides who enters
SECTIONS.insert([s.key for s in SECTIONS].index("ci"), SectionSpec("qc", "Timing and quality control", build_quality))
REPORT_COMMAND = "analysis run"  # recorded in provenance.json: only this command replaces its folders


def register_section(key: str, title: str, build: Callable[[ReportContext, Section], None], *,
                     before: str | None = "problems", deferred: bool = False) -> SectionSpec:
    """Add a section to every report built from now on (placed before section ``before``).

    Examples
    --------
    >>> def build_rsa(ctx, section):                                  # doctest: +SKIP
    ...     section.text("...")
    >>> register_section("rsa", "Similarity judgements", build_rsa)   # doctest: +SKIP
    """
    spec = SectionSpec(key, title, build, deferred)
    keys = [s.key for s in SECTIONS]
    if key in keys:
        SECTIONS[keys.index(key)] = spec
    elif before in keys:
        SECTIONS.insert(keys.index(before), spec)
    else:
        SECTIONS.append(spec)
    return spec


# sections a config turns on with its own key (not in every report): key -> (spec, placed before)
OPTIONAL_SECTIONS: dict[str, tuple[SectionSpec, str]] = {
    "rsa": (SectionSpec("rsa", "Face similarity: people and models", build_rsa), "problems"),
}


def sections_for(config: ReportConfig) -> list[SectionSpec]:
    """The sections of a report of ``config``: :data:`SECTIONS`, plus each optional section whose
    config key is set (``rsa:``) or that ``sections`` names."""
    sections = list(SECTIONS)
    for key, (spec, before) in OPTIONAL_SECTIONS.items():
        if key in {s.key for s in sections}:
            continue
        if getattr(config, key, None) is not None or key in (config.sections or []):
            keys = [s.key for s in sections]
            sections.insert(keys.index(before) if before in keys else len(sections), spec)
    return sections


@dataclass
class Report:
    """What :func:`build_report` made: the sections (in page order) and the problems met."""

    sections: list[Section]
    problems: list[str] = field(default_factory=list)
    context: ReportContext | None = None


def _run_section(ctx: ReportContext, spec: SectionSpec) -> Section:
    section = Section(spec.key, spec.title, ctx)
    try:
        spec.build(ctx, section)
    except Absent as absent:
        section.status = "absent"
        section.note(f"Not in this report: {absent}", "absent")
    except InputError as error:
        section.status = "error"
        ctx.warn(f"section '{spec.title}': {error}")
        section.note(f"Could not be built: {error}", "error")
    return section


def build_report(config: ReportConfig, out: Path, *, warn: Callable[[str], None] | None = None,
                 progress: bool | None = None) -> Report:
    """Build every section of ``config`` into the folder ``out`` and write ``report.html``."""
    from tqdm.auto import tqdm

    ctx = ReportContext(config, out, warn=warn, progress=progress)
    available = sections_for(config)
    wanted = [s for s in available if config.sections is None or s.key in config.sections]
    if config.sections is not None:
        unknown = [k for k in config.sections if k not in {s.key for s in available}]
        if unknown:
            raise InputError(f"unknown report section '{unknown[0]}' (known: {', '.join(s.key for s in available)})")
    built: dict[str, Section] = {}
    order = [s for s in wanted if not s.deferred] + [s for s in wanted if s.deferred]
    with tqdm(order, desc="report sections", unit="section", disable=None if progress is None else not progress) as bar:
        for spec in bar:
            bar.set_postfix_str(spec.key)
            built[spec.key] = _run_section(ctx, spec)
    # the page opens with what the data hold: people first for people only, models first for models only
    sections = [built[key] for key in order_sections([s.key for s in wanted], data_kind(ctx))]
    shutil.rmtree(Path(out) / ".scratch", ignore_errors=True)
    page = render_html(config, sections)
    if config.embed:  # one file to send: figures inlined, no link to a local file
        page = embed_page(page, out)
    atomic_write_text(Path(out) / "report.html", page)
    return Report(sections, list(ctx.problems), ctx)


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
    """The page: a header, a table of contents with each section's status, the sections."""
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


def default_out(config: ReportConfig, config_path: str | Path) -> Path:
    """``<results>/analysis/<name>`` (name: the config's ``name`` or the config file's stem)."""
    return Path(config.results) / "analysis" / (config.name or Path(config_path).stem)


def run_report(config_path: str | Path, out: str | Path | None = None, *, overwrite: bool = False,
               progress: bool | None = None, warn: Callable[[str], None] | None = None,
               embed: bool | None = None) -> tuple[Path, Report]:
    """Load ``config_path``, build the report into ``out`` (all at once) and write provenance.

    ``embed`` (None: the config's ``embed``) inlines every figure in ``report.html``.
    """
    config = load_config(ReportConfig, config_path)
    if embed is not None:
        config.embed = bool(embed)
    out = Path(out) if out is not None else default_out(config, config_path)
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists already; pass --overwrite to replace it (or choose another --out)")
    protect = [p for p in (config.results, config.data.people, config.data.simulated) if p]
    check_replaceable(out, command=REPORT_COMMAND, protect=protect)  # before any work
    provenance = Provenance(config=to_dict(config), seeds={"report": config.seed}, inputs=[config_path],
                            tool=REPORT_COMMAND)
    with atomic_output_dir(out, replace=overwrite, command=REPORT_COMMAND, protect=protect) as work:
        report = build_report(config, work, warn=warn, progress=progress)
        ctx = report.context
        for path in sorted(set(input_files_of(ctx))):
            provenance.add_input(path)
        provenance.extra["problems"] = report.problems
        provenance.extra["sections"] = {s.key: s.status for s in report.sections}
        provenance.extra["outputs"] = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
        record_run(work, provenance)
    return out, report


def input_files_of(ctx: ReportContext | None) -> list[Path]:
    """Every input file the report read (trial files and sidecars, relevance maps, the set)."""
    if ctx is None:
        return []
    files = []
    for path in map(Path, ctx.inputs):
        if path.is_file():
            files.append(path)
        if path.name.endswith("_beh.tsv") and sidecar_path(path).is_file():
            files.append(sidecar_path(path))
    folder = prepared_set_dir(ctx.config.stimuli, ctx.config.results)
    files += [folder / n for n in ("manifest.csv", "set.json") if (folder / n).is_file()]
    evaluate = ctx.config.models.evaluate
    if evaluate and Path(evaluate).is_dir():
        files += sorted(Path(evaluate).glob("*.csv"))
    return files


def main_run(args) -> int:
    """The ``run`` subcommand of ``python -m analysis``."""
    out, report = run_report(args.config, args.out, overwrite=args.overwrite, embed=True if args.embed else None)
    states = [f"{s.key}: {s.status}" for s in report.sections if s.status != "ok"]
    print(f"wrote {out / 'report.html'} ({len(report.sections)} sections"
          + (f"; {', '.join(states)}" if states else "")
          + (f"; {len(report.problems)} problem(s) reported" if report.problems else "") + ")",
          file=sys.stdout)
    return 0
