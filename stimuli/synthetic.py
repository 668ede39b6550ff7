"""Synthetic ground-truth faces: a two-class set whose class evidence lies only in one region.

Each real face (prepared exactly as :func:`stimuli.prepare.prepare_faces` does) appears once
in each class, with a class-specific cue drawn only inside the named region: a grating of
horizontal stripes for class ``a`` and of vertical stripes for class ``b``. Everything outside
the region is the same face in both classes, so the label is independent of identity and of
every pixel outside the region: a model that learns the task can only use the region, and its
relevance should sit there (the explain tests check it). By default the stripes have the same
phase on every image (a bright stripe through the region's centre), so the classes are
linearly separable and a small network learns them in a few epochs; ``phase="random"``
leaves only the orientation. Horizontal and vertical stripes of the same amplitude have about
the same mean and energy, and survive left-right flips of a centred region (a common training
augmentation).

The set is a prepared set (same grid as the models are trained and explained on) with the
class in ``gender`` (so ``task: gender`` trains on it) and in ``class``; ``region.png`` holds
the region mask and ``set.json`` the region spec and cue.

Examples
--------
>>> from stimuli.faces import load_face_set
>>> images, table, region = synthesize(load_face_set("orl"), "eyes", 32, n_per_class=20)
>>> images.shape, sorted(table.gender.unique()), int(region.sum())
((40, 32, 32), ['a', 'b'], 90)
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .contracts.cli import add_force, add_out, command_parser, parse_command
from .contracts.errors import InputError, cli_errors
from .contracts.prepared import new_set_dir, write_prepared_set
from .contracts.provenance import Provenance
from .faces import FaceSet, load_face_set
from .prepare import prepare_faces, record_face_inputs
from .regions import region_box, region_mask

__all__ = ["CLASSES", "grating_cue", "synthesize", "synth_set"]

CLASSES = ("a", "b")  # a: horizontal stripes, b: vertical stripes


def grating_cue(
    shape: Sequence[int], region: np.ndarray, cls: str, period_px: float, phase: float
) -> np.ndarray:
    """Cosine grating of amplitude 1 inside ``region`` (0 outside): the cue of class ``cls``.

    Class ``a`` varies along rows (horizontal stripes), class ``b`` along columns (vertical).

    Parameters
    ----------
    shape : sequence of int
        (height, width) of the grid.
    region : numpy.ndarray
        Boolean (H, W) region the cue is drawn in.
    cls : {"a", "b"}
        The class.
    period_px : float
        Stripe period in pixels.
    phase : float
        Phase in radians at the region's centre.

    Returns
    -------
    numpy.ndarray
        The (H, W) cue in [-1, 1], 0 outside the region.

    Examples
    --------
    >>> region = np.ones((4, 4), bool)
    >>> cue = grating_cue((4, 4), region, "b", 4.0, 0.0)
    >>> np.allclose(cue[0], cue[3]), np.allclose(cue[:, 0], cue[0, 0])
    (True, True)
    >>> np.allclose(cue, cue[:, ::-1])  # symmetric about the region's centre
    True
    """
    if cls not in CLASSES:
        raise InputError(f"unknown synthetic class '{cls}' (choose {', '.join(CLASSES)})")
    height, width = int(shape[0]), int(shape[1])
    rows, cols = np.nonzero(region)
    # phase 0 is a bright stripe through the region's centre, so a vertical grating is
    # symmetric under a left-right flip of a centred region
    centre = (rows.min() + rows.max()) / 2 if cls == "a" else (cols.min() + cols.max()) / 2
    axis = np.arange(height)[:, None] if cls == "a" else np.arange(width)[None, :]
    wave = np.cos(2 * np.pi * (axis - centre) / period_px + phase)
    return np.broadcast_to(wave, (height, width)) * np.asarray(region, dtype=np.float64)


def default_period(size: int) -> float:
    """Stripe period in pixels: 1/16 of the grid, at least 3 px (resolvable after resizing)."""
    return max(3.0, size / 16.0)


def synthesize(
    faces: FaceSet,
    region: str,
    size: int,
    *,
    n_per_class: int | None = None,
    amplitude: float = 0.3,
    period_px: float | None = None,
    phase: str = "fixed",
    seed: int = 0,
    **prepare_options: Any,
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Images (2n, size, size), their table and the boolean region mask.

    Parameters
    ----------
    faces : FaceSet
        The real faces the cue is drawn on.
    region : str
        A :mod:`stimuli.regions` spec: ``eyes``, ``mouth``, ... or ``box:top,bottom,left,right``.
    size : int
        Side of the square grid.
    n_per_class : int, optional
        Faces used (each appears once per class); default all.
    amplitude : float
        Grating amplitude on the [0, 1] scale (the faces' RMS contrast is about 0.17).
    period_px : float, optional
        Stripe period in pixels (default :func:`default_period`).
    phase : {"fixed", "random"}
        ``"fixed"`` (every image has the same stripes: the classes are linearly separable,
        a template suffices) or ``"random"`` (a random phase per image: only the orientation
        tells the classes apart, which needs orientation-selective features).
    seed : int
        Picks the faces (and, with random phase, each image's phase).
    **prepare_options
        framing, aperture, method, mean, contrast (see ``prepare_faces``).

    Returns
    -------
    images : numpy.ndarray
        (2n, size, size) float32, class ``a`` first.
    table : pandas.DataFrame
        One row per image (class in ``gender`` and ``class``); ``attrs["info"]`` holds set.json's entries.
    region : numpy.ndarray
        The boolean (size, size) region mask.
    """
    box = region_box(region)
    n_faces = len(faces)
    n = n_faces if n_per_class is None else int(n_per_class)
    if not 1 <= n <= n_faces:
        raise InputError(f"--n-per-class {n_per_class!r} must lie between 1 and the {n_faces} faces "
                         f"of '{faces.name}' (each face appears once in each class)")
    if not 0 < amplitude <= 0.5:
        raise InputError(f"cue amplitude {amplitude!r} must lie in (0, 0.5]")
    period = default_period(size) if period_px is None else float(period_px)
    if not math.isfinite(period) or period < 2:
        raise InputError(f"stripe period {period_px!r} px must be at least 2 (the Nyquist limit)")
    base, manifest, info = prepare_faces(faces, size, **prepare_options)
    mask = region_mask(region, (size, size))
    if min(np.ptp(np.nonzero(mask)[0]), np.ptp(np.nonzero(mask)[1])) + 1 < period:
        raise InputError(f"region '{region}' is {int(mask.any(1).sum())}x{int(mask.any(0).sum())} px on a "
                         f"{size}x{size} grid, smaller than one stripe period ({period:g} px); "
                         "use a larger --size or region")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n_faces, size=n, replace=False))
    if phase not in ("fixed", "random"):
        raise InputError(f"unknown cue phase '{phase}' (choose fixed or random)")
    phases = rng.uniform(0, 2 * np.pi, size=(len(CLASSES), n)) if phase == "random" else np.zeros((2, n))
    images = np.empty((len(CLASSES) * n, size, size), dtype=np.float32)
    rows = []
    for c, cls in enumerate(CLASSES):
        for j, i in enumerate(chosen):
            cue = grating_cue((size, size), mask, cls, period, phases[c, j])
            images[c * n + j] = np.clip(base[i] + amplitude * cue, 0.0, 1.0)
            source = manifest.iloc[i]
            rows.append({"stimulus_id": f"{source.stimulus_id}-{cls}", "identity": source.identity,
                         "gender": cls, "source": source.source, "class": cls,
                         "base_id": source.stimulus_id, "face_gender": source.gender,
                         "cue_phase": round(float(phases[c, j]), 6)})
    table = pd.DataFrame(rows)
    info.update(synthetic={"region": region, "box": list(box), "file": "region.png", "cue": "grating",
                           "classes": {"a": "horizontal stripes", "b": "vertical stripes"},
                           "amplitude": amplitude, "period_px": period, "phase": phase, "seed": seed,
                           "n_per_class": n})
    table.attrs["info"] = info
    return images, table, mask


