"""Prepare a face set as stimuli: square, one size, framed, equalised, on a known grey.

The steps, in order, for every face of a set (:func:`prepare_faces`):

1. **Frame** to a square (:func:`stimuli.framing.frame_square`): ``"pad"`` keeps the whole image and pads
   the short side with the image's own mean (ORL's 92x112 portraits keep forehead and chin);
   ``"crop"`` cuts a centred square of the short side (for sets framed loosely).
2. **Resize** to ``size`` x ``size`` with an antialiasing Lanczos filter.
3. **Equalise** luminance and contrast across the set (:func:`equalise`) inside the
   *equalisation region*: the elliptical face aperture when there is one, else the part of
   the square the photograph covers. ``"meanstd"`` (SHINE's ``lumMatch``) gives every image
   the same mean and standard deviation; ``"histogram"`` (SHINE's ``histMatch``) gives every
   image the same histogram (the set's average quantile function), hence the same mean and
   standard deviation too. RMS contrast here is the standard deviation of pixel values on the
   [0, 1] scale.
4. Pixels outside the region become the **background** grey (by default the target mean), the
   value bubbles stimuli fall back to; it is recorded in ``set.json``.

Limits, checked before any image is decoded or anything is written: at most
:data:`MAX_IMAGE_PIXELS` (50 million) pixels per source image, read from the file's header
(PIL's own decompression-bomb guard stays on behind it), and a stimulus side of at most
:data:`MAX_SIZE` (1024) pixels.

:func:`prepare_set` writes the result with :func:`stimuli.contracts.prepared.write_prepared_set`.

Examples
--------
>>> from stimuli.faces import load_face_set
>>> faces = load_face_set("orl")
>>> images, manifest, info = prepare_faces(faces, 32, aperture=True)
>>> images.shape, manifest.stimulus_id.iloc[0], info["background"]
((400, 32, 32), 's1-01', 0.5)
"""

from __future__ import annotations

import argparse
import os
import re
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from .contracts.cli import add_force, add_out, command_parser, parse_command
from .contracts.errors import InputError, cli_errors
from .contracts.outputs import check_replaceable
from .contracts.prepared import new_set_dir, write_prepared_set
from .contracts.provenance import Provenance
from .equalise import EQUALISE_METHODS, EqualiseTargets, Method, _check_targets, equalise
from .faces import FaceSet, load_face_set
from .framing import DEFAULT_APERTURE, FRAMINGS, Framing, elliptical_aperture, frame_square, resize

__all__ = [
    "EQUALISE_METHODS",
    "MAX_SIZE",
    "MAX_IMAGE_PIXELS",
    "check_size",
    "check_image_pixels",
    "equalise",
    "stimulus_ids",
    "prepare_faces",
    "prepare_set",
    "record_face_inputs",
]

_MIN_SIZE = 8
MAX_SIZE = 1024  # stimulus side: 400 faces at 1024 px are 1.6 GB as float32 already
MAX_IMAGE_PIXELS = 50_000_000  # per source image (PIL's own guard refuses above ~179 million)
PREPARE_COMMAND = "stimuli prepare"  # recorded in provenance.json: only this command replaces a set


def check_size(size: Any) -> int:
    """The stimulus side as an int in [8, :data:`MAX_SIZE`]; anything else is an InputError.

    Parameters
    ----------
    size : object
        The requested side.

    Returns
    -------
    int
        The side in pixels.

    Examples
    --------
    >>> check_size(64)
    64
    """
    try:
        fine = not isinstance(size, bool) and int(size) == size and _MIN_SIZE <= size <= MAX_SIZE
    except (TypeError, ValueError, OverflowError):  # None, "abc", nan, inf
        fine = False
    if not fine:
        raise InputError(f"--size {size!r}: the stimulus side must be an integer of at least {_MIN_SIZE} pixels "
                         f"and at most {MAX_SIZE}")
    return int(size)


def check_image_pixels(faces: FaceSet, limit: int = MAX_IMAGE_PIXELS) -> None:
    """Refuse a face set holding an image of more than ``limit`` pixels, from file headers only.

    Nothing is decoded, so a decompression bomb (a small file that decodes to gigabytes)
    costs nothing; an unreadable file is an InputError naming it.

    Parameters
    ----------
    faces : FaceSet
        The face set.
    limit : int
        Most pixels an image may have.
    """
    for i in range(len(faces)):
        path = faces.path(i)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit is lower
                with Image.open(path) as image:
                    width, height = image.size
        except Image.DecompressionBombError as error:  # beyond PIL's own guard: its message holds the count
            found = re.search(r"\((\d+) pixels\)", str(error))
            count = f"{int(found.group(1)):,}" if found else "over 179 million"
            raise InputError(f"{path}: the image has {count} pixels, over the limit of {limit:,} per image; "
                             "downscale it first") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise InputError(f"{path}: cannot read image ({error})") from None
        if width * height > limit:
            raise InputError(f"{path}: the image has {width}x{height} = {width * height:,} pixels, over the "
                             f"limit of {limit:,} per image; downscale it first")


