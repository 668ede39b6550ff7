"""``python -m analysis run CONFIG.yaml``: the whole analysis as one self-contained HTML report.

The config (:class:`~analysis.report.config.ReportConfig`, YAML validated on load) names the
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

The page opens with what the data hold (:mod:`analysis.report.page`: a people-only report
with its people, a model-only one with its models). It is a list of sections, each built by
one function registered in :data:`analysis.report.registry.SECTIONS` (this module imports the
section modules, so they register); a section whose inputs are absent says so, one whose
inputs are bad shows the message, and the rest of the report is still produced.

Examples
--------
>>> config = load_config(ReportConfig, "analysis/configs/demo.yaml")          # doctest: +SKIP
>>> report = build_report(config, Path("results/demo"))                      # doctest: +SKIP
>>> [s.key for s in report.sections if s.status != "ok"]                      # doctest: +SKIP
['masking']
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from stimuli.contracts.cli import add_force, add_out, command_parser
from stimuli.contracts.config import load_config, to_dict
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.outputs import atomic_output_dir, check_replaceable
from stimuli.contracts.prepared import prepared_set_dir
from stimuli.contracts.provenance import Provenance, atomic_write_text, record_run
from stimuli.contracts.trials import sidecar_path

# the section modules register their sections (registry.register_section) when imported
from . import (  # noqa: F401
    findings,
    sections_masking,
    sections_models,
    sections_people,
    sections_quality,
    sections_similarity,
)
from .config import ReportConfig
from .context import ReportContext
from .page import Section, data_kind, embed_page, order_sections, render_html
from .registry import Absent, SectionSpec, sections_for

__all__ = ["Report", "build_report", "run_report", "default_out", "input_files_of", "build_parser"]

REPORT_COMMAND = "analysis run"  # recorded in provenance.json: only this command replaces its folders


@dataclass
class Report:
    """What :func:`build_report` made.

    Parameters
    ----------
    sections : list of Section
        The built sections, in page order.
    problems : list of str
        The problems met, one line each.
    context : ReportContext, optional
        The inputs the report read.
    """

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
    """Build every section of ``config`` into the folder ``out`` and write ``report.html``.

    Parameters
    ----------
    config : ReportConfig
        The report's config.
    out : Path
        The folder to write into (it exists).
    warn : callable, optional
        Told each problem once (default: a ``warning:`` line on stderr).
    progress : bool, optional
        Progress bars (None: when the output is a terminal).

    Returns
    -------
    Report
        The sections and the problems.
    """
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


def default_out(config: ReportConfig, config_path: str | Path) -> Path:
    """``<results>/analysis/<name>`` (name: the config's ``name`` or the config file's stem).

    Parameters
    ----------
    config : ReportConfig
        The report's config.
    config_path : path-like
        Its file.

    Returns
    -------
    Path
        The default report folder.
    """
    return Path(config.results) / "analysis" / (config.name or Path(config_path).stem)


def run_report(config_path: str | Path, out: str | Path | None = None, *, force: bool = False,
               progress: bool | None = None, warn: Callable[[str], None] | None = None,
               embed: bool | None = None) -> tuple[Path, Report]:
    """Load ``config_path``, build the report into ``out`` (all at once) and write provenance.

    Parameters
    ----------
    config_path : path-like
        The report's YAML config.
    out : path-like, optional
        The report folder (default: :func:`default_out`).
    force : bool
        Replace an existing ``out`` that an earlier report made (moved aside, never deleted).
    progress : bool, optional
        Progress bars (None: when the output is a terminal).
    warn : callable, optional
        Told each problem once.
    embed : bool, optional
        Inline every figure in ``report.html`` (None: the config's ``embed``).

    Returns
    -------
    out : Path
        The report folder.
    report : Report
        What was built.
    """
    config = load_config(ReportConfig, config_path)
    if embed is not None:
        config.embed = bool(embed)
    out = Path(out) if out is not None else default_out(config, config_path)
    if out.exists() and not force:
        raise InputError(f"{out} exists already; pass --force to replace it (or choose another --out)")
    protect = [p for p in (config.results, config.data.people, config.data.simulated) if p]
    check_replaceable(out, command=REPORT_COMMAND, protect=protect)  # before any work
    provenance = Provenance(config=to_dict(config), seeds={"report": config.seed}, inputs=[config_path],
                            tool=REPORT_COMMAND)
    with atomic_output_dir(out, replace=force, command=REPORT_COMMAND, protect=protect) as work:
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
    """Every input file the report read (trial files and sidecars, relevance maps, the set).

    Parameters
    ----------
    ctx : ReportContext or None
        The inputs of a built report.

    Returns
    -------
    list of Path
        The files (for provenance.json).
    """
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


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m analysis run``.

    Returns
    -------
    argparse.ArgumentParser
        Its arguments: the config, ``--out``, ``--force``, ``--embed``.
    """
    parser = command_parser("analysis", "run",
        "The whole analysis as one report: classification images and Stat4Ci tests per observer "
        "group, relevance maps per variant, their stability across seeds, tasks and pretraining, "
        "relevance-based masking, human-model alignment, accuracy by condition, and the findings "
        "next to the seed study's. Writes report.html, tables/*.csv, maps/*.npz, figures/*.png and "
        "provenance.json. Example config: analysis/configs/demo.yaml.")
    parser.add_argument("config", help="analysis config (YAML), e.g. analysis/configs/demo.yaml")
    add_out(parser, what="the report folder; default: <results>/analysis/<name>, name from the config or its "
                         "file name")
    add_force(parser)
    parser.add_argument("--embed", action="store_true",
                        help="one self-contained report.html: every figure inlined (base64 PNG), no link to a "
                             "local file, for sending to a colleague (also 'embed: true' in the config)")
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m analysis run CONFIG.yaml [--out DIR] [--force] [--embed]`` on ``argv`` (the
    words after the verb; default: the command line's) and return its exit status: 0 on success (bad
    input exits 2 with one line on stderr)."""
    args = build_parser().parse_args(argv)
    out, report = run_report(args.config, args.out, force=args.force, embed=True if args.embed else None)
    states = [f"{s.key}: {s.status}" for s in report.sections if s.status != "ok"]
    print(f"wrote {out / 'report.html'} ({len(report.sections)} sections"
          + (f"; {', '.join(states)}" if states else "")
          + (f"; {len(report.problems)} problem(s) reported" if report.problems else "") + ")")
    return 0
