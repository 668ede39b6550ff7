"""Render bubbles stimuli to PNGs: for inspection, print, or fixed-stimulus experiments.

``python -m stimuli render`` draws ``count`` masks on the faces of a prepared set (stimulus
``k`` shows face ``k mod N`` in manifest order) and writes::

    images/<k>_<stimulus_id>.png   the masked stimuli (8-bit grey)
    manifest.csv                   file, stimulus_id, mode, n_bubbles, sigma_px, mask_seed,
                                   centres (JSON [row, col]), area_px, merge, variant, ...
    contact_sheet.png              the first stimuli side by side, to look at
    provenance.json

Modes: ``random`` (uniform centres), ``guided`` / ``antiguided`` (centres from
:func:`stimuli.guided.guidance_density` of the variant's relevance) and ``topk`` (the most
relevant pixels, with the revealed area of a random bubbles mask of the same seed:
:func:`stimuli.guided.topk_reveal_mask`). Every mask is rebuilt from its row by
:func:`rebuild_mask`.

Examples
--------
>>> prepared = load_prepared_set("orl64", "results")                          # doctest: +SKIP
>>> images, table = render_stimuli(prepared, "random", n_bubbles=10, sigma_px=4, count=8)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from .bubbles import CentreSampler, bubbles_mask, compose, max_sensible_bubbles
from .contracts.centres import format_centres, parse_centres
from .contracts.cli import add_force, add_out, add_results, command_parser, parse_command
from .contracts.errors import InputError, cli_errors
from .contracts.outputs import atomic_output_dir, check_replaceable
from .contracts.prepared import PreparedSet, load_prepared_set, remake_command, to_uint8
from .contracts.provenance import Provenance, atomic_write_text, record_run
from .contracts.relevance import RelevanceMaps, load_relevance, relevance_path
from .guided import guidance_density, topk_reveal_mask

__all__ = ["RENDER_MODES", "mask_seed", "render_stimuli", "rebuild_mask", "contact_sheet", "render_set"]

RENDER_MODES = ("random", "guided", "antiguided", "topk")
RENDER_COMMAND = "stimuli render"  # recorded in provenance.json: only this command replaces its folders
Mode = Literal["random", "guided", "antiguided", "topk"]
RelevanceSource = Literal["image", "mean"]


def mask_seed(seed: int, k: int) -> int:
    """The seed of stimulus ``k`` of a render with master ``seed`` (stable on every machine).

    Parameters
    ----------
    seed : int
        The render's master seed.
    k : int
        The stimulus' index.

    Returns
    -------
    int
        The seed its centres are drawn with.

    Examples
    --------
    >>> mask_seed(0, 0) == mask_seed(0, 0) != mask_seed(0, 1)
    True
    """
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1)[0])


def _relevance_map(relevance: RelevanceMaps, source: RelevanceSource, stimulus_id: str,
                   cache: dict[str, Any]) -> np.ndarray:
    if source == "mean":
        if "mean map" not in cache:
            cache["mean map"] = relevance.mean_map()
        return cache["mean map"]
    return relevance.by_id(stimulus_id)


def _centre_sampler(
    prepared: PreparedSet,
    mode: Mode,
    sigma_px: float,
    relevance: RelevanceMaps | None,
    *,
    source: RelevanceSource,
    strength: float,
    region: np.ndarray | None,
    stimulus_id: str,
    cache: dict[str, Any],
) -> CentreSampler:
    """The centre sampler of one stimulus (uniform for random and topk).

    Shared samplers (uniform, set-average map) are built once; a per-image one each time,
    since face ``k`` comes back only after all the others.
    """
    key = "uniform" if mode in ("random", "topk") else ("mean" if source == "mean" else None)
    if key in cache:
        return cache[key]
    if key == "uniform":
        sampler = CentreSampler(prepared.shape, region)
    else:
        assert relevance is not None
        variant = relevance.meta.get("variant", "?")
        name = (f"mean relevance of {variant}" if source == "mean"
                else f"relevance of {stimulus_id} ({variant})")
        density = guidance_density(_relevance_map(relevance, source, stimulus_id, cache), sigma_px,
                                   strength=strength, mode=mode, region=region, shape=prepared.shape,
                                   name=name)
        sampler = CentreSampler(prepared.shape, density)
    if key is not None:
        cache[key] = sampler
    return sampler


def render_stimuli(
    prepared: PreparedSet,
    mode: Mode,
    n_bubbles: int,
    sigma_px: float,
    *,
    relevance: RelevanceMaps | None = None,
    source: RelevanceSource = "image",
    strength: float = 1.0,
    within: Literal["image", "aperture"] = "image",
    count: int | None = None,
    seed: int = 0,
    merge: Literal["sum", "prob"] = "sum",
    progress: bool = False,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Masked stimuli (count, H, W) float32 and their table (one row each).

    Parameters
    ----------
    prepared : PreparedSet
        The prepared set whose faces are masked.
    mode : {"random", "guided", "antiguided", "topk"}
        How the apertures are placed.
    n_bubbles, sigma_px : int, float
        Number and standard deviation (px) of the apertures.
    relevance : RelevanceMaps, optional
        The variant's maps on this set (guided, antiguided, topk).
    source : {"image", "mean"}
        Each face's own map or the set-average map.
    strength : float
        Guidance strength in [0, 1] (see :func:`stimuli.guided.guidance_density`).
    within : {"image", "aperture"}
        Place centres over the whole image or inside the set's face aperture.
    count : int, optional
        How many stimuli (default: one per face).
    seed : int
        Master seed; stimulus ``k`` uses :func:`mask_seed` ``(seed, k)``.
    merge : {"sum", "prob"}
        How overlapping apertures combine.
    progress : bool
        Show a progress bar.

    Returns
    -------
    images : numpy.ndarray
        (count, H, W) float32 stimuli.
    table : pandas.DataFrame
        One row per stimulus: file, stimulus_id, mode, centres, mask_seed, area_px, ...
    """
    if mode not in RENDER_MODES:
        raise InputError(f"unknown mode '{mode}' (choose {', '.join(RENDER_MODES)})")
    if source not in ("image", "mean"):
        raise InputError(f"unknown relevance source '{source}' (choose image or mean)")
    if within not in ("image", "aperture"):
        raise InputError(f"unknown sampling area '{within}' (choose image or aperture)")
    if within == "aperture" and prepared.aperture is None:
        raise InputError(f"prepared set '{prepared.name}' has no face aperture; use --within image "
                         f"or re-make it with: {remake_command(prepared, aperture=True)}")
    sigma = float(sigma_px)
    if not math.isfinite(sigma) or sigma <= 0:
        raise InputError(f"bubble sigma must be a positive number of pixels, got {sigma_px!r}")
    if int(n_bubbles) != n_bubbles or n_bubbles < 1:
        raise InputError(f"number of bubbles must be a positive integer, got {n_bubbles!r}")
    most = max_sensible_bubbles(prepared.shape, sigma)
    if n_bubbles > most:
        raise InputError(f"{n_bubbles} bubbles of sigma {sigma:g} px would open the whole "
                         f"{prepared.shape[0]}x{prepared.shape[1]} image (at most {most} are sensible)")
    if mode != "random" and relevance is None:
        raise InputError(f"mode '{mode}' needs relevance maps: give --variant")
    count = len(prepared) if count is None else int(count)
    if count < 1:
        raise InputError(f"--count {count}: render at least one stimulus")
    ids = prepared.manifest.stimulus_id.tolist()
    variant = relevance.meta.get("variant", "") if relevance is not None else ""
    region = prepared.aperture if within == "aperture" else None
    cache: dict[str, Any] = {}
    out = np.empty((count, *prepared.shape), dtype=np.float32)
    rows = []
    for k in tqdm(range(count), desc=f"render {mode}", unit="stim", disable=not progress):
        sid = ids[k % len(ids)]
        seed_k = mask_seed(seed, k)
        rng = np.random.default_rng(seed_k)
        sampler = _centre_sampler(prepared, mode, sigma, relevance, source=source, strength=strength,
                                  region=region, stimulus_id=sid, cache=cache)
        centres = sampler.sample(int(n_bubbles), rng)
        mask = bubbles_mask(prepared.shape, centres, sigma, merge=merge)
        if mode == "topk":
            # the revealed area of the random mask this seed gives; its centres are not shown
            mask = topk_reveal_mask(_relevance_map(relevance, source, sid, cache), float(mask.sum()),
                                    region=region, shape=prepared.shape, name=f"relevance of {sid} ({variant})")
            centres = np.zeros((0, 2))
        out[k] = compose(prepared.image(sid), mask, prepared.background)
        rows.append({
            "file": f"images/{k:04d}_{sid}.png", "stimulus_id": sid, "mode": mode,
            "n_bubbles": int(n_bubbles), "sigma_px": sigma, "mask_seed": seed_k,
            "centres": format_centres(centres), "area_px": round(float(mask.sum()), 3),
            "merge": merge, "within": within, "variant": variant,
            "relevance": source if mode != "random" else "",
            "strength": strength if mode in ("guided", "antiguided") else "",
        })
    return out, pd.DataFrame(rows)


