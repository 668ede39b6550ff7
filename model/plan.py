"""``python -m model train GRID --plan``: what a grid costs, measured before anything trains.

For every variant: the parameters it trains, the images of one epoch, and the seconds of one
training step on the chosen device, measured by timing real steps (forward through the
frozen prefix, forward and backward through the trainable suffix, optimizer step, under the
precision training uses) of a randomly initialised network of the variant's architecture at
the grid's input size and batch size. No weights file is read. When the grid's prepared set
exists, its own images (and class and split counts) are used; otherwise random images of the
right size, and the line says so.

The trainer computes the frozen prefix once per image when its outputs fit in memory (the
feature cache); then an epoch repeats only the suffix step, and the plan says which applies.

Examples
--------
::

    python -m model train model/configs/seed_study.yaml --plan
    python -m model train model/configs/seed_study.yaml --plan --device cuda
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.nn import functional as F

from stimuli.contracts.config import load_yaml
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import prepared_set_dir

from .architecture import build_vgg16, freeze_prefix
from .config import VariantConfig, expand_grid, load_grid, pretrain_token, select_variants
from .data import load_train_data
from .device import autocast, grad_scaler, optimizer_step, precision_name, select_device
from .preprocess import normalise_grey, resize_grey
from .trainer import CACHE_LIMIT_BYTES

__all__ = ["StepTiming", "readable_grid", "time_step", "plan_rows", "print_plan"]

ASSUMED_IDENTITIES = 100  # identity classes assumed when the set is not prepared yet


@dataclass(frozen=True)
class StepTiming:
    """Seconds per batch of the frozen prefix (no gradient) and of the trainable suffix's step.

    Parameters
    ----------
    prefix_s : float
        Seconds of the prefix's forward pass.
    suffix_s : float
        Seconds of the suffix's forward, backward and optimizer step.
    feature_dim : int
        Values per image at the prefix's output (the feature cache's size).
    """

    prefix_s: float
    suffix_s: float
    feature_dim: int  # values per image at the prefix's output (the feature cache's size)

    @property
    def step_s(self) -> float:
        return self.prefix_s + self.suffix_s


def readable_grid(config_file: str | Path) -> tuple[list[VariantConfig], list[str]]:
    """The grid's variants, leaving out pretraining entries this installation cannot read.

    Parameters
    ----------
    config_file : str or Path
        The grid YAML.

    Returns
    -------
    variants : list of VariantConfig
        The readable variants.
    notes : list of str
        One line per entry left out, naming it and why.
    """
    where = str(config_file)
    raw = load_yaml(config_file)
    entries = list((raw.get("grid") or {}).get("pretrain") or [])
    keep, notes = [], []
    for i, entry in enumerate(entries):
        try:
            pretrain_token(str(entry), f"{where}: key 'grid.pretrain[{i}]'")
            keep.append(entry)
        except InputError as error:
            notes.append(f"skipped pretrain '{entry}': {error}")
    if not notes:
        return expand_grid(load_grid(config_file), where), notes
    if not keep:
        raise InputError(f"{where}: no pretraining entry of 'grid.pretrain' can be read ({notes[0]})")
    raw["grid"]["pretrain"] = keep
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(where).name
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return expand_grid(load_grid(path), where), notes


def time_step(config: VariantConfig, num_classes: int, images: torch.Tensor, device: torch.device,
              steps: int = 2) -> StepTiming:
    """Mean seconds per step over ``steps`` timed steps after one warm-up step.

    Parameters
    ----------
    config : VariantConfig
        The variant (architecture, trainable part, optimizer).
    num_classes : int
        Outputs of the network.
    images : torch.Tensor
        One batch of grey (B, S, S) images in [0, 1] at the input size, on ``device``.
    device : torch.device
        Where it is timed.
    steps : int
        Timed steps.

    Returns
    -------
    StepTiming
        The mean timings.
    """
    spec, train = config.spec, config.train
    torch.manual_seed(0)
    net = build_vgg16(num_classes, width=spec.width, batch_norm=spec.batch_norm, dropout=train.dropout).to(device)
    if device.type == "cuda":
        net.to(memory_format=torch.channels_last)
    prefix, suffix = freeze_prefix(net, train.trainable)
    params = [p for p in suffix.parameters() if p.requires_grad]
    optimizer = (torch.optim.SGD(params, lr=train.lr, momentum=train.momentum) if train.optimizer == "sgd"
                 else torch.optim.Adam(params, lr=train.lr))
    scaler = grad_scaler(device)
    labels = torch.arange(len(images), device=device) % num_classes
    suffix.train()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def one() -> tuple[float, float, int]:
        sync()
        start = time.perf_counter()
        with torch.no_grad(), autocast(device):
            x = normalise_grey(images)
            features = prefix(x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x)
        sync()
        middle = time.perf_counter()
        with autocast(device):
            logits = suffix(features).float()
        optimizer_step(F.cross_entropy(logits, labels), optimizer, scaler)
        sync()
        return middle - start, time.perf_counter() - middle, features[0].numel()

    one()  # warm-up: allocations, cuDNN's algorithm choice
    timed = [one() for _ in range(max(1, steps))]
    return StepTiming(float(np.mean([t[0] for t in timed])), float(np.mean([t[1] for t in timed])), timed[0][2])


def _count_trainable(config: VariantConfig, num_classes: int) -> int:
    spec = config.spec
    with torch.device("meta"):
        net = build_vgg16(num_classes, width=spec.width, batch_norm=spec.batch_norm)
    _, suffix = freeze_prefix(net, config.train.trainable)
    return sum(p.numel() for p in suffix.parameters() if p.requires_grad)


def _data(config: VariantConfig, results: Path) -> tuple[int, int | None, int | None, np.ndarray | None]:
    """(classes, train images, set size, the first images) of a variant; counts None when the set is missing."""
    task = config.spec.label_task
    if not (prepared_set_dir(config.stimuli, results) / "manifest.csv").is_file():
        return (2 if task == "gender" else ASSUMED_IDENTITIES), None, None, None
    data = load_train_data(config.stimuli, results, task, kind=config.split.kind(task),
                           fractions=config.split.fractions, seed=config.split.seed)
    return len(data.classes), len(data.index["train"]), len(data.images), data.images[:config.train.batch_size]


def plan_rows(config_file: str | Path, results: str | Path = "results", *, only: Sequence[str] | None = None,
              device: str | torch.device | None = None, steps: int = 2) -> tuple[list[dict], list[str]]:
    """One row per variant (name, trainable parameters, images per epoch, seconds per step) and notes.

    Parameters
    ----------
    config_file : str or Path
        The grid YAML.
    results : str or Path
        The results root (the grid's prepared set, when it exists).
    only : sequence of str, optional
        Only these variants.
    device : str or torch.device, optional
        Where steps are timed.
    steps : int
        Timed steps per architecture.

    Returns
    -------
    rows : list of dict
        One per variant.
    notes : list of str
        What was assumed or left out.
    """
    if steps < 1:
        raise InputError("--plan-steps: must be at least 1")
    results = Path(results)
    device = select_device(device)
    variants, notes = readable_grid(config_file)
    variants = select_variants(variants, list(only or []), str(config_file))
    timings: dict[tuple, StepTiming] = {}
    data_of: dict[tuple, tuple] = {}
    rows = []
    for config in variants:
        train, spec = config.train, config.spec
        key = (config.stimuli, spec.label_task, config.split.kind(spec.label_task), tuple(config.split.fractions),
               config.split.seed)
        if key not in data_of:
            data_of[key] = _data(config, results)
            missing = f"set '{config.stimuli}' is not prepared under {results / 'stimuli'}"
            if data_of[key][1] is None and not any(n.startswith(missing) for n in notes):
                notes.append(f"{missing}: timed on random {config.input_size}-px images; images per epoch "
                             f"unknown; the step shown recomputes the frozen prefix (the feature cache, "
                             f"when the set fits, leaves only the suffix); identity timed with "
                             f"{ASSUMED_IDENTITIES} classes")
        classes, n_train, n_set, first = data_of[key]
        arch_key = (spec.arch, spec.width, spec.batch_norm, train.trainable, train.optimizer, classes,
                    config.input_size, train.batch_size)
        if arch_key not in timings:
            if first is None:
                grey = torch.rand(train.batch_size, config.input_size, config.input_size,
                                  generator=torch.Generator().manual_seed(0))
            else:
                grey = resize_grey(first, config.input_size)
                grey = grey[torch.arange(train.batch_size) % len(grey)]
            timings[arch_key] = time_step(config, classes, grey.to(device), device, steps)
        timing = timings[arch_key]
        n_cached = None if n_set is None else n_set + (n_train if train.augment.hflip else 0)
        cached = (train.cache_features == "auto" and train.trainable != "all" and train.augment.max_shift == 0
                  and n_cached is not None and n_cached * timing.feature_dim * 4 <= CACHE_LIMIT_BYTES)
        step = timing.suffix_s if cached else timing.step_s
        images = n_train  # a permutation, or as many draws with the class-balanced sampler
        batches = None if images is None else math.ceil(images / train.batch_size)
        rows.append({"variant": config.variant, "trainable": train.trainable,
                     "trainable_parameters": _count_trainable(config, classes), "classes": classes,
                     "images_per_epoch": images, "batch_size": train.batch_size, "step_s": step,
                     "prefix_s": timing.prefix_s, "suffix_s": timing.suffix_s, "feature_cache": cached,
                     "epoch_s": None if batches is None else batches * step, "epochs": train.epochs})
    return rows, notes


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "?" if value is None else format(value, spec)


def print_plan(config_file: str | Path, results: str | Path = "results", *, only: Sequence[str] | None = None,
               device: str | torch.device | None = None, steps: int = 2) -> list[dict]:
    """Print the plan of a grid (see the module docstring).

    Parameters
    ----------
    config_file, results, only, device, steps
        As :func:`plan_rows`.

    Returns
    -------
    list of dict
        The rows printed.
    """
    device = select_device(device)
    rows, notes = plan_rows(config_file, results, only=only, device=device, steps=steps)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{torch.get_num_threads()} threads" if device.type == "cpu" else device.type)
    print(f"plan of {config_file}: {len(rows)} variant(s); device {device} ({name}), "
          f"precision {precision_name(device)}; seconds per step: mean of {steps} timed step(s) after a warm-up")
    for line in notes:
        print(f"note: {line}")
    width = max([len("variant")] + [len(r["variant"]) for r in rows])
    print(f"{'variant':<{width}}  {'trains':<10} {'parameters':>12} {'images/epoch':>12} {'batch':>5} "
          f"{'s/step':>8} {'s/epoch':>9} {'h/run':>7}  step")
    for r in rows:
        hours = None if r["epoch_s"] is None else r["epoch_s"] * r["epochs"] / 3600
        how = ("suffix only (frozen features cached)" if r["feature_cache"]
               else f"prefix {r['prefix_s']:.2f} s + suffix {r['suffix_s']:.2f} s")
        print(f"{r['variant']:<{width}}  {r['trainable']:<10} {r['trainable_parameters']:>12,} "
              f"{_fmt(r['images_per_epoch'], 'd'):>12} {r['batch_size']:>5} {r['step_s']:>8.2f} "
              f"{_fmt(r['epoch_s'], '.0f'):>9} {_fmt(hours):>7}  {how}")
    return rows
