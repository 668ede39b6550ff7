"""Prepared stimulus sets: the pixel grid everything else is aligned to.

A prepared set lives in ``<results>/stimuli/<set>/``::

    manifest.csv      stimulus_id, file, identity, gender, source (+ the face table's extra columns)
    images/*.png      8-bit grey PNGs, all of one size
    set.json          size [H, W], background (0..1), aperture file or null, how it was made,
                      content_sha256 (the set's content hash, below)
    aperture.png      optional face aperture (white = face), same size
    <name>.png        optional further masks (e.g. region.png of a synthetic set), listed in set.json
    provenance.json

:func:`write_prepared_set` is the only writer and :func:`load_prepared_set` the only reader.

The **content hash** (:mod:`stimuli.contracts.set_hash`, :attr:`PreparedSet.content_hash`) is a SHA-256
over the set's parameters (``set.json`` but its name and the hash itself), ``manifest.csv``
and the decoded pixels of every image and mask. Sessions record it in their sidecar
(``StimulusSet.content_sha256``) and relevance files in their meta (``stimulus_set_sha256``),
so a session resumed, a session analysed or a relevance map used on a set that changed
since (re-prepared with ``--force``, or edited by hand) is refused. A set whose files no
longer give the hash recorded in its ``set.json`` is refused when the hash is asked for.

Examples
--------
>>> stim = load_prepared_set("orl64", results="results")      # doctest: +SKIP
>>> stim.images.shape, stim.background                       # doctest: +SKIP
((400, 64, 64), 0.5)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..faces import read_image
from .errors import InputError
from .outputs import atomic_output_dir
from .provenance import Provenance, atomic_write_json, record_run
from .set_hash import CONTENT_HASH_KEY, set_content_hash

__all__ = [
    "MANIFEST_COLUMNS",
    "PreparedSet",
    "prepared_set_dir",
    "new_set_dir",
    "prepare_command",
    "remake_command",
    "write_prepared_set",
    "load_prepared_set",
    "to_uint8",
]

MANIFEST_COLUMNS = ("stimulus_id", "file", "identity", "gender", "source")


def prepared_set_dir(name: str, results: str | os.PathLike = "results") -> Path:
    """The folder of prepared set ``name``: ``<results>/stimuli/<name>``.

    Parameters
    ----------
    name : str
        The set's name.
    results : str or path-like
        The results root.

    Returns
    -------
    Path
        The folder (it need not exist).

    Examples
    --------
    >>> prepared_set_dir("orl64").as_posix()
    'results/stimuli/orl64'
    """
    return Path(results) / "stimuli" / name


def new_set_dir(name: str, results: str | os.PathLike = "results", *, force: bool = False) -> Path:
    """The folder a command that makes set ``name`` writes, after checking the name and that it is free.

    Parameters
    ----------
    name : str
        The set's name: letters, digits, ``_``, ``-``, ``.`` (not starting with ``_-.``).
    results : str or path-like
        The results root.
    force : bool
        Whether an existing set may be replaced (the writer moves it aside).

    Returns
    -------
    Path
        ``<results>/stimuli/<name>``.

    Raises
    ------
    InputError
        A bad name, or an existing set without ``force``.

    Examples
    --------
    >>> new_set_dir("bad/name")
    Traceback (most recent call last):
    ...
    stimuli.contracts.errors.InputError: --name 'bad/name': a set name is letters, digits, '_', '-', '.'
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(name)):
        raise InputError(f"--name '{name}': a set name is letters, digits, '_', '-', '.'")
    folder = prepared_set_dir(name, results)
    if folder.exists() and not force:
        raise InputError(f"prepared set {folder} exists already; add --force to replace it")
    return folder


