"""The content hash of a prepared stimulus set, and how a recorded set differs from a set now.

A SHA-256 over the set's parameters (``set.json`` but its name and the hash itself),
``manifest.csv`` and the decoded pixels of every image and mask. Sessions record it in their
sidecar (``StimulusSet.content_sha256``) and relevance files in their meta
(``stimulus_set_sha256``), so a session resumed, a session analysed or a relevance map used on
a set that changed since is refused (:func:`set_record_mismatch`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from .errors import InputError

__all__ = ["CONTENT_HASH_KEY", "set_content_hash", "set_record_mismatch"]

CONTENT_HASH_KEY = "content_sha256"  # in set.json and in a sidecar's StimulusSet


def _pixels(path: Path) -> tuple[str, np.ndarray]:
    """An image's mode and decoded pixels, as stored (no conversion)."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.mode, np.asarray(image)
    except FileNotFoundError:
        raise InputError(f"{path}: image file of the prepared set is missing") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(f"{path}: cannot read image ({error})") from None


def set_content_hash(folder: str | os.PathLike, info: Mapping[str, Any], manifest: pd.DataFrame) -> str:
    """SHA-256 of a prepared set's content: its parameters, manifest and pixels.

    The parameters are ``info`` (set.json) without its ``name`` and the hash itself, as
    canonical JSON; then ``manifest.csv``'s bytes; then, in manifest order, each image's
    path, mode, shape and decoded pixels, and the aperture and mask images likewise.
    Pixels, not file bytes: the same pixels saved by another PNG encoder hash the same.

    Parameters
    ----------
    folder : str or path-like
        The set's folder.
    info : mapping
        Its ``set.json``.
    manifest : pandas.DataFrame
        Its manifest.

    Returns
    -------
    str
        64 hex digits.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    params = {k: v for k, v in info.items() if k not in ("name", CONTENT_HASH_KEY)}
    digest.update(b"set.json\0" + json.dumps(params, sort_keys=True, separators=(",", ":")).encode())
    try:
        digest.update(b"manifest.csv\0" + (folder / "manifest.csv").read_bytes())
    except OSError as error:
        raise InputError(f"{folder / 'manifest.csv'}: unreadable ({error})") from None
    files = [str(f) for f in manifest["file"]]
    files += [f for f in (info.get("aperture"), *dict(info.get("masks") or {}).values()) if f]
    for file in files:
        mode, pixels = _pixels(folder / file)
        digest.update(f"\0{file}\0{mode}\0{pixels.dtype}\0{pixels.shape}\0".encode())
        digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


def set_record_mismatch(record: Mapping[str, Any] | None, prepared: Any) -> str | None:
    """Why the stimulus set a file recorded is not ``prepared``; None when it is the same.

    ``record`` is a session sidecar's ``StimulusSet`` entry (``name``, ``shape``,
    ``content_sha256``; older sidecars have only ``manifest_sha256``, which is then compared).
    The caller decides what a missing record or hash means (see :func:`stimuli.contracts.relevance.load_relevance`,
    the session engine's resume and ``analysis ci``).

    Parameters
    ----------
    record : mapping or None
        The recorded set.
    prepared : stimuli.contracts.prepared.PreparedSet
        The set as it is now.

    Returns
    -------
    str or None
        The difference in words, or None.

    Examples
    --------
    >>> set_record_mismatch({"name": "orl32", "shape": [32, 32]}, load_prepared_set("orl48"))  # doctest: +SKIP
    "it was made with stimulus set 'orl32' (32x32), not 'orl48' (48x48)"
    """
    if not isinstance(record, Mapping):
        return "it records no stimulus set"
    name, shape = record.get("name"), record.get("shape")
    grid = "x".join(str(v) for v in shape) if isinstance(shape, list) else "?"
    here = f"'{prepared.name}' ({prepared.shape[0]}x{prepared.shape[1]})"
    if name != prepared.name or (shape is not None and list(shape) != list(prepared.shape)):
        return f"it was made with stimulus set '{name}' ({grid}), not {here}"
    recorded = record.get(CONTENT_HASH_KEY)
    if recorded:
        if recorded != prepared.content_hash:
            return (f"stimulus set {here} changed since (content hash {str(recorded)[:12]} then, "
                    f"{prepared.content_hash[:12]} now)")
        return None
    manifest = record.get("manifest_sha256")
    if manifest and manifest != hashlib.sha256((prepared.folder / "manifest.csv").read_bytes()).hexdigest():
        return f"the manifest of stimulus set {here} changed since"
    return None