def stimulus_ids(paths: Sequence[str]) -> list[str]:
    """Filename-safe, unique stimulus ids from image paths relative to the face folder.

    Folder parts are joined with ``-``, the extension dropped, characters other than letters,
    digits, ``_``, ``.`` and ``-`` become ``_``, and numeric parts are zero-padded to the widest
    number at the same depth (so ids sort in file order).

    Parameters
    ----------
    paths : sequence of str
        Image paths relative to the face folder.

    Returns
    -------
    list of str
        One id per path.

    Examples
    --------
    >>> stimulus_ids(["s1/1.pgm", "s1/10.pgm", "s2/3.pgm"])
    ['s1-01', 's1-10', 's2-03']
    """
    parts = [list(Path(p).with_suffix("").parts) for p in paths]
    widths: dict[int, int] = {}
    for split in parts:
        for depth, part in enumerate(split):
            if part.isdigit():
                widths[depth] = max(widths.get(depth, 0), len(part))
    ids = []
    for split in parts:
        padded = [p.zfill(widths[d]) if p.isdigit() else p for d, p in enumerate(split)]
        sid = re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(padded)).lstrip("._-") or "face"
        ids.append(sid)
    seen: dict[str, str] = {}
    for path, sid in zip(paths, ids):
        if sid in seen:
            raise InputError(f"images '{seen[sid]}' and '{path}' would get the same stimulus_id '{sid}'; "
                             "rename one of them")
        seen[sid] = path
    return ids


def prepare_faces(
    faces: FaceSet,
    size: int,
    *,
    framing: Framing = "pad",
    aperture: bool | Sequence[float] = False,
    method: Method = "meanstd",
    mean: float = 0.5,
    contrast: float | None = None,
    background: float | None = None,
    progress: bool = False,
    lazy: bool = False,
) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any]]:
    """Frame, resize and equalise every face of ``faces``.

    Parameters
    ----------
    faces : a loaded face set.
    size : side of the square stimulus grid in pixels.
    framing : ``"pad"`` (whole photograph) or ``"crop"`` (centred square).
    aperture : False for none, True for :data:`DEFAULT_APERTURE`, or an ellipse
        (centre row, centre col, radius rows, radius cols) in grid fractions.
    method, mean, contrast : see :func:`equalise`.
    background : grey outside the region; None uses ``mean`` (hidden pixels at the mean luminance).
    lazy : return the images as a lazy stack (``shape``, ``len``, iteration yields one prepared
        image at a time, decoded again), so a set of any size never sits in memory; ``info``'s
        ``equalise`` record is complete once the stack has been iterated. The set-level
        equalisation targets are found in a first pass, an image at a time, either way.

    Returns
    -------
    images (N, size, size) float32 in [0, 1], the manifest (stimulus_id, identity, gender,
    source and the face table's other columns) and ``info`` for ``set.json`` (``background``,
    ``aperture`` mask or None, and how the set was made).
    """
    size = check_size(size)
    check_image_pixels(faces)
    _check_targets(method, mean, contrast)
    background = mean if background is None else float(background)
    if not 0 <= background <= 1:
        raise InputError(f"background grey {background!r} must lie in [0, 1]")
    ids = stimulus_ids(list(faces.table.image))  # a clash fails before any work
    shapes = {_header_shape(faces.path(i)) for i in range(len(faces))}
    # where every photograph covers the grid (pad strips excluded)
    covered = np.logical_and.reduce([_footprint(shape, size, framing) for shape in shapes])
    ellipse = DEFAULT_APERTURE if aperture is True else (tuple(aperture) if aperture else None)
    mask = elliptical_aperture((size, size), ellipse) if ellipse is not None else None
    region = covered if mask is None else (mask & covered)
    if not region.any():
        raise InputError("the face aperture and the photograph do not overlap; change --aperture")
    stack = _PreparedFaces(faces, size, framing, region, background, EqualiseTargets(region, method, mean=mean,
                                                                                    contrast=contrast))
    for image in tqdm(stack.framed(), desc="prepare", unit="face", total=len(faces), disable=not progress):
        stack.targets.add(image)  # the set-level targets: one pass, an image at a time
    record = stack.record
    record["region"] = "aperture" if mask is not None else "photograph"
    if not lazy:
        stack = np.stack(list(stack)) if len(faces) else np.empty((0, size, size), np.float32)
    table = faces.table
    manifest = pd.DataFrame({
        "stimulus_id": ids,
        "identity": table.identity.to_numpy(),
        "gender": table.gender.to_numpy(),
        "source": [str(faces.path(i)) for i in range(len(faces))],
    })
    for column in table.columns:
        if column not in ("image", *manifest.columns):
            manifest[column] = table[column].to_numpy()
    info = {
        "background": float(background),
        "aperture": mask,
        "faces": faces.name,
        "framing": framing,
        "aperture_ellipse": list(ellipse) if ellipse is not None else None,
        "equalise": record,
    }
    return stack, manifest, info