def prepare_command(name: str, results: str | os.PathLike = "results", faces: str = "orl",
                    size: int | None = None, *, aperture: bool = False) -> str:
    """The exact command that makes a missing prepared set (for error messages).

    The size defaults to the number a set's name ends with (``orl64`` -> 64), else 128;
    ``aperture`` adds ``--aperture`` (the set a task that samples inside the face needs).

    Parameters
    ----------
    name : str
        The set's name.
    results : str or path-like
        The results root (``--out`` when it is not ``results``).
    faces : str
        The face set to prepare.
    size : int, optional
        The stimulus side.
    aperture : bool
        Whether to add ``--aperture``.

    Returns
    -------
    str
        A ``python -m stimuli prepare ...`` command line.

    Examples
    --------
    >>> prepare_command("orl128", aperture=True)
    'python -m stimuli prepare --faces orl --size 128 --name orl128 --aperture'
    """
    if size is None:
        digits = re.search(r"(\d+)$", name)
        size = int(digits.group(1)) if digits and 16 <= int(digits.group(1)) <= 1024 else 128
    out = "" if str(results) == "results" else f" --out {shlex.quote(str(results))}"
    flags = " --aperture" if aperture else ""
    return f"python -m stimuli prepare --faces {shlex.quote(faces)} --size {size} --name {shlex.quote(name)}{flags}{out}"


def remake_command(prepared: PreparedSet, *, aperture: bool = False) -> str:
    """The command that re-makes an existing set in place: the one recorded in its provenance.

    Its own ``provenance.json`` command when ``stimuli prepare`` made it (same faces, framing,
    equalisation), else one built from ``set.json``; with ``--aperture`` added when ``aperture``
    is asked and the set has none, and ``--force`` (the old set is moved aside, never deleted).

    Parameters
    ----------
    prepared : PreparedSet
        The set.
    aperture : bool
        Whether the re-made set must have a face aperture.

    Returns
    -------
    str
        A ``python -m stimuli prepare ... --force`` command line.
    """
    command: list[str] | None = None
    with contextlib.suppress(OSError, ValueError):
        record = json.loads((prepared.folder / "provenance.json").read_text())
        recorded = record.get("command") if isinstance(record, dict) else None
        if (isinstance(recorded, list) and recorded[1:4] == ["-m", "stimuli", "prepare"]
                and all(isinstance(a, str) for a in recorded)):
            command = ["python", *recorded[1:]]
    if command is None:
        info = prepared.info
        faces = info.get("faces") if isinstance(info.get("faces"), str) else "orl"
        text = prepare_command(prepared.name, prepared.folder.parent.parent, faces, prepared.shape[0],
                               aperture=bool(info.get("aperture")))
        command = shlex.split(text)
    if aperture and "--aperture" not in command:
        command.append("--aperture")
    if "--force" not in command:
        command.append("--force")
    return shlex.join(command)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float image to 8-bit, rounding to nearest.

    Parameters
    ----------
    image : numpy.ndarray
        Values in [0, 1] (clipped).

    Returns
    -------
    numpy.ndarray
        uint8 values.

    Examples
    --------
    >>> to_uint8(np.array([0.0, 0.5, 1.0]))
    array([  0, 128, 255], dtype=uint8)
    """
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class PreparedSet:
    """A prepared stimulus set, read from its folder; images load on first use.

    Made by :func:`load_prepared_set`.

    Parameters
    ----------
    name : str
        The set's name.
    folder : Path
        Its folder.
    manifest : pandas.DataFrame
        ``manifest.csv``, one row per stimulus.
    info : dict
        ``set.json``.
    """

    name: str
    folder: Path
    manifest: pd.DataFrame
    info: dict[str, Any] = field(repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        height, width = self.info["size"]
        return int(height), int(width)

    @property
    def background(self) -> float:
        return float(self.info["background"])

    def __len__(self) -> int:
        return len(self.manifest)

    @cached_property
    def images(self) -> np.ndarray:
        """All stimuli as float32 (N, H, W) in [0, 1], in manifest order (held in memory: for
        large sets read batches with :meth:`read_images`)."""
        return self.read_images(range(len(self)))

    def read_images(self, rows: Sequence[int] | range | np.ndarray) -> np.ndarray:
        """Stimuli ``rows`` (manifest positions) as float32 (k, H, W), decoded now (or sliced from
        :attr:`images` once that is loaded): a batch of a large set without the rest."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if "images" in self.__dict__:
            return self.__dict__["images"][rows]
        stack = np.empty((len(rows), *self.shape), dtype=np.float32)
        files = self.manifest.file.to_numpy()
        for i, row in enumerate(rows):
            file = files[row]
            image = read_image(self.folder / file)
            if image.shape != self.shape:
                raise InputError(f"{self.folder / file}: size {image.shape} differs from the set's {self.shape}")
            stack[i] = image
        return stack

    @cached_property
    def aperture(self) -> np.ndarray | None:
        """The face aperture as a boolean (H, W) map, or None when the set has none."""
        file = self.info.get("aperture")
        if not file:
            return None
        return read_image(self.folder / file) > 0.5

    def mask(self, name: str) -> np.ndarray:
        """A named boolean (H, W) mask stored with the set (e.g. ``"region"`` of a synthetic set)."""
        file = self.info.get("masks", {}).get(name)
        if not file:
            raise InputError(f"prepared set '{self.name}' has no '{name}' mask "
                             f"(it has: {', '.join(self.info.get('masks', {})) or 'none'})")
        return read_image(self.folder / file) > 0.5

    @cached_property
    def index(self) -> dict[str, int]:
        return {sid: i for i, sid in enumerate(self.manifest.stimulus_id)}

    def index_of(self, stimulus_id: str) -> int:
        try:
            return self.index[str(stimulus_id)]
        except KeyError:
            raise InputError(f"stimulus '{stimulus_id}' is not in prepared set '{self.name}'") from None

    def image(self, stimulus_id: str) -> np.ndarray:
        return self.read_images([self.index_of(stimulus_id)])[0]

    def mean_face(self, batch: int = 256) -> np.ndarray:
        """The mean of all stimuli, read ``batch`` images at a time."""
        if "images" in self.__dict__:
            return self.__dict__["images"].mean(axis=0)
        total = np.zeros(self.shape, dtype=np.float64)
        for start in range(0, len(self), batch):
            total += self.read_images(range(start, min(start + batch, len(self)))).sum(axis=0)
        return (total / max(len(self), 1)).astype(np.float32)

    @cached_property
    def content_hash(self) -> str:
        """The set's content hash (:func:`set_content_hash`), checked against ``set.json``'s.

        A set whose files no longer give the hash recorded when it was prepared is an
        InputError holding the command that re-makes it. Sets prepared before hashes were
        recorded have none to check; their hash is computed all the same.
        """
        computed = set_content_hash(self.folder, self.info, self.manifest)
        recorded = self.info.get(CONTENT_HASH_KEY)
        if recorded and recorded != computed:
            raise InputError(f"prepared set '{self.name}' ({self.folder}) was altered after it was prepared "
                             f"(its files give content hash {computed[:12]}, set.json records "
                             f"{str(recorded)[:12]}); re-make it with: {remake_command(self)}")
        return computed


