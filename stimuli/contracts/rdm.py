"""Model representational dissimilarity matrices (RDMs): the file between ``model rdm`` and ``analysis``.

``<results>/rdm/<variant>/<set>.npz`` holds ``rdm`` float32 (K, N, N): K dissimilarity
matrices over the N stimuli of a prepared set (symmetric, zero diagonal), ``names`` (K,)
saying what each one is (``penultimate``, ``pool5``, ``confusion``, ``relevance``, ...),
``stimulus_id`` (N,) and ``meta`` (a JSON string: variant, set, metric, the layer behind each
name, ...). :func:`save_rdms` is the only writer and :func:`load_rdms` the only reader;
``model`` writes the files and ``analysis`` reads them without importing torch.

Examples
--------
>>> rdm = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]], dtype=float)
>>> rdms = ModelRDMs({"penultimate": check_rdm(rdm)}, np.array(["a", "b", "c"]), {"variant": "v"})
>>> rdms.subset(["c", "a"]).rdms["penultimate"]
array([[0., 2.],
       [2., 0.]])
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .provenance import atomic_save_npz

__all__ = ["ModelRDMs", "rdm_path", "rdm_command", "check_rdm", "save_rdms", "load_rdms"]


def rdm_path(variant: str, stimuli: str, results: str | os.PathLike = "results") -> Path:
    """Where the RDMs of ``variant`` over set ``stimuli`` live: ``<results>/rdm/<variant>/<set>.npz``.

    Parameters
    ----------
    variant, stimuli : str
        The variant and the prepared set's names.
    results : str or path-like
        The results root.

    Returns
    -------
    Path
        The RDM file (it need not exist yet).

    Examples
    --------
    >>> rdm_path("vgg16-imagenet-gender-s0", "orl64").as_posix()
    'results/rdm/vgg16-imagenet-gender-s0/orl64.npz'
    """
    return Path(results) / "rdm" / variant / f"{stimuli}.npz"


def rdm_command(variant: str, stimuli: str, results: str | os.PathLike = "results") -> str:
    """The exact command that makes a missing RDM file (for error messages).

    Parameters
    ----------
    variant : str
        The variant the RDMs are of.
    stimuli : str
        The set they are over.
    results : str or path-like
        Where they are looked for.

    Returns
    -------
    str
        A ``python -m model rdm ...`` command line.
    """
    out = "" if str(results) == "results" else f" --out {results}"
    return f"python -m model rdm --variant {variant} --stimuli {stimuli}{out}"


def check_rdm(rdm: Any, name: str = "RDM", *, allow_nan: bool = False, atol: float = 1e-5) -> np.ndarray:
    """A square, symmetric float64 matrix with a zero diagonal, or one InputError naming ``name``.

    ``allow_nan`` lets off-diagonal cells be NaN (pairs a human RDM has no data for).

    Parameters
    ----------
    rdm : array-like
        The (N, N) matrix.
    name : str
        What it is, for the error message.
    allow_nan : bool
        Whether off-diagonal NaN cells are allowed.
    atol : float
        Tolerance of the symmetry and zero-diagonal checks.

    Returns
    -------
    numpy.ndarray
        The matrix as float64.
    """
    array = np.asarray(rdm, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or len(array) < 2:
        raise InputError(f"{name} must be a square (N, N) matrix with N >= 2, got shape {array.shape}")
    finite = np.isfinite(array)
    if not allow_nan and not finite.all():
        raise InputError(f"{name} holds {int((~finite).sum())} NaN or infinite value(s)")
    if np.isinf(array).any():
        raise InputError(f"{name} holds infinite values")
    both = finite & finite.T
    scale = max(1.0, float(np.abs(array[finite]).max(initial=0.0)))
    if not np.allclose(array[both], array.T[both], atol=atol * scale) or (finite != finite.T).any():
        raise InputError(f"{name} is not symmetric")
    diagonal = np.diag(array)
    if not (np.isfinite(diagonal).all() and np.allclose(diagonal, 0, atol=atol * scale)):
        raise InputError(f"{name} must have a zero diagonal (a stimulus is not dissimilar to itself)")
    return array


@dataclass(frozen=True)
class ModelRDMs:
    """The RDMs of one variant over one set: ``rdms`` name -> (N, N), in file order.

    Parameters
    ----------
    rdms : dict of str to numpy.ndarray
        Each RDM by name (``penultimate``, ``pool5``, ...).
    stimulus_id : numpy.ndarray
        The (N,) stimulus ids the rows and columns stand for.
    meta : dict
        The file's meta (variant, set, metric, ...).
    """

    rdms: dict[str, np.ndarray]
    stimulus_id: np.ndarray  # (N,) str
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.stimulus_id)

    @property
    def names(self) -> list[str]:
        return list(self.rdms)

    def subset(self, stimulus_ids: Sequence[str]) -> ModelRDMs:
        """The RDMs restricted to (and ordered as) ``stimulus_ids``; a missing id is an InputError."""
        index = {s: i for i, s in enumerate(self.stimulus_id)}
        missing = [s for s in stimulus_ids if str(s) not in index]
        if missing:
            raise InputError(f"RDMs of {self.meta.get('variant', '?')} have no stimulus '{missing[0]}' "
                             f"({len(missing)} missing); were they made for another set?")
        rows = np.array([index[str(s)] for s in stimulus_ids])
        return ModelRDMs({k: v[np.ix_(rows, rows)] for k, v in self.rdms.items()},
                         np.asarray(stimulus_ids, dtype=str), dict(self.meta))


def save_rdms(path: str | os.PathLike, rdms: Mapping[str, Any], stimulus_id: Any,
              meta: Mapping[str, Any]) -> Path:
    """Write the RDM npz of the contract (atomically); every RDM is checked first.

    Parameters
    ----------
    path : str or path-like
        The file (:func:`rdm_path`).
    rdms : mapping of str to array-like
        Each (N, N) RDM by name.
    stimulus_id : array-like
        The (N,) stimulus ids.
    meta : mapping
        Variant, set, metric, layers; stored as a JSON string.

    Returns
    -------
    Path
        ``path``, written.
    """
    ids = np.asarray(stimulus_id, dtype=str)
    if ids.ndim != 1 or len(set(ids)) != len(ids):
        raise InputError(f"{path}: stimulus_id must be a list of unique ids")
    if not rdms:
        raise InputError(f"{path}: no RDM to write")
    stack = []
    for name, rdm in rdms.items():
        array = check_rdm(rdm, f"{path}: RDM '{name}'")
        if array.shape != (len(ids), len(ids)):
            raise InputError(f"{path}: RDM '{name}' is {array.shape}, expected ({len(ids)}, {len(ids)})")
        stack.append(array.astype(np.float32))
    return atomic_save_npz(path, rdm=np.stack(stack), names=np.asarray(list(rdms), dtype=str), stimulus_id=ids,
                           meta=np.asarray(json.dumps(dict(meta))))


def load_rdms(variant: str | os.PathLike, stimuli: str | None = None,
              results: str | os.PathLike = "results") -> ModelRDMs:
    """Read a variant's RDMs by variant and set name (or one npz path as ``variant``).

    Parameters
    ----------
    variant : str or path-like
        The variant's name, or the path of an RDM file (then ``stimuli`` is None).
    stimuli : str, optional
        The prepared set's name.
    results : str or path-like
        The results root.

    Returns
    -------
    ModelRDMs
        The checked RDMs; a missing file is an InputError holding the command that makes it.
    """
    path = Path(variant) if stimuli is None else rdm_path(str(variant), stimuli, results)
    if not path.is_file():
        hint = f"; make them with: {rdm_command(str(variant), stimuli, results)}" if stimuli else ""
        raise InputError(f"model RDMs {path} not found{hint}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("rdm", "names", "stimulus_id", "meta") if k not in data.files]
            if missing:
                raise InputError(f"{path}: missing array(s) {', '.join(missing)}")
            stack, names = data["rdm"].astype(np.float64), data["names"].astype(str)
            ids, meta = data["stimulus_id"].astype(str), json.loads(str(data["meta"]))
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"{path}: not a readable RDM file ({error})") from None
    if stack.ndim != 3 or stack.shape[0] != len(names) or stack.shape[1:] != (len(ids), len(ids)):
        raise InputError(f"{path}: rdm has shape {stack.shape}, expected ({len(names)}, {len(ids)}, {len(ids)})")
    return ModelRDMs({str(n): stack[i] for i, n in enumerate(names)}, ids, meta)
