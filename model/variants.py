"""Trained variants on disk: their folders, and loading one for inference.

``<results>/models/<variant>/`` holds ``model.pt`` (a state_dict, read with
``weights_only=True``), ``config.yaml`` (the resolved :class:`model.config.VariantConfig`),
``metrics.json``, ``split.csv`` and ``provenance.json``. The folder appears all at once when
training ends; an interrupted run keeps its checkpoint in ``<results>/models/.<variant>.resume/``.

The config is part of the model: ``provenance.json`` records the SHA-256 of ``config.yaml``
and ``model.pt`` (``variant_files``), and :func:`load_variant` (the one loader of the model
observer, explain, evaluate, rdm and sanity) refuses a variant whose config or weights
changed since training. Variants trained before the hashes were recorded load with a
warning line on stderr.

Examples
--------
>>> variant = load_variant("vgg16-imagenet-gender-s0", results="results")    # doctest: +SKIP
>>> variant.classes, variant.input_size                                      # doctest: +SKIP
(['female', 'male'], 64)
>>> variant.predict_logits(stimuli.images).shape                            # doctest: +SKIP
(400, 2)
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

from stimuli.contracts.config import from_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import PreparedSet
from stimuli.contracts.provenance import file_sha256
from stimuli.contracts.variants import VariantName, parse_variant_name

from .architecture import build_vgg16
from .config import VariantConfig, expand_grid, load_grid
from .device import autocast, select_device
from .preprocess import to_model_input
from .weights import check_compatible, read_state_dict

__all__ = [
    "models_dir",
    "variant_dir",
    "resume_dir",
    "is_trained",
    "packaged_configs",
    "find_config",
    "train_command",
    "read_variant_config",
    "VARIANT_FILES",
    "variant_file_hashes",
    "check_variant_files",
    "LoadedVariant",
    "load_variant",
    "held_out",
]

_FILES = ("model.pt", "config.yaml", "metrics.json", "provenance.json")
VARIANT_FILES = ("config.yaml", "model.pt")  # hashed at training, checked at every load
_unhashed_warned: set[str] = set()


def models_dir(results: str | os.PathLike = "results") -> Path:
    """Where variants live: ``<results>/models``.

    Parameters
    ----------
    results : str or os.PathLike
        The results root.

    Returns
    -------
    Path
        The models folder, ``<results>/models`` (it may not exist yet).

    Examples
    --------
    >>> models_dir("out").as_posix()
    'out/models'
    """
    return Path(results) / "models"


def variant_dir(name: str, results: str | os.PathLike = "results") -> Path:
    """A variant's folder: ``<results>/models/<name>``.

    Parameters
    ----------
    name : str
        The variant name.
    results : str or os.PathLike
        The results root.

    Returns
    -------
    Path
        The folder (it may not exist yet).
    """
    return models_dir(results) / name


def resume_dir(name: str, results: str | os.PathLike = "results") -> Path:
    """Where an unfinished run keeps its checkpoint (hidden, so listings show finished variants).

    Parameters
    ----------
    name, results
        As :func:`variant_dir`.

    Returns
    -------
    Path
        ``<results>/models/.<name>.resume``.
    """
    return models_dir(results) / f".{name}.resume"


def is_trained(name: str, results: str | os.PathLike = "results") -> bool:
    """Whether the variant's folder holds every file a finished training writes.

    Parameters
    ----------
    name, results
        The variant and the results root (:func:`variant_dir`).

    Returns
    -------
    bool
        True when ``model.pt``, ``config.yaml``, ``metrics.json`` and ``provenance.json`` are there.
    """
    folder = variant_dir(name, results)
    return all((folder / f).is_file() for f in _FILES)


def packaged_configs() -> list[Path]:
    """The grid YAMLs shipped in ``model/configs``.

    Returns
    -------
    list of Path
        Sorted paths (empty when the folder is missing).
    """
    folder = Path(str(resources.files("model") / "configs"))
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


@cache
def _grid_names(path: str) -> tuple[str, ...]:
    try:
        return tuple(v.variant for v in expand_grid(load_grid(path), path))
    except InputError:
        return ()


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def find_config(variant: str) -> str | None:
    """The packaged grid YAML that makes ``variant`` (as a path to type), if any.

    Parameters
    ----------
    variant : str
        A variant of some packaged grid, or not.

    Returns
    -------
    str or None
        The path, relative to the working folder when it lies below it; None if no grid has it.
    """
    for path in packaged_configs():
        if variant in _grid_names(str(path)):
            return _shown(path)
    return None


def train_command(variant: str, results: str | os.PathLike = "results", config: str | None = None) -> str:
    """The exact command that trains ``variant`` (for error messages).

    Parameters
    ----------
    variant : str
        The variant name.
    results : str or os.PathLike
        The results root (``--out`` is added when it is not ``results``).
    config : str, optional
        The grid YAML (default: the packaged grid that makes it, else ``CONFIG.yaml``).

    Returns
    -------
    str
        ``python -m model train CONFIG --only VARIANT [--out DIR]``.
    """
    config = config or find_config(variant) or "CONFIG.yaml"
    out = "" if str(results) == "results" else f" --out {results}"
    return f"python -m model train {config} --only {variant}{out}"


def read_variant_config(folder: str | os.PathLike) -> VariantConfig:
    """A variant folder's ``config.yaml``, validated.

    Parameters
    ----------
    folder : str or os.PathLike
        The variant folder, ``<results>/models/<variant>``.

    Returns
    -------
    VariantConfig
        The resolved config the variant was trained with (InputError when unreadable).
    """
    path = Path(folder) / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:  # not UTF-8: one line too
        raise InputError(f"{path}: unreadable ({str(error).splitlines()[0]})") from None
    return from_dict(VariantConfig, data if isinstance(data, dict) else {}, str(path))


def variant_file_hashes(folder: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of a variant folder's ``config.yaml`` and ``model.pt`` (what training records).

    Parameters
    ----------
    folder : str or os.PathLike
        A variant folder (finished or being written).

    Returns
    -------
    dict of str to str
        File name -> hex digest.
    """
    return {name: file_sha256(Path(folder) / name) for name in VARIANT_FILES}