def write_prepared_set(
    folder: str | os.PathLike,
    images: np.ndarray,
    manifest: pd.DataFrame,
    *,
    background: float,
    aperture: np.ndarray | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
    info: Mapping[str, Any] | None = None,
    provenance: Provenance | None = None,
    replace: bool = False,
) -> Path:
    """Write a prepared set all-or-nothing (a crash leaves no folder behind).

    Parameters
    ----------
    folder : str or path-like
        The set's folder (:func:`new_set_dir`).
    images : numpy.ndarray or iterable
        (N, H, W) in [0, 1]: an array, or any object with ``shape`` whose iteration yields the
        (H, W) images one at a time (a large set then never sits in memory).
    manifest : pandas.DataFrame
        One row per image with at least ``stimulus_id``, ``identity``, ``gender`` and
        ``source`` (``file`` is filled in here).
    background : float
        The grey outside the face, in [0, 1].
    aperture : numpy.ndarray, optional
        The boolean (H, W) face aperture, saved as ``aperture.png``.
    masks : mapping of str to numpy.ndarray, optional
        Further boolean (H, W) maps saved as ``<name>.png`` and listed in set.json under
        ``masks`` (read back with :meth:`PreparedSet.mask`).
    info : mapping, optional
        More entries of ``set.json``.
    provenance : Provenance, optional
        The run's record (default: one of the running command).
    replace : bool
        Whether an existing set made by the same command is replaced (moved aside).

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    if not hasattr(images, "shape"):
        images = np.asarray(images)
    shape = tuple(images.shape)
    if len(shape) != 3 or len(images) != len(manifest):
        raise InputError(f"{folder}: need (N, H, W) images matching {len(manifest)} manifest rows, got {shape}")
    manifest = manifest.copy().reset_index(drop=True)
    missing = [c for c in MANIFEST_COLUMNS if c != "file" and c not in manifest.columns]
    if missing:
        raise InputError(f"{folder}: manifest lacks column(s) {', '.join(missing)}")
    ids = manifest.stimulus_id.astype(str)
    if ids.duplicated().any():
        raise InputError(f"{folder}: duplicate stimulus_id '{ids[ids.duplicated()].iloc[0]}'")
    bad = ids[~ids.str.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*")]
    if len(bad):
        raise InputError(f"{folder}: stimulus_id '{bad.iloc[0]}' must be letters, digits, '_', '-', '.'")
    manifest["file"] = [f"images/{sid}.png" for sid in ids]
    order = list(MANIFEST_COLUMNS) + [c for c in manifest.columns if c not in MANIFEST_COLUMNS]
    meta = {
        "name": folder.name,
        "size": [int(shape[1]), int(shape[2])],
        "background": float(background),
        "aperture": "aperture.png" if aperture is not None else None,
        **dict(info or {}),
    }
    masks = dict(masks or {})
    for key, value in masks.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", key) or key in ("aperture", "contact_sheet"):
            raise InputError(f"{folder}: mask name '{key}' must be letters, digits, '_' or '-' "
                             "(and not 'aperture')")
        if np.shape(value) != shape[1:]:
            raise InputError(f"{folder}: mask '{key}' has shape {np.shape(value)}, the images {shape[1:]}")
    if masks:
        meta["masks"] = {key: f"{key}.png" for key in masks}
    provenance = provenance or Provenance()
    # only the command that made the set may replace it (e.g. `stimuli prepare --force`)
    with atomic_output_dir(folder, replace=replace, command=provenance.tool,
                           protect=[folder.parent.parent]) as work:
        (work / "images").mkdir()
        for file, image in zip(manifest.file, images):  # one image at a time: a lazy stack streams
            image = np.asarray(image)
            if image.shape != shape[1:] or not np.isfinite(image).all():
                raise InputError(f"{folder}: image for {file} has shape {image.shape} or NaN or infinite values")
            Image.fromarray(to_uint8(image)).save(work / file)
        if aperture is not None:
            Image.fromarray(np.where(np.asarray(aperture, bool), 255, 0).astype(np.uint8)).save(
                work / "aperture.png")
        for key, value in masks.items():
            Image.fromarray(np.where(np.asarray(value, bool), 255, 0).astype(np.uint8)).save(work / f"{key}.png")
        manifest[order].to_csv(work / "manifest.csv", index=False)
        meta[CONTENT_HASH_KEY] = set_content_hash(work, meta, manifest)
        atomic_write_json(work / "set.json", meta)
        record_run(work, provenance)
    return folder


def load_prepared_set(name: str | os.PathLike, results: str | os.PathLike = "results", *,
                      aperture: bool = False) -> PreparedSet:
    """Read prepared set ``name`` from ``<results>/stimuli/`` (or a folder path).

    A set that does not exist is an InputError holding the command that makes it (with
    ``--aperture`` when the caller needs the face aperture: ``aperture=True``).

    Parameters
    ----------
    name : str or path-like
        The set's name, or its folder.
    results : str or path-like
        The results root.
    aperture : bool
        Whether the caller needs the face aperture (then the command in the not-found
        error adds ``--aperture``).

    Returns
    -------
    PreparedSet
        The set (images load on first use).
    """
    folder = Path(name)
    if not (folder / "manifest.csv").is_file():
        folder = prepared_set_dir(str(name), results)
    if not (folder / "manifest.csv").is_file():
        raise InputError(
            f"prepared stimulus set '{name}' not found in {prepared_set_dir(str(name), results).parent}; "
            f"make it with: {prepare_command(Path(str(name)).name, results, aperture=aperture)}"
        )
    try:
        info = json.loads((folder / "set.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{folder / 'set.json'}: unreadable ({error})") from None
    manifest = pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise InputError(f"{folder / 'manifest.csv'}: missing column(s) {', '.join(missing)}")
    for key in ("size", "background"):
        if key not in info:
            raise InputError(f"{folder / 'set.json'}: missing key '{key}'")
    return PreparedSet(folder.name, folder, manifest, info)
