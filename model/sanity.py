"""Sanity checks for relevance maps (Adebayo et al., 2018, "Sanity checks for saliency maps").

* **Cascading model-parameter randomisation**: re-initialise the layers of a trained variant one
  at a time from the top (output layer first) down to the first convolution, cumulatively, and
  after each step compare the maps with the trained model's maps.
* **Data randomisation**: train the variant's own recipe again on training labels shuffled
  among the training images, and compare that model's maps with the trained model's.

A map method that explains the model must give different maps once the model is destroyed.

The same re-initialisation makes the *baselines* of the map-similarity findings
(:func:`baseline_network`): ``untrained`` re-initialises only the layers the variant trained
(its trainable part, e.g. conv block 5 and the FC layers) and leaves them untrained, so two
variants' baselines share everything but training; ``random`` re-initialises every layer (the
cascade's last step). ``python -m model explain --baseline KIND`` writes their maps next to the
variant's own (``<set>.baseline-<kind>.npz``, :func:`stimuli.contracts.relevance.baseline_set`).
Similarity per step is reported as Spearman rank correlation (of the maps and of their absolute
values) and SSIM of the absolute maps scaled to [0, 1], each averaged over images, in a tidy
table. Re-initialisation uses torchvision's own VGG init (:func:`model.architecture.
init_like_torchvision`) from a fixed seed; the trained model itself is never touched (a copy is
randomised).

Examples
--------
>>> a = np.random.default_rng(0).random((3, 16, 16))
>>> compare_maps(a, a)[["spearman", "ssim"]].round(6).to_numpy().tolist()
[[1.0, 1.0]]
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr
from torch import nn
from tqdm.auto import tqdm

from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.relevance import BASELINE_KINDS

from .architecture import first_trainable, flat_layers, init_like_torchvision
from .data import load_train_data
from .lrp import explain_images
from .trainer import RunState, Trainer, initial_network
from .variants import LoadedVariant, held_out, read_variant_config

__all__ = ["ssim", "compare_maps", "randomisation_order", "cascading_randomisation",
           "random_label_network", "sanity_checks", "trained_layers", "baseline_seed", "baseline_network",
           "baseline_variant"]


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 1.0, sigma: float = 1.5) -> float:
    """Structural similarity of two (H, W) images (Wang et al., 2004), Gaussian window.

    The same definition as ``skimage.metrics.structural_similarity(a, b, data_range=...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    Parameters
    ----------
    a, b : numpy.ndarray
        The images (H, W).
    data_range : float
        The value range of the images.
    sigma : float
        The Gaussian window's sigma (px).

    Returns
    -------
    float
        The mean SSIM over the window positions inside the image.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(x):
        return gaussian_filter(x, sigma, truncate=3.5, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    pad = int(3.5 * sigma + 0.5)  # skimage crops the border where the window leaves the image
    if s.shape[0] > 2 * pad and s.shape[1] > 2 * pad:
        s = s[pad:-pad, pad:-pad]
    return float(s.mean())


def _unit_abs(m: np.ndarray) -> np.ndarray:
    m = np.abs(m)
    top = m.max()
    return m / top if top > 0 else m


def compare_maps(reference: np.ndarray, other: np.ndarray) -> pd.DataFrame:
    """Per-image Spearman (signed and absolute) and SSIM (absolute, scaled to [0, 1]), then the mean.

    Parameters
    ----------
    reference, other : numpy.ndarray
        Maps (N, H, W) of the same images.

    Returns
    -------
    pandas.DataFrame
        One row: mean ``spearman``, ``spearman_abs``, ``ssim`` and ``n_images``.
    """
    rows = []
    for a, b in zip(np.asarray(reference, np.float64), np.asarray(other, np.float64)):
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            rows.append((np.nan, np.nan, np.nan))
            continue
        rows.append((spearmanr(a.ravel(), b.ravel())[0], spearmanr(np.abs(a).ravel(), np.abs(b).ravel())[0],
                     ssim(_unit_abs(a), _unit_abs(b))))
    per_image = pd.DataFrame(rows, columns=["spearman", "spearman_abs", "ssim"])
    return per_image.mean().to_frame().T.assign(n_images=len(per_image))


def randomisation_order(net: nn.Module) -> list[str]:
    """Names of the layers with weights, output layer first (the cascade's order).

    Parameters
    ----------
    net : torch.nn.Module
        The network.

    Returns
    -------
    list of str
        Module names of its convolutions and linear layers, last first.
    """
    names = [name for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return names[::-1]


def _reinitialise(net: nn.Module, layer: str, seed: int) -> None:
    """torchvision's init for one layer (and the batch norm right after it), from a fixed seed."""
    modules = dict(net.named_modules())
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        init_like_torchvision(modules[layer])
        parent, _, index = layer.rpartition(".")
        if parent and index.isdigit() and isinstance(modules[parent], nn.Sequential):
            seq = modules[parent]
            following = int(index) + 1
            if following < len(seq) and isinstance(seq[following], nn.BatchNorm2d):
                seq[following].reset_running_stats()
                init_like_torchvision(seq[following])


def trained_layers(net: nn.Module, trainable: str) -> list[str]:
    """Names of the weight layers (conv, linear) a variant with ``trainable`` trains, in forward order.

    Parameters
    ----------
    net : torch.nn.Module
        The network.
    trainable : str
        The variant's trainable part (``all``, ``classifier``, ``head``, a layer name, ...).

    Returns
    -------
    list of str
        Module names.
    """
    names = [name for name, _ in flat_layers(net)]
    first = names.index(first_trainable(net, trainable))
    modules = dict(net.named_modules())
    return [n for n in names[first:] if n in modules and isinstance(modules[n], (nn.Conv2d, nn.Linear))]


def baseline_seed(variant: str, seed: int = 0) -> int:
    """The re-initialisation seed of one variant's baseline.

    Drawn from its name and ``seed``, so the baselines of two variants are independent (a seed
    pair would share an init otherwise).

    Parameters
    ----------
    variant : str
        The variant name.
    seed : int
        The baseline seed (``--baseline-seed``).

    Returns
    -------
    int
        A 32-bit seed.
    """
    return int.from_bytes(hashlib.sha256(f"{variant}:{seed}".encode()).digest()[:4], "little")


def baseline_network(net: nn.Module, kind: str, *, trainable: str = "all", seed: int = 0) -> nn.Module:
    """A re-initialised copy of ``net`` (``net`` itself is untouched), in eval mode.

    ``untrained``: the layers of the trainable part (:func:`trained_layers`) get torchvision's
    init from ``seed``, everything before them keeps its (pretrained) weights; ``random``:
    every layer does. Each layer draws from ``seed`` plus its position, like the cascade.

    Parameters
    ----------
    net : torch.nn.Module
        The trained network.
    kind : {"untrained", "random"}
        Which baseline.
    trainable : str
        The variant's trainable part.
    seed : int
        The re-initialisation seed.

    Returns
    -------
    torch.nn.Module
        The baseline network.

    Examples
    --------
    >>> from model.architecture import build_vgg16
    >>> net = build_vgg16(2, width=0.0625)
    >>> base = baseline_network(net, "untrained", trainable="classifier", seed=3)
    >>> bool(torch.equal(base.features[0].weight, net.features[0].weight))
    True
    >>> bool(torch.equal(base.classifier[0].weight, net.classifier[0].weight))
    False
    """
    if kind not in BASELINE_KINDS:
        raise ValueError(f"unknown baseline '{kind}' (choose {', '.join(BASELINE_KINDS)})")
    copy_ = copy.deepcopy(net)
    layers = trained_layers(copy_, trainable) if kind == "untrained" else randomisation_order(copy_)[::-1]
    for i, layer in enumerate(layers):
        _reinitialise(copy_, layer, seed + i)
    return copy_.eval()


def baseline_variant(variant: LoadedVariant, kind: str, *, seed: int = 0):
    """A loaded variant whose net is its baseline of ``kind``, and a record for the maps' ``meta``.

    Parameters
    ----------
    variant : LoadedVariant
        The trained variant.
    kind : {"untrained", "random"}
        Which baseline (:func:`baseline_network`).
    seed : int
        The baseline seed (mixed with the variant name, :func:`baseline_seed`).

    Returns
    -------
    variant : LoadedVariant
        A copy with the baseline network.
    record : dict
        Kind, seeds and which layers were re-initialised.
    """
    trainable = variant.config["train"]["trainable"]
    drawn = baseline_seed(variant.name, seed)
    net = baseline_network(variant.net, kind, trainable=trainable, seed=drawn)
    layers = trained_layers(net, trainable) if kind == "untrained" else randomisation_order(net)[::-1]
    record = {"kind": kind, "seed": seed, "reinit_seed": drawn, "trainable": trainable,
              "reinitialised": layers,
              "what": ("the variant's trained layers re-initialised (torchvision init), not trained"
                       if kind == "untrained" else "every layer re-initialised (torchvision init)")}
    return dataclasses.replace(variant, net=net), record


def cascading_randomisation(net: nn.Module, images: np.ndarray, to_input, target: np.ndarray, *,
                            composite: str = "epsilon_plus_flat", seed: int = 0,
                            device: torch.device | str = "cpu", progress: bool = False) -> pd.DataFrame:
    """Map similarity after each cumulative re-initialisation, output layer first.

    Row ``step`` 0 is the trained model compared with itself; step k has the top k weight
    layers re-initialised (``layer`` is the k-th).

    Parameters
    ----------
    net : torch.nn.Module
        The trained network (a copy is randomised).
    images : numpy.ndarray
        Grey images (N, H, W).
    to_input : callable
        The model's preprocessing.
    target : numpy.ndarray
        The explained class per image.
    composite : str
        The method.
    seed : int
        Re-initialisation seed (plus the step).
    device : torch.device or str
        Where maps are made.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per step: ``test``, ``step``, ``layer``, the similarities, ``n_images``.
    """
    kwargs = {"method": composite, "target": target, "device": device}
    reference = explain_images(net, images, to_input, **kwargs).relevance
    rows = [compare_maps(reference, reference).assign(step=0, layer="none (trained)")]
    randomised = copy.deepcopy(net)
    layers = randomisation_order(randomised)
    for step, layer in enumerate(tqdm(layers, desc=f"randomise ({composite})", unit="layer",
                                      disable=not progress, leave=False), start=1):
        _reinitialise(randomised, layer, seed + step)
        maps = explain_images(randomised, images, to_input, **kwargs).relevance
        rows.append(compare_maps(reference, maps).assign(step=step, layer=layer))
    table = pd.concat(rows, ignore_index=True)
    return table.assign(test="cascading")[["test", "step", "layer", "spearman", "spearman_abs", "ssim",
                                            "n_images"]]


def random_label_network(variant: LoadedVariant, results: str | Path, *, seed: int = 0, progress: bool = False) -> nn.Module:
    """The variant's recipe trained again with its training labels shuffled (Adebayo's data test).

    Same config, same initial network and split; only the training labels are permuted (seeded),
    and the last epoch is kept (a validation score means nothing here).

    Parameters
    ----------
    variant : LoadedVariant
        The trained variant.
    results : str or Path
        The results root (its set and sources).
    seed : int
        Seed of the permutation.
    progress : bool
        Show progress bars.

    Returns
    -------
    torch.nn.Module
        The network trained on shuffled labels, in eval mode.
    """
    config = read_variant_config(variant.folder)
    spec = config.spec
    task = spec.label_task
    data = load_train_data(config.stimuli, results, task, kind=config.split.kind(task),
                           fractions=config.split.fractions, seed=config.split.seed)
    labels = data.labels.copy()
    train = data.index["train"]
    labels[train] = np.random.default_rng([seed, 7]).permutation(labels[train])
    data = dataclasses.replace(data, labels=labels)
    with torch.random.fork_rng(devices=[]):
        net, _, _ = initial_network(config, len(data.classes), results)
        recipe = dataclasses.replace(config.train, select="last", patience=None)
        trainer = Trainer(net, recipe, data, seed=spec.seed, input_size=config.input_size, task=task,
                          device=variant.device, name=f"{variant.name} (shuffled labels)", progress=progress)
        trainer.fit(RunState(), progress=progress)
    return net.eval()


def sanity_checks(variant: LoadedVariant, results: str | Path, *, composites: Sequence[str] = ("epsilon_plus_flat",),
                  images: int = 16, random_labels: bool = True, seed: int = 0, split: str = "test",
                  progress: bool = False) -> pd.DataFrame:
    """Both checks, for each method in ``composites``, on ``images`` held-out images; one tidy table.

    Parameters
    ----------
    variant : LoadedVariant
        The trained variant.
    results : str or Path
        The results root.
    composites : sequence of str
        The methods checked.
    images : int
        Held-out images compared (a seeded pick).
    random_labels : bool
        Also run the data-randomisation test.
    seed : int
        Seed of the pick, the re-initialisations and the permutation.
    split : str
        Which saved split the images come from.
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        The cascade's rows and the random-label row per composite, with the variant's name.
    """
    stimuli = load_prepared_set(variant.config["stimuli"], results)
    rows, labels = held_out(variant, stimuli, split)
    pick = np.sort(np.random.default_rng(seed).permutation(len(rows))[:images])
    grey, target = stimuli.read_images(rows[pick]), labels[pick]
    shuffled = random_label_network(variant, results, seed=seed, progress=progress) if random_labels else None
    tables = []
    for composite in composites:
        kwargs = {"method": composite, "target": target, "device": variant.device}
        table = cascading_randomisation(variant.net, grey, variant.to_input, target, composite=composite,
                                        seed=seed, device=variant.device, progress=progress)
        if shuffled is not None:
            reference = explain_images(variant.net, grey, variant.to_input, **kwargs).relevance
            maps = explain_images(shuffled, grey, variant.to_input, **kwargs).relevance
            table = pd.concat([table, compare_maps(reference, maps).assign(
                test="random_labels", step=1, layer="all (trained on shuffled labels)")], ignore_index=True)
        tables.append(table.assign(composite=composite))
    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "variant", variant.name)
    return table