def check_variant_files(folder: str | os.PathLike, names: tuple[str, ...] = VARIANT_FILES) -> None:
    """Refuse (InputError, one line) a variant whose ``names`` files changed since training.

    Compares them with the hashes ``provenance.json`` recorded (``variant_files``). A variant
    trained before hashes were recorded passes with one warning line on stderr.

    Parameters
    ----------
    folder : str or os.PathLike
        The variant folder.
    names : tuple of str
        Which of its files to check (default: ``config.yaml`` and ``model.pt``).

    Examples
    --------
    >>> check_variant_files("results/models/vgg16-imagenet-gender-s0")   # doctest: +SKIP
    """
    folder = Path(folder)
    try:
        recorded = json.loads((folder / "provenance.json").read_text()).get("variant_files")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if not isinstance(recorded, dict):
        if str(folder) not in _unhashed_warned:
            _unhashed_warned.add(str(folder))
            print(f"warning: {folder}: provenance.json records no hashes of config.yaml and model.pt (trained "
                  "before they were recorded), so changes to them cannot be detected; retrain to record them",
                  file=sys.stderr)
        return
    for name in names:
        if name in recorded and file_sha256(folder / name) != recorded[name]:
            raise InputError(f"{folder / name}: changed since the variant was trained (its SHA-256 differs from "
                             f"the one in provenance.json); a variant's {name} is part of the model: restore "
                             f"it, or retrain the variant (move its folder away first)")