def rebuild_mask(
    row: Mapping[str, Any],
    prepared: PreparedSet,
    relevance: RelevanceMaps | None = None,
) -> np.ndarray:
    """The mask of one rendered stimulus, rebuilt from its manifest row.

    Bubble modes rebuild from the stored centres; ``topk`` recomputes the reveal mask from the
    relevance and the stored ``area_px``.

    Parameters
    ----------
    row : mapping
        One row of a render's ``manifest.csv``.
    prepared : PreparedSet
        The set that was rendered.
    relevance : RelevanceMaps, optional
        The maps the render used (``topk`` needs them).

    Returns
    -------
    numpy.ndarray
        The (H, W) mask the stimulus was made with.
    """
    shape = prepared.shape
    if row["mode"] != "topk":
        return bubbles_mask(shape, parse_centres(row["centres"]), float(row["sigma_px"]),
                            merge=row.get("merge", "sum"))
    if relevance is None:
        raise InputError("a topk stimulus is rebuilt from relevance maps: pass the variant's maps")
    relevance_map = relevance.mean_map() if row.get("relevance") == "mean" else relevance.by_id(row["stimulus_id"])
    region = prepared.aperture if row.get("within") == "aperture" else None
    return topk_reveal_mask(relevance_map, float(row["area_px"]), region=region, shape=shape)