class _PreparedFaces:
    """The prepared faces of a set, made one at a time (decoded, framed, resized, equalised) on iteration."""

    def __init__(self, faces: FaceSet, size: int, framing: Framing, region: np.ndarray, background: float,
                 targets: EqualiseTargets) -> None:
        self.faces, self.size, self.framing = faces, size, framing
        self.region, self.background, self.targets = region, background, targets
        self.shape = (len(faces), size, size)
        self.record: dict[str, Any] = {"region_pixels": int(region.sum())}

    def __len__(self) -> int:
        return len(self.faces)

    def framed(self):
        """Each face framed and resized, not yet equalised."""
        for i in range(len(self.faces)):
            yield resize(frame_square(self.faces.load(i), self.framing)[0], self.size)

    def __iter__(self):
        self.targets.restart()
        for i, image in enumerate(self.framed()):
            out = self.targets.apply(image)
            out[~self.region] = self.background
            if i == len(self) - 1:  # before the last yield: a consumer (zip) may stop right after it
                self.record.update(self.targets.record())
            yield np.clip(out, 0.0, 1.0, out=out)


def _header_shape(path: Path) -> tuple[int, int]:
    """(H, W) of an image from its header (nothing decoded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            return image.size[1], image.size[0]


def _footprint(shape: tuple[int, int], size: int, framing: Framing) -> np.ndarray:
    """The part of the ``size`` grid that a photograph of ``shape`` covers once framed."""
    square, (rows, cols) = frame_square(np.zeros(shape, dtype=np.float32), framing)
    foot = np.zeros(square.shape, dtype=np.float32)
    foot[rows, cols] = 1.0
    return resize(foot, size) > 0.5


def record_face_inputs(provenance: Provenance, faces: FaceSet) -> None:
    """Add a face set's table and every image (by SHA-256) to ``provenance``'s inputs.

    Parameters
    ----------
    provenance : Provenance
        The run's record.
    faces : FaceSet
        The faces it read.
    """
    table = faces.root / "faces.csv"
    if faces.name == "orl" and not table.is_file():
        table = Path(str(resources.files("stimuli") / "data" / "orl_faces.csv"))
    provenance.add_input(table)
    for image, digest in faces.hashes.items():
        provenance.add_input(faces.root / image, digest)


def prepare_set(
    faces: str | os.PathLike,
    size: int,
    name: str,
    *,
    results: str | os.PathLike = "results",
    force: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
    **options: Any,
) -> Path:
    """Prepare face set ``faces`` (``"orl"`` or a folder) as ``<results>/stimuli/<name>/``.

    An existing set is refused unless ``force``; the folder appears only when complete.

    Parameters
    ----------
    faces : str or path-like
        ``"orl"`` or a folder holding ``faces.csv``.
    size : int
        Side of the square stimuli.
    name : str
        The set's name.
    results : str or path-like
        The results root written under.
    force : bool
        Replace an existing set made by ``stimuli prepare`` (moved aside).
    progress : bool
        Show a progress bar.
    command : list of str, optional
        The command line recorded in ``provenance.json``.
    **options
        For :func:`prepare_faces` (framing, aperture, method, mean, contrast, background).

    Returns
    -------
    Path
        The set's folder.

    Examples
    --------
    >>> prepare_set("orl", 64, "orl64", results="results")   # doctest: +SKIP
    PosixPath('results/stimuli/orl64')
    """
    folder = new_set_dir(name, results, force=force)
    size = check_size(size)
    check_replaceable(folder, command=PREPARE_COMMAND, protect=[results])
    face_set = load_face_set(faces, check_images=False)  # sizes first (headers), then decoding
    images, manifest, info = prepare_faces(face_set, size, progress=progress, lazy=True, **options)
    aperture = info.pop("aperture")
    provenance = Provenance(command=command, config={"faces": str(faces), "size": size, "name": name,
                                                     **options}, tool=PREPARE_COMMAND)
    record_face_inputs(provenance, face_set)
    return write_prepared_set(folder, images, manifest, background=info.pop("background"),
                              aperture=aperture, info=info, provenance=provenance, replace=force)


# ---------------------------------------------------------------------------- command line

def _ellipse(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError("expected four numbers: centre_row,centre_col,radius_rows,radius_cols")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m stimuli prepare`` (shared ones from :mod:`stimuli.contracts.cli`)."""
    parser = command_parser("stimuli", "prepare", "Frame, resize and equalise a face set into <out>/stimuli/<name>/ "
                            "(square grey PNGs, manifest.csv, set.json, provenance.json).")
    parser.add_argument("--faces", required=True, help="'orl' (built-in) or a folder with faces.csv")
    parser.add_argument("--size", type=int, required=True, help="side of the square stimuli in pixels")
    parser.add_argument("--name", required=True, help="name of the prepared set")
    add_out(parser, default="results", what="the results root; the set goes to <out>/stimuli/<name>/")
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
    add_force(parser)
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m stimuli prepare``: write the set and print its folder (bad input: exit 2)."""
    args, command = parse_command(build_parser(), argv)
    print(prepare_set(
        args.faces, args.size, args.name, results=args.out, force=args.force,
        command=command,
        framing=args.framing, aperture=args.aperture or False, method=args.equalise,
        mean=args.mean, contrast=args.contrast, background=args.background))
    return 0