@dataclass
class LoadedVariant:
    """A trained variant ready for inference: ``net`` in eval mode on ``device``.

    Parameters
    ----------
    net : torch.nn.Module
        The network, in eval mode.
    spec : VariantName
        The parsed variant name.
    config : dict
        Its ``config.yaml``.
    classes : list of str
        The output classes, in order.
    task : str
        What the output layer classifies: gender or identity.
    input_size : int
        Side of the square model input.
    device : torch.device
        Where ``net`` lives.
    folder : Path
        The variant folder.
    """

    net: nn.Module
    spec: VariantName
    config: dict[str, Any]
    classes: list[str]
    task: str  # what the output layer classifies: gender or identity
    input_size: int
    device: torch.device
    folder: Path = field(repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    def to_input(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Grey stimuli (N, H, W) in [0, 1] -> the normalised model input on ``device``."""
        return to_model_input(images, self.input_size, device=self.device)

    def predict_logits(self, images: np.ndarray | torch.Tensor, batch_size: int = 64) -> np.ndarray:
        """Logits (N, C) of grey stimuli (N, H, W) in [0, 1]."""
        images = images if torch.is_tensor(images) else np.asarray(images, dtype=np.float32)
        if images.ndim == 2:
            images = images[None]
        out = []
        with torch.no_grad(), autocast(self.device):  # AMP on CUDA only; float32 elsewhere
            for start in range(0, len(images), batch_size):
                out.append(self.net(self.to_input(images[start:start + batch_size])).float().cpu())
        if not out:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return torch.cat(out).numpy()


def load_variant(name: str, results: str | os.PathLike = "results",
                 device: str | torch.device | None = None) -> LoadedVariant:
    """Load trained variant ``name`` from ``<results>/models/`` in eval mode.

    A variant that does not exist (or is unfinished) is an InputError holding the exact
    ``python -m model train ... --only <name>`` command that makes it; one whose config or
    weights changed since training is refused (:func:`check_variant_files`).

    Parameters
    ----------
    name : str
        The variant name, e.g. ``vgg16-imagenet-gender-s0``.
    results : str or os.PathLike
        The results root.
    device : str or torch.device, optional
        Where to load it (:func:`model.device.select_device`; default: auto).

    Returns
    -------
    LoadedVariant
        The variant, ready for inference.
    """
    spec = parse_variant_name(name)
    folder = variant_dir(name, results)
    if not is_trained(name, results):
        state = "is unfinished (its checkpoint is in " + str(resume_dir(name, results)) + ")" \
            if resume_dir(name, results).is_dir() else f"is not trained ({folder} not found)"
        raise InputError(f"variant {name} {state}; train it with: {train_command(name, results)}")
    check_variant_files(folder, ("config.yaml",))  # before the config is used: classes, input size, ...
    config = read_variant_config(folder)
    if config.variant != name or not config.classes:
        raise InputError(f"{folder / 'config.yaml'}: does not describe a trained {name}")
    device = select_device(device)
    state = read_state_dict(folder / "model.pt")
    with torch.device("meta"):  # no time spent on a random init that is overwritten at once
        net = build_vgg16(len(config.classes), width=spec.width, batch_norm=spec.batch_norm,
                          dropout=config.train.dropout)
    check_compatible(net.state_dict(), state, where=str(folder / "model.pt"),
                     describe=f"{name} ({len(config.classes)} classes)")
    check_variant_files(folder, ("model.pt",))  # read safely first: a pickle or another architecture says so
    net.load_state_dict(state, strict=True, assign=True)
    net = net.to(device).eval()
    return LoadedVariant(net=net, spec=spec, config=config.as_dict(), classes=list(config.classes),
                         task=spec.label_task, input_size=config.input_size, device=device, folder=folder)


def held_out(variant: LoadedVariant, stimuli: PreparedSet, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Manifest rows of the variant's ``split`` images in ``stimuli`` and their class labels.

    The split is the one saved with the variant (``split.csv``), so every target is tested on
    images it never trained on.

    Parameters
    ----------
    variant : LoadedVariant
        A loaded variant (its folder holds ``split.csv``).
    stimuli : PreparedSet
        The prepared set the rows index.
    split : {"test", "val", "train", "all"}
        Which of the saved split's images.

    Returns
    -------
    rows : numpy.ndarray
        Row of each image in the set's manifest (int64).
    labels : numpy.ndarray
        Its class index for the variant's task (int64).
    """
    path = Path(variant.folder) / "split.csv"
    if not path.is_file():
        raise InputError(f"{path}: the variant's saved split is missing; retrain it")
    table = pd.read_csv(path, dtype={"stimulus_id": str}, keep_default_na=False)
    for column in ("stimulus_id", "split", "label"):
        if column not in table.columns:
            raise InputError(f"{path}: missing column '{column}'")
    if split != "all":
        table = table[table.split == split]
    if len(table) == 0:
        raise InputError(f"{path}: variant {variant.name} has no '{split}' images")
    rows = np.array([stimuli.index_of(sid) for sid in table.stimulus_id], dtype=np.int64)
    return rows, table.label.to_numpy(dtype=np.int64)