def contact_sheet(images: np.ndarray, columns: int | None = None, gap: int = 2, background: float = 1.0
                  ) -> np.ndarray:
    """Tile (N, H, W) images into one (rows*H, columns*W) image, ``gap`` px apart.

    Parameters
    ----------
    images : numpy.ndarray
        (N, H, W) images.
    columns : int, optional
        Images per row (default: about the square root of N).
    gap : int
        Pixels between images.
    background : float
        Value of the gaps.

    Returns
    -------
    numpy.ndarray
        The sheet.

    Examples
    --------
    >>> contact_sheet(np.zeros((5, 4, 4)), columns=3, gap=1).shape
    (9, 14)
    """
    images = np.asarray(images)
    n, height, width = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    sheet = np.full((rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap),
                    background, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width] = image
    return sheet


def render_set(
    stimuli: str,
    mode: Mode,
    n_bubbles: int,
    sigma_px: float,
    out: str | os.PathLike,
    *,
    variant: str | None = None,
    results: str | os.PathLike = "results",
    force: bool = False,
    command: Sequence[str] | None = None,
    sheet_max: int = 64,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Render stimuli of prepared set ``stimuli`` into folder ``out`` (all or nothing).

    Guided modes read ``<results>/relevance/<variant>/<stimuli>.npz``.

    Parameters
    ----------
    stimuli : str
        The prepared set's name.
    mode : {"random", "guided", "antiguided", "topk"}
        How apertures are placed.
    n_bubbles : int
        Apertures per stimulus.
    sigma_px : float
        Aperture standard deviation in pixels.
    out : str or path-like
        The output folder.
    variant : str, optional
        Whose relevance guides (all modes but ``random``).
    results : str or path-like
        The results root read from.
    force : bool
        Replace an earlier render's own ``out`` (moved aside).
    command : sequence of str, optional
        The command line recorded in ``provenance.json``.
    sheet_max : int
        Stimuli on the contact sheet.
    progress : bool
        Show a progress bar.
    **options
        For :func:`render_stimuli` (``count``, ``seed``, ``strength``, ``source``, ``within``,
        ``merge``).

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"output folder {out} exists already; add --force to replace it")
    check_replaceable(out, command=RENDER_COMMAND, protect=[results])  # only an earlier render's folder
    prepared = load_prepared_set(stimuli, results)
    relevance = None
    if mode != "random":
        if not variant:
            raise InputError(f"mode '{mode}' needs relevance maps: give --variant")
        relevance = load_relevance(variant, prepared.name, results, prepared=prepared)
        missing = sorted(set(prepared.manifest.stimulus_id) - set(relevance.stimulus_id))
        if missing and options.get("source", "image") == "image":
            raise InputError(f"relevance of {variant} on {prepared.name} lacks stimulus '{missing[0]}' "
                             f"({len(missing)} missing); explain the model on this set again")
    images, table = render_stimuli(prepared, mode, n_bubbles, sigma_px, relevance=relevance,
                                   progress=progress, **options)
    provenance = Provenance(
        command=list(command) if command is not None else None,
        config={"stimuli": str(stimuli), "mode": mode, "n_bubbles": n_bubbles, "sigma_px": sigma_px,
                "variant": variant, "results": str(results), **options},
        seeds={"seed": options.get("seed", 0), "mask_seeds": "numpy SeedSequence([seed, k])"},
        tool=RENDER_COMMAND)
    provenance.add_input(prepared.folder / "manifest.csv")
    if relevance is not None:
        provenance.add_input(relevance_path(variant, prepared.name, results))
    with atomic_output_dir(out, replace=force, command=RENDER_COMMAND, protect=[results]) as work:
        (work / "images").mkdir()
        for file, image in zip(table.file, images):
            Image.fromarray(to_uint8(image)).save(work / file)
        atomic_write_text(work / "manifest.csv", table.to_csv(index=False))
        sheet = contact_sheet(images[:sheet_max], background=1.0)
        Image.fromarray(to_uint8(sheet)).save(work / "contact_sheet.png")
        record_run(work, provenance)
    return out


# ---------------------------------------------------------------------------- command line

@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m stimuli render``: render into ``--out`` and print that folder.

    Bad input ends in one line on stderr and exit status 2 (:func:`~stimuli.contracts.errors.cli_errors`).
    """
    args, command = parse_command(build_parser(), argv)
    print(render_set(
        args.stimuli, args.mode, args.n_bubbles, args.sigma, args.out, variant=args.variant,
        results=args.results, force=args.force, command=command,
        count=args.count, seed=args.seed, strength=args.strength, source=args.relevance,
        within=args.within, merge=args.merge))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m stimuli render`` (shared ones from :mod:`stimuli.contracts.cli`)."""
    parser = command_parser("stimuli", "render", "Mask the faces of a prepared set and write images/, manifest.csv, "
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
    add_out(parser, required=True, what="the output folder of the rendered stimuli")
    add_results(parser)
    add_force(parser)
    return parser