def synth_set(
    region: str,
    size: int,
    name: str,
    *,
    faces: str | os.PathLike = "orl",
    results: str | os.PathLike = "results",
    force: bool = False,
    command: list[str] | None = None,
    **options: Any,
) -> Path:
    """Write a synthetic ground-truth set as ``<results>/stimuli/<name>/`` (all or nothing).

    The images come from :func:`synthesize`; ``provenance.json`` records the command, seed and options.

    Parameters
    ----------
    region : str
        The evidence region (see :func:`synthesize`).
    size : int
        Side of the square grid.
    name : str
        The set's name.
    faces : str or path-like
        The face set the cue is drawn on.
    results : str or path-like
        The results root written under.
    force : bool
        Replace an existing set of that name (moved aside).
    command : list of str, optional
        The command line recorded in ``provenance.json``.
    **options
        For :func:`synthesize` (n_per_class, amplitude, period_px, seed, aperture, ...).

    Returns
    -------
    Path
        ``<results>/stimuli/<name>``, holding ``region.png`` besides the prepared set's files.

    Examples
    --------
    >>> synth_set("mouth", 64, "synth-mouth", results="results")   # doctest: +SKIP
    PosixPath('results/stimuli/synth-mouth')
    """
    folder = new_set_dir(name, results, force=force)
    region_box(region)  # a bad spec fails before any work
    face_set = load_face_set(faces)
    images, table, mask = synthesize(face_set, region, size, **options)
    info = table.attrs.pop("info")
    aperture = info.pop("aperture")
    provenance = Provenance(command=command, seeds={"synth": options.get("seed", 0)},
                            config={"region": region, "size": size, "name": name, "faces": str(faces),
                                    **options})
    record_face_inputs(provenance, face_set)
    return write_prepared_set(folder, images, table, background=info.pop("background"), aperture=aperture,
                              masks={"region": mask}, info=info, provenance=provenance, replace=force)


# ---------------------------------------------------------------------------- command line

@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m stimuli synth``: write the set and print its folder (bad input: exit 2)."""
    args, command = parse_command(build_parser(), argv)
    print(synth_set(
        args.region, args.size, args.name, faces=args.faces, results=args.out, force=args.force,
        command=command, n_per_class=args.n_per_class,
        amplitude=args.amplitude, period_px=args.period, phase=args.phase, seed=args.seed, aperture=args.aperture,
        contrast=args.contrast))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m stimuli synth`` (shared ones from :mod:`stimuli.contracts.cli`)."""
    parser = command_parser("stimuli", "synth", "Real faces with a class cue (a: horizontal, b: vertical stripes) drawn only "
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
    add_out(parser, default="results", what="the results root; the set goes to <out>/stimuli/<name>/")
    add_force(parser)
    return parser
