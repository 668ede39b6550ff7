"""Training data from a prepared stimulus set: labels, the saved split, epoch order, augmentation.

Models train on the prepared set itself (``stimuli.contracts.prepared``), so they see exactly the pixels
people and model observers see. The split comes from ``stimuli.faces.make_split`` with the
grid's split seed; the variant seed drives the order of each epoch, class-balanced sampling
and augmentation, all drawn per epoch from ``(seed, epoch)`` so a resumed run draws the same.

Examples
--------
>>> order = epoch_plan(np.array([0, 0, 1]), seed=0, epoch=0, balance="none")
>>> sorted(order.order.tolist())
[0, 1, 2]
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from stimuli.contracts.prepared import PreparedSet, load_prepared_set
from stimuli.faces import make_split

__all__ = ["TrainData", "load_train_data", "class_weights", "EpochPlan", "epoch_plan",
           "augment_batch", "torch_seed"]


@dataclass(frozen=True)
class TrainData:
    """Stimuli, labels and split of one variant.

    Parameters
    ----------
    stimuli : PreparedSet
        The prepared set the variant trains on.
    split : pandas.DataFrame
        Manifest rows with ``split`` and ``label`` (saved as ``split.csv``).
    labels : numpy.ndarray
        (N,) int64 class indices, manifest order.
    classes : list of str
        The classes, in index order.
    index : dict of str to numpy.ndarray
        Split name -> manifest row indices.
    """

    stimuli: PreparedSet
    split: pd.DataFrame  # manifest rows + split, label (saved as split.csv)
    labels: np.ndarray  # (N,) int64, manifest order
    classes: list[str]
    index: dict[str, np.ndarray]  # split name -> manifest row indices

    @property
    def images(self) -> np.ndarray:
        return self.stimuli.images


def load_train_data(stimuli: str, results: str | os.PathLike, task: str, *, kind: str,
                    fractions: list[float], seed: int) -> TrainData:
    """Load prepared set ``stimuli`` and split it for ``task``.

    Parameters
    ----------
    stimuli : str
        The prepared set (missing: InputError with the ``python -m stimuli prepare`` command).
    results : str or os.PathLike
        The results root.
    task : str
        ``gender`` or ``identity``.
    kind : str
        The split kind (by image or by identity).
    fractions : list of float
        Train, validation and test shares.
    seed : int
        Seed of the split.

    Returns
    -------
    TrainData
        The set, its labels and split.
    """
    stim = load_prepared_set(stimuli, results)
    manifest = stim.manifest.copy()
    manifest.attrs["name"] = stim.name
    split = make_split(manifest, task, kind=kind, fractions=tuple(fractions), seed=seed)
    index = {name: np.flatnonzero(split.split.to_numpy() == name) for name in ("train", "val", "test")}
    labels = np.array(split.label, dtype=np.int64)  # a writable copy (torch shares its memory)
    return TrainData(stim, split, labels, list(split.attrs["classes"]), index)


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``n / (C * count)`` (1 for every class when balanced).

    Parameters
    ----------
    labels : numpy.ndarray
        The class index of every training image.
    num_classes : int
        Classes of the output layer (absent ones weigh 0).

    Returns
    -------
    numpy.ndarray
        One weight per class.

    Examples
    --------
    >>> class_weights(np.array([0, 0, 0, 1]), 2).tolist()
    [0.6666666666666666, 2.0]
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights


@dataclass(frozen=True)
class EpochPlan:
    """One epoch's draws: positions into the training set, flips and shifts per position.

    Parameters
    ----------
    order : numpy.ndarray
        (n,) positions into the train index.
    flips : numpy.ndarray
        (n,) bool.
    shifts : numpy.ndarray
        (n, 2) int, rows and columns in model-input pixels.
    """

    order: np.ndarray  # (n,) positions into the train index
    flips: np.ndarray  # (n,) bool
    shifts: np.ndarray  # (n, 2) int, rows and columns in model-input pixels


def epoch_plan(train_labels: np.ndarray, *, seed: int, epoch: int, balance: str = "none",
               hflip: bool = False, max_shift_px: int = 0) -> EpochPlan:
    """The order and augmentation of one epoch, drawn from ``(seed, epoch)`` only.

    ``balance="sampler"`` draws ``n`` positions with replacement, each class equally likely;
    otherwise it is a permutation.

    Parameters
    ----------
    train_labels : numpy.ndarray
        Labels of the training images.
    seed, epoch : int
        What the draws come from.
    balance : str
        ``sampler`` or anything else (a permutation).
    hflip : bool
        Draw horizontal flips.
    max_shift_px : int
        Largest shift in model-input pixels (0: none).

    Returns
    -------
    EpochPlan
        The epoch's draws.
    """
    rng = np.random.default_rng([seed, epoch, 0x5EED])
    n = len(train_labels)
    if balance == "sampler":
        counts = np.bincount(train_labels)
        p = 1.0 / counts[train_labels]
        order = rng.choice(n, size=n, replace=True, p=p / p.sum())
    else:
        order = rng.permutation(n)
    flips = rng.random(n) < 0.5 if hflip else np.zeros(n, dtype=bool)
    shifts = (rng.integers(-max_shift_px, max_shift_px + 1, size=(n, 2)) if max_shift_px
              else np.zeros((n, 2), dtype=np.int64))
    return EpochPlan(order, flips, shifts)


def torch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """Seed of torch's generator (dropout) for one epoch on one process.

    Parameters
    ----------
    seed, epoch : int
        The variant seed and the epoch.
    rank : int
        The process's rank.

    Returns
    -------
    int
        A 63-bit seed.
    """
    return int(np.random.SeedSequence([seed, epoch, rank, 0xD0]).generate_state(1, np.uint64)[0] >> 1)


def augment_batch(grey: torch.Tensor, flips: np.ndarray, shifts: np.ndarray, background: float) -> torch.Tensor:
    """Mirror and translate grey (B, S, S) images; uncovered pixels take the set's background.

    Parameters
    ----------
    grey : torch.Tensor
        The batch (B, S, S).
    flips : numpy.ndarray
        (B,) bool.
    shifts : numpy.ndarray
        (B, 2) rows and columns.
    background : float
        The set's background grey.

    Returns
    -------
    torch.Tensor
        The augmented batch.
    """
    if flips.any():
        grey = grey.clone()
        which = torch.as_tensor(np.flatnonzero(flips), device=grey.device)
        grey[which] = torch.flip(grey[which], dims=(-1,))
    if np.any(shifts):
        m = int(np.abs(shifts).max())
        size = grey.shape[-1]
        padded = torch.nn.functional.pad(grey, (m, m, m, m), value=float(background))
        grey = torch.stack([padded[i, m - dy:m - dy + size, m - dx:m - dx + size]
                            for i, (dy, dx) in enumerate(shifts.tolist())])
    return grey
