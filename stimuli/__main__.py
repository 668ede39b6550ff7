"""Command line of the stimuli part: ``python -m stimuli prepare|render|synth ...``.

Examples
--------
::

    python -m stimuli prepare --faces orl --size 128 --name orl128
    python -m stimuli render --stimuli orl128 --mode random --n-bubbles 20 --sigma 6 --out results/render
    python -m stimuli synth --region eyes --size 64 --name synth-eyes
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .contracts.errors import cli_errors

__all__ = ["main", "build_parser"]


def _ellipse(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError("expected four numbers: centre_row,centre_col,radius_rows,radius_cols")
    return values


def _add_prepare(commands: argparse._SubParsersAction) -> None:
    from .prepare import DEFAULT_APERTURE, EQUALISE_METHODS, FRAMINGS

    parser = commands.add_parser(
        "prepare", help="make a prepared stimulus set from a face set",
        description="Frame, resize and equalise a face set into <out>/stimuli/<name>/ "
                    "(square grey PNGs, manifest.csv, set.json, provenance.json).")
    parser.add_argument("--faces", required=True, help="'orl' (built-in) or a folder with faces.csv")
    parser.add_argument("--size", type=int, required=True, help="side of the square stimuli in pixels")
    parser.add_argument("--name", required=True, help="name of the prepared set")
    parser.add_argument("--out", default="results", help="results root (default: results)")
    parser.add_argument("--framing", choices=FRAMINGS, default="pad",
                        help="pad: whole photograph on a square; crop: centred square (default: pad)")
    parser.add_argument("--aperture", nargs="?", const=DEFAULT_APERTURE, default=None, type=_ellipse,
                        metavar="ROW,COL,RROW,RCOL",
                        help="elliptical face aperture; optional ellipse in grid fractions "
                             f"(default ellipse {','.join(f'{v:g}' for v in DEFAULT_APERTURE)})")
    parser.add_argument("--equalise", choices=EQUALISE_METHODS, default="meanstd",
                        help="meanstd (SHINE lumMatch), histogram (SHINE histMatch) or none (default: meanstd)")
    parser.add_argument("--mean", type=float, default=0.5, help="target mean luminance in [0, 1] (default 0.5)")
    parser.add_argument("--contrast", type=float, default=None,
                        help="target RMS contrast (std of [0, 1] values); default: the set's average")
    parser.add_argument("--background", type=float, default=None,
                        help="grey outside the face (default: the target mean)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing set of that name made by this same command (the old set "
                             "is moved aside as <name>.old-<time>, never deleted)")
    parser.set_defaults(run=_run_prepare)


def _run_prepare(args: argparse.Namespace, argv: list[str]) -> int:
    from .prepare import prepare_set

    folder = prepare_set(
        args.faces, args.size, args.name, results=args.out, force=args.force,
        command=["python", "-m", "stimuli", *argv],
        framing=args.framing, aperture=args.aperture or False, method=args.equalise,
        mean=args.mean, contrast=args.contrast, background=args.background)
    print(folder)
    return 0


def _add_render(commands: argparse._SubParsersAction) -> None:
    from .render import RENDER_MODES

    parser = commands.add_parser(
        "render", help="render bubbles stimuli (random, guided, antiguided, top-k) as PNGs",
        description="Mask the faces of a prepared set and write images/, manifest.csv, "
                    "contact_sheet.png and provenance.json into --out.")
    parser.add_argument("--stimuli", required=True, help="prepared set name (in <results>/stimuli/)")
    parser.add_argument("--mode", choices=RENDER_MODES, required=True,
                        help="random centres, guided/antiguided by relevance, or topk area-matched reveal")
    parser.add_argument("--n-bubbles", type=int, required=True, help="apertures per stimulus")
    parser.add_argument("--sigma", type=float, required=True, help="aperture standard deviation in pixels")
    parser.add_argument("--variant", help="model variant whose relevance guides (guided, antiguided, topk)")
    parser.add_argument("--count", type=int, default=None, help="stimuli to render (default: one per face)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="guidance strength in [0, 1]: share of centres placed by relevance (default 1)")
    parser.add_argument("--relevance", choices=("image", "mean"), default="image",
                        help="each face's own relevance map or the set-average map (default image)")
    parser.add_argument("--within", choices=("image", "aperture"), default="image",
                        help="place centres anywhere or inside the set's face aperture (default image)")
    parser.add_argument("--merge", choices=("sum", "prob"), default="sum",
                        help="overlapping apertures: sum and clip (classic) or 1 - prod(1 - g)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--results", default="results",
                        help="results root holding stimuli/ and relevance/ (default: results)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --out folder made by an earlier render (it is moved aside "
                             "as <out>.old-<time>, never deleted); data and results roots are refused")
    parser.set_defaults(run=_run_render)


def _run_render(args: argparse.Namespace, argv: list[str]) -> int:
    from .render import render_set

    folder = render_set(
        args.stimuli, args.mode, args.n_bubbles, args.sigma, args.out, variant=args.variant,
        results=args.results, force=args.force, command=["python", "-m", "stimuli", *argv],
        count=args.count, seed=args.seed, strength=args.strength, source=args.relevance,
        within=args.within, merge=args.merge)
    print(folder)
    return 0


def _add_synth(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "synth", help="make a two-class synthetic face set whose evidence lies only in one region",
        description="Real faces with a class cue (a: horizontal, b: vertical stripes) drawn only "
                    "inside --region; written as a prepared set with region.png (class in the "
                    "'gender' and 'class' columns, so task gender trains on it).")
    parser.add_argument("--region", required=True,
                        help="eyes, left_eye, right_eye, nose, mouth, forehead, upper, lower or "
                             "box:top,bottom,left,right (fractions)")
    parser.add_argument("--size", type=int, required=True, help="side of the square stimuli in pixels")
    parser.add_argument("--name", required=True, help="name of the prepared set")
    parser.add_argument("--faces", default="orl", help="face set the cue is drawn on (default: orl)")
    parser.add_argument("--n-per-class", type=int, default=None,
                        help="faces used; each appears once per class (default: all)")
    parser.add_argument("--amplitude", type=float, default=0.3, help="stripe amplitude on [0, 1] (default 0.3)")
    parser.add_argument("--period", type=float, default=None,
                        help="stripe period in pixels (default: size/16, at least 3)")
    parser.add_argument("--phase", choices=("fixed", "random"), default="fixed",
                        help="stripes at the same phase on every image (linearly separable) or a random "
                             "phase per image (orientation only) (default fixed)")
    parser.add_argument("--seed", type=int, default=0, help="picks faces and stripe phases (default 0)")
    parser.add_argument("--contrast", type=float, default=None,
                        help="RMS contrast of the faces under the cue (default: the set's average, about "
                             "0.17); lower it (e.g. 0.06) so face structure outside the region drives the "
                             "network less")
    parser.add_argument("--aperture", action="store_true", help="elliptical face aperture, as prepare")
    parser.add_argument("--out", default="results", help="results root (default: results)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing set of that name made by this same command (the old set "
                             "is moved aside as <name>.old-<time>, never deleted)")
    parser.set_defaults(run=_run_synth)


def _run_synth(args: argparse.Namespace, argv: list[str]) -> int:
    from .synthetic import synth_set

    folder = synth_set(
        args.region, args.size, args.name, faces=args.faces, results=args.out, force=args.force,
        command=["python", "-m", "stimuli", *argv], n_per_class=args.n_per_class,
        amplitude=args.amplitude, period_px=args.period, phase=args.phase, seed=args.seed, aperture=args.aperture,
        contrast=args.contrast)
    print(folder)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stimuli",
        description="Prepared face stimuli, bubble masks, relevance-guided masks and synthetic faces.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_prepare(commands)
    _add_render(commands)
    _add_synth(commands)
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    return args.run(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
