"""Train the variants of a grid: ``python -m model train CONFIG.yaml [--only V] [--out DIR]``.

Each variant starts from its pretraining source with a new, seeded head, freezes everything
before its trainable part and trains that part on the grid's train split, selecting the epoch
with the best validation score (balanced accuracy for gender, accuracy for identity). Its
folder ``<out>/models/<variant>/`` appears all at once when it is done; every epoch (or every
``checkpoint_every``) a resumable checkpoint goes to ``<out>/models/.<variant>.resume/`` so an
interrupted run continues from its last checkpoint and ends with the same weights. Finished
variants are skipped. Under ``torchrun`` the trainable part runs data-parallel (DDP): each
process takes an equal share of every global batch.

Examples
--------
::

    python -m model train model/configs/demo.yaml
    python -m model train model/configs/demo.yaml --only vgg16-imagenet-gender-s0 --out /scratch/results
    torchrun --nproc_per_node 4 -m model train grid.yaml --only vgg16-imagenet-identity-s0
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from stimuli.errors import InputError, cli_errors
from stimuli.provenance import (
    Provenance,
    atomic_output_dir,
    atomic_write_bytes,
    atomic_write_json,
    file_sha256,
)

from .architecture import build_vgg16, first_trainable, flat_layers, freeze_prefix
from .config import TrainConfig, VariantConfig, expand_grid, load_grid, select_variants
from .data import TrainData, augment_batch, class_weights, epoch_plan, load_train_data, torch_seed
from .device import Distributed, init_distributed, select_device
from .features import prefix_outputs
from .preprocess import normalise_grey, resize_grey
from .variants import (
    check_variant_files,
    is_trained,
    read_variant_config,
    resume_dir,
    train_command,
    variant_dir,
    variant_file_hashes,
)
from .weights import imagenet_state_dict, load_compatible, read_state_dict, safe_load

__all__ = [
    "CHECKPOINT_FORMAT",
    "initial_network",
    "Trainer",
    "RunState",
    "train_variant",
    "train_grid",
    "main",
]

CHECKPOINT_FORMAT = 1
TRAIN_COMMAND = "model train"  # recorded in provenance.json: only this command replaces a variant folder
SINGLE = Distributed()  # one process, not distributed
_HEAD = ("classifier.6.",)
# feature caches above this size fall back to the plain path (recomputing the prefix)
CACHE_LIMIT_BYTES = 4 << 30


def selection_metric(task: str) -> str:
    """Validation score that selects epochs: balanced accuracy for (unbalanced) gender."""
    return "balanced_accuracy" if task == "gender" else "accuracy"


# ---------------------------------------------------------------------------- initial weights

def initial_network(config: VariantConfig, num_classes: int, results: str | Path, *,
                    grid_file: str | None = None) -> tuple[nn.Module, dict[str, Any], list[Path]]:
    """The network a variant starts from: seeded init, pretrained weights, a new seeded head.

    Returns the net, a provenance record of where its weights came from and the weight files
    read (for input hashes).
    """
    spec = config.spec
    torch.manual_seed(spec.seed)  # the variant seed draws every layer the source does not fill
    net = build_vgg16(num_classes, width=spec.width, batch_norm=spec.batch_norm,
                      dropout=config.train.dropout)
    pretrain = config.pretrain
    info: dict[str, Any] = {"pretrain": pretrain, "head": f"new, seeded init (seed {spec.seed})"}
    files: list[Path] = []
    if pretrain == "none":
        info["source"] = f"random init (seed {spec.seed})"
    elif pretrain == "imagenet":
        state, source = imagenet_state_dict(config.imagenet_source, batch_norm=spec.batch_norm,
                                            where=f"{config.variant}: imagenet_source")
        onnx = source["source"] == "onnx"
        load_compatible(net, state, where=source.get("file") or "ImageNet weights", skip=_HEAD,
                        allow_missing=("classifier.",) if onnx else (), describe=spec.arch)
        info.update(source)
        if source.get("file") and Path(source["file"]).is_file():
            files.append(Path(source["file"]))
    elif pretrain == "faces":
        if not config.face_source:
            raise InputError(f"{config.variant}: pretrain 'faces' needs a face_source variant")
        if not is_trained(config.face_source, results):
            raise InputError(f"{config.variant} starts from face source {config.face_source}, which is "
                             f"not trained yet; train it first with: "
                             f"{train_command(config.face_source, results, grid_file)}")
        path = variant_dir(config.face_source, results) / "model.pt"
        check_variant_files(path.parent)  # a source edited since its training is not a source
        load_compatible(net, read_state_dict(path), where=str(path), skip=_HEAD,
                        describe=f"{spec.arch} width {spec.width:g}")
        info.update(source="face source", variant=config.face_source, file=str(path),
                    sha256=file_sha256(path))
        files.append(path)
    elif pretrain.startswith("file:"):
        path = Path(pretrain[5:])
        load_compatible(net, read_state_dict(path), where=str(path), skip=_HEAD,
                        describe=f"{spec.arch} width {spec.width:g}")
        info.update(source="file", file=str(path), sha256=file_sha256(path))
        files.append(path)
    elif pretrain.startswith("vggface:"):  # a VGG-Face file, converted on the fly
        from .vggface import vggface_state_dict

        path = Path(pretrain[8:])
        state, source = vggface_state_dict(path)
        load_compatible(net, state, where=str(path), skip=_HEAD, describe=f"{spec.arch} width {spec.width:g}")
        info.update(source)
        files.append(path)
    else:  # pragma: no cover - load_grid refuses other values
        raise InputError(f"{config.variant}: unknown pretrain '{pretrain}'")
    return net, info, files


# ---------------------------------------------------------------------------- the training loop

@dataclass
class RunState:
    """Everything a checkpoint holds besides weights and optimizer: where the run stands."""

    epoch: int = 0  # epochs completed
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_key: list[float] | None = None  # (validation score, -validation loss)
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    stopped: bool = False
    seconds: float = 0.0


def _scores(counts: torch.Tensor) -> dict[str, float]:
    """Accuracy and balanced accuracy from per-class (correct, total) counts."""
    correct, total = counts[:, 0].double(), counts[:, 1].double()
    present = total > 0
    return {"accuracy": float(correct.sum() / total.sum().clamp(min=1)),
            "balanced_accuracy": float((correct[present] / total[present]).mean()) if present.any() else 0.0}


class Trainer:
    """One variant's network, data, optimizer and schedule; runs epochs and evaluations.

    The network is split at its first trainable layer into a frozen prefix (eval mode, no
    gradient) and the trainable suffix. On the fast path the prefix's outputs are computed once
    (see :mod:`model.features`); on the plain path they are computed for every batch. Both feed
    the same suffix the same values, so they train the same weights (up to float rounding).
    """

    def __init__(self, net: nn.Module, config: TrainConfig, data: TrainData, *, seed: int,
                 input_size: int, task: str, device: torch.device | str = "cpu",
                 dist: Distributed = SINGLE, name: str = "variant", progress: bool = True):
        self.net, self.config, self.data, self.seed = net, config, data, seed
        self.device, self.dist, self.name, self.task = torch.device(device), dist, name, task
        self.metric = selection_metric(task)
        self.num_classes = len(data.classes)
        net.to(self.device)
        self.prefix, self.suffix = freeze_prefix(net, config.trainable)
        cut = [n for n, _ in flat_layers(net)].index(first_trainable(net, config.trainable))
        names = tuple(f"{n}." for n, _ in flat_layers(net)[cut:])
        self.trainable_keys = [k for k in net.state_dict() if k.startswith(names)]
        self.grey = resize_grey(data.images, input_size, device=self.device)
        self.labels = torch.as_tensor(data.labels, device=self.device)
        self.background = data.stimuli.background
        self.max_shift_px = int(round(config.augment.max_shift * input_size))
        weights = (class_weights(data.labels[data.index["train"]], self.num_classes)
                   if config.balance == "weights" else np.ones(self.num_classes))
        self.class_weight = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        self.cached = self._cache_features(progress) if self._can_cache() else False
        if dist.active and config.batch_size < dist.world_size:
            raise InputError(f"{name}: batch_size {config.batch_size} is smaller than the "
                             f"{dist.world_size} processes")
        self.model: nn.Module = self.suffix
        if dist.active:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(
                self.suffix, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        params = [p for p in self.suffix.parameters() if p.requires_grad]
        if config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                                             weight_decay=config.weight_decay)
        else:
            self.optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        if config.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=config.epochs)
        elif config.schedule == "step":
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, config.step_size, config.gamma)
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda epoch: 1.0)

    # -- the exact fast path
    def _can_cache(self) -> bool:
        return (self.config.cache_features == "auto" and len(self.prefix) > 0
                and self.max_shift_px == 0)

    def _cache_features(self, progress: bool) -> bool:
        with torch.no_grad():
            dim = self.prefix(normalise_grey(self.grey[:1])).numel()
        n = len(self.grey) + (len(self.data.index["train"]) if self.config.augment.hflip else 0)
        if n * dim * 4 > CACHE_LIMIT_BYTES:
            return False
        desc = f"{self.name}: frozen features" if progress and self.dist.main else None
        bs = self.config.eval_batch_size
        self.features = prefix_outputs(self.prefix, self.grey, batch_size=bs, desc=desc)
        if self.config.augment.hflip:
            train = torch.as_tensor(self.data.index["train"], device=self.device)
            flipped = prefix_outputs(self.prefix, torch.flip(self.grey[train], dims=(-1,)),
                                     batch_size=bs, desc=desc)
            self.flipped = torch.zeros_like(self.features)
            self.flipped[train] = flipped
        return True

    def suffix_input(self, rows: np.ndarray, flips: np.ndarray | None = None,
                     shifts: np.ndarray | None = None) -> torch.Tensor:
        """What the trainable suffix sees for manifest rows ``rows`` (augmented when asked)."""
        index = torch.as_tensor(rows, device=self.device)
        if self.cached:
            x = self.features[index]
            if flips is not None and flips.any():
                which = torch.as_tensor(np.flatnonzero(flips), device=self.device)
                x[which] = self.flipped[index[which]]
            return x
        grey = self.grey[index]
        if flips is not None or shifts is not None:
            n = len(rows)
            grey = augment_batch(grey, flips if flips is not None else np.zeros(n, bool),
                                 shifts if shifts is not None else np.zeros((n, 2), np.int64),
                                 self.background)
        with torch.no_grad():
            return self.prefix(normalise_grey(grey))

    # -- state
    def trainable_state(self) -> dict[str, torch.Tensor]:
        own = self.net.state_dict()
        return {k: own[k].detach().cpu().clone() for k in self.trainable_keys}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        missing = [k for k in self.trainable_keys if k not in state]
        if missing or len(state) != len(self.trainable_keys):
            raise InputError(f"{self.name}: checkpoint does not match the trainable layers "
                             f"({', '.join(missing[:2]) or 'extra keys'})")
        own = self.net.state_dict()
        with torch.no_grad():
            for key, value in state.items():
                own[key].copy_(value)

    # -- epochs
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training split; returns loss, accuracies, images and seconds."""
        cfg, dist = self.config, self.dist
        started = time.perf_counter()
        train_rows = self.data.index["train"]
        plan = epoch_plan(self.data.labels[train_rows], seed=self.seed, epoch=epoch,
                          balance=cfg.balance, hflip=cfg.augment.hflip, max_shift_px=self.max_shift_px)
        torch.manual_seed(torch_seed(self.seed, epoch, dist.rank))  # dropout masks
        self.suffix.train()
        counts = torch.zeros(self.num_classes, 2, dtype=torch.float64, device=self.device)
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)  # weighted loss, weight
        for start in range(0, len(plan.order), cfg.batch_size):
            batch = slice(start, start + cfg.batch_size)
            rows = train_rows[plan.order[batch]]
            weight = self.class_weight[self.labels[torch.as_tensor(rows, device=self.device)]]
            batch_weight = weight.sum()
            # this process's share of the global batch (all of it when not distributed)
            share = np.array_split(np.arange(len(rows)), dist.world_size)[dist.rank]
            x = self.suffix_input(rows[share], plan.flips[batch][share], plan.shifts[batch][share]
                                  if self.max_shift_px else None)
            y = self.labels[torch.as_tensor(rows[share], device=self.device)]
            logits = self.model(x)
            losses = F.cross_entropy(logits, y, reduction="none") * weight[share]
            # DDP averages gradients over processes: scale so the sum is the global-batch loss
            loss = losses.sum() / batch_weight * dist.world_size
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.suffix.parameters(), cfg.clip_grad_norm)
            self.optimizer.step()
            with torch.no_grad():
                predicted = logits.argmax(1)
                counts[:, 1] += torch.bincount(y, minlength=self.num_classes)
                counts[:, 0] += torch.bincount(y[predicted == y], minlength=self.num_classes)
                totals += torch.stack([losses.sum().double(), weight[share].sum().double()])
        if dist.active:
            import torch.distributed as tdist

            tdist.all_reduce(counts)
            tdist.all_reduce(totals)
        scores = _scores(counts)
        return {"loss": float(totals[0] / totals[1].clamp(min=1e-12)), **scores,
                "images": len(plan.order), "seconds": time.perf_counter() - started}

    def logits(self, rows: np.ndarray) -> torch.Tensor:
        """Eval-mode logits of manifest rows (no augmentation)."""
        self.suffix.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(rows), self.config.eval_batch_size):
                out.append(self.suffix(self.suffix_input(rows[start:start + self.config.eval_batch_size])))
        return torch.cat(out) if out else torch.zeros(0, self.num_classes, device=self.device)

    def evaluate(self, split: str) -> dict[str, float]:
        """Loss, accuracy and balanced accuracy on one split, in eval mode."""
        rows = self.data.index[split]
        logits = self.logits(rows)
        y = self.labels[torch.as_tensor(rows, device=self.device)]
        counts = torch.zeros(self.num_classes, 2, dtype=torch.float64, device=self.device)
        counts[:, 1] += torch.bincount(y, minlength=self.num_classes)
        counts[:, 0] += torch.bincount(y[logits.argmax(1) == y], minlength=self.num_classes)
        loss = float(F.cross_entropy(logits, y)) if len(rows) else float("nan")
        return {"loss": loss, **_scores(counts)}

    def fit(self, state: RunState, *, checkpoint: Callable[[RunState], None] | None = None,
            after_epoch: Callable[[int], None] | None = None, progress: bool = True) -> RunState:
        """Train from ``state.epoch`` to the end (or early stop); returns the final state."""
        cfg = self.config
        bar = tqdm(total=cfg.epochs, initial=state.epoch, desc=self.name, unit="epoch",
                   disable=not (progress and self.dist.main), leave=False)
        try:
            while state.epoch < cfg.epochs and not state.stopped:
                epoch = state.epoch
                lr = self.optimizer.param_groups[0]["lr"]
                train = self.train_epoch(epoch)
                if not math.isfinite(train["loss"]):
                    raise InputError(f"{self.name}: the training loss became {train['loss']} in epoch "
                                     f"{epoch + 1}; lower train.lr (now {cfg.lr:g}) or set train.clip_grad_norm")
                val, test = self.evaluate("val"), self.evaluate("test")
                self.scheduler.step()
                state.seconds += train["seconds"]
                row = {"epoch": epoch + 1, "lr": lr, "seconds": train["seconds"]}
                row.update({f"train_{k}": v for k, v in train.items() if k not in ("seconds", "images")})
                row.update({f"val_{k}": v for k, v in val.items()})
                row.update({f"test_{k}": v for k, v in test.items()})
                state.history.append(row)
                key = [val[self.metric], -val["loss"]]
                if state.best_key is None or key > state.best_key:
                    state.best_key, state.best_epoch, state.bad_epochs = key, epoch + 1, 0
                    if cfg.select == "best":
                        state.best_state = self.trainable_state()
                else:
                    state.bad_epochs += 1
                    if cfg.patience is not None and state.bad_epochs >= cfg.patience:
                        state.stopped = True
                state.epoch = epoch + 1
                bar.update(1)
                bar.set_postfix(loss=f"{train['loss']:.3f}", val=f"{val[self.metric]:.3f}")
                last = state.stopped or state.epoch == cfg.epochs
                if checkpoint is not None and (state.epoch % cfg.checkpoint_every == 0 or last):
                    checkpoint(state)
                if after_epoch is not None:
                    after_epoch(epoch + 1)
        finally:
            bar.close()
        return state


# ---------------------------------------------------------------------------- checkpoints

def _checkpoint_payload(config: VariantConfig, trainer: Trainer, state: RunState) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "variant": config.variant,
        "config": config.as_dict(),
        "trainable": trainer.trainable_state(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state()},  # informational: every epoch reseeds from (seed, epoch)
        "run": {"epoch": state.epoch, "history": state.history, "best_epoch": state.best_epoch,
                "best_key": state.best_key, "best_state": state.best_state,
                "bad_epochs": state.bad_epochs, "stopped": state.stopped, "seconds": state.seconds},
    }


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(path: Path, config: VariantConfig) -> dict[str, Any] | None:
    """An interrupted run's checkpoint (None when there is none); one made with another
    config is an InputError, raised before any expensive work."""
    if not path.is_file():
        return None
    payload = safe_load(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a checkpoint of this version; delete {path.parent} to start over")
    if payload.get("config") != config.as_dict():
        old, new = payload.get("config") or {}, config.as_dict()
        keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        raise InputError(f"{path}: the interrupted run used another config (differs in "
                         f"{', '.join(keys[:3]) or 'its format'}); restore that config or delete "
                         f"{path.parent} to start over")
    return payload


def restore(payload: dict[str, Any], trainer: Trainer) -> RunState:
    """Put a checkpoint's weights, optimizer and schedule into ``trainer``; return its run state."""
    trainer.load_trainable_state(payload["trainable"])
    trainer.optimizer.load_state_dict(payload["optimizer"])
    trainer.scheduler.load_state_dict(payload["scheduler"])
    run = payload["run"]
    return RunState(epoch=run["epoch"], history=list(run["history"]), best_epoch=run["best_epoch"],
                    best_key=run["best_key"], best_state=run["best_state"],
                    bad_epochs=run["bad_epochs"], stopped=run["stopped"], seconds=run["seconds"])


# ---------------------------------------------------------------------------- one variant

def _check_face_source_split(config: VariantConfig, data: TrainData, results: Path) -> None:
    """A faces variant must not be tested on images its face source trained on."""
    source = variant_dir(config.face_source, results)
    split_file = source / "split.csv"
    if not split_file.is_file():
        return
    import pandas as pd

    source_split = pd.read_csv(split_file, dtype=str, keep_default_na=False)
    source_config = read_variant_config(source)
    if source_config.stimuli != config.stimuli or "stimulus_id" not in source_split:
        return
    seen = set(source_split.stimulus_id[source_split.split == "train"])
    held_out = data.split.stimulus_id[data.split.split.isin(["val", "test"])]
    leaked = sorted(set(held_out) & seen)
    if leaked:
        raise InputError(f"{config.variant}: {len(leaked)} of its validation/test images (e.g. "
                         f"{leaked[0]}) trained face source {config.face_source}; use the same "
                         "split (split kind image for both) or another stimulus set for the source")


def _config_change(config: VariantConfig, folder: Path) -> str:
    """A note when a finished variant was trained with another config than the current one."""
    try:
        saved = read_variant_config(folder).as_dict()
    except InputError:
        return ""
    current = {**config.as_dict(), "classes": saved.get("classes")}
    differs = [k for k in current if current[k] != saved.get(k)]
    if not differs:
        return ""
    return (f"; NOTE: it was trained with another config (differs in {', '.join(differs[:3])}); "
            f"delete {folder} to retrain it")


def train_variant(
    config: VariantConfig,
    results: str | Path = "results",
    *,
    device: torch.device | str | None = None,
    dist: Distributed = SINGLE,
    grid_file: str | None = None,
    after_epoch: Callable[[int], None] | None = None,
    progress: bool = True,
    command: list[str] | None = None,
) -> Path:
    """Train one variant into ``<results>/models/<variant>/`` (skipped when finished).

    ``after_epoch(epoch)`` runs after each epoch's checkpoint (tests use it to simulate an
    interruption). Returns the variant folder.
    """
    results = Path(results)
    name = config.variant
    final = variant_dir(name, results)
    if is_trained(name, results):
        if dist.main and progress:
            tqdm.write(f"{name}: done already ({final}), skipped{_config_change(config, final)}")
        return final
    device = torch.device(device) if device is not None else select_device()
    spec = config.spec
    task = spec.label_task
    data = load_train_data(config.stimuli, results, task, kind=config.split.kind(task),
                           fractions=config.split.fractions, seed=config.split.seed)
    if len(data.index["val"]) == 0 and (config.train.select == "best" or config.train.patience):
        raise InputError(f"{name}: the split has no validation images; give split.fractions a "
                         "validation share or set train.select: last and train.patience: null")
    if config.pretrain == "faces":
        _check_face_source_split(config, data, results)
    config.classes = list(data.classes)
    if config.train.deterministic and device.type == "cuda":
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    started = time.perf_counter()
    prov = Provenance(command=command, config=config.as_dict(),
                      seeds={"variant": spec.seed, "split": config.split.seed}, tool=TRAIN_COMMAND)
    partial = resume_dir(name, results)
    ckpt_file = partial / "checkpoint.pt"
    payload = read_checkpoint(ckpt_file, config)
    net, pretrained, weight_files = initial_network(config, len(data.classes), results, grid_file=grid_file)
    trainer = Trainer(net, config.train, data, seed=spec.seed, input_size=config.input_size, task=task,
                      device=device, dist=dist, name=name, progress=progress)
    state = restore(payload, trainer) if payload is not None else RunState()
    del payload
    resumed_from = state.epoch
    if resumed_from and dist.main and progress:
        tqdm.write(f"{name}: resuming after epoch {resumed_from} from {ckpt_file}")

    def checkpoint(run: RunState) -> None:
        if dist.main:
            save_checkpoint(ckpt_file, _checkpoint_payload(config, trainer, run))

    state = trainer.fit(state, checkpoint=checkpoint, after_epoch=after_epoch, progress=progress)
    if config.train.select == "best" and state.best_state is not None:
        trainer.load_trainable_state(state.best_state)
    final_scores = {split: trainer.evaluate(split) for split in ("train", "val", "test")}
    if not dist.main:
        return final
    metrics = {
        "variant": name, "task": task, "metric": trainer.metric, "classes": data.classes,
        "selected": config.train.select,
        "selected_epoch": state.best_epoch if config.train.select == "best" else state.epoch,
        "epochs_run": state.epoch, "stopped_early": state.stopped and state.epoch < config.train.epochs,
        "images": {k: int(len(v)) for k, v in data.index.items()},
        "final": final_scores, "epochs": state.history,
        "train_seconds": state.seconds, "feature_cache": trainer.cached,
        "device": str(device), "world_size": dist.world_size,
    }
    for path in (data.stimuli.folder / "manifest.csv", data.stimuli.folder / "set.json",
                 *weight_files, *([Path(grid_file)] if grid_file else [])):
        if Path(path).is_file():
            prov.add_input(path)
    prov.extra.update(pretrained=pretrained, device=str(device), world_size=dist.world_size,
                      feature_cache=trainer.cached, resumed_from_epoch=resumed_from or None,
                      wall_seconds=time.perf_counter() - started)
    with atomic_output_dir(final, replace=True, command=TRAIN_COMMAND, protect=[results]) as work:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, work / "model.pt")
        (work / "config.yaml").write_text(yaml.safe_dump(config.as_dict(), sort_keys=False))
        data.split.to_csv(work / "split.csv", index=False)
        atomic_write_json(work / "metrics.json", metrics)
        prov.extra["variant_files"] = variant_file_hashes(work)  # load_variant refuses a changed config or model
        prov.write(work)
    shutil.rmtree(partial, ignore_errors=True)
    if progress:
        test = final_scores["test"][trainer.metric]
        tqdm.write(f"{name}: test {trainer.metric.replace('_', ' ')} {test:.3f} "
                   f"(epoch {metrics['selected_epoch']}, {state.seconds:.0f} s training) -> {final}")
    return final


def train_grid(config_file: str | Path, results: str | Path = "results", *, only: Sequence[str] | None = None,
               device: str | None = None, progress: bool = True) -> list[Path]:
    """Train every (or each ``only``) variant of a grid YAML, face sources first."""
    where = str(config_file)
    variants = select_variants(expand_grid(load_grid(config_file), where), list(only or []), where)
    device_ = select_device(device)
    dist, device_ = init_distributed(device_)
    folders = []
    for config in tqdm(variants, desc="variants", unit="variant", disable=not progress or len(variants) < 2
                       or not dist.main):
        folders.append(train_variant(config, results, device=device_, dist=dist, grid_file=where,
                                     progress=progress, command=list(sys.argv)))
        if dist.active:
            import torch.distributed as tdist

            tdist.barrier()
    return folders


# ---------------------------------------------------------------------------- command line

def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m model train")
    parser.description = ("Train the VGG-16 variants of a grid YAML into <out>/models/<variant>/ "
                          "(model.pt, config.yaml, metrics.json, split.csv, provenance.json). Finished "
                          "variants are skipped; an interrupted one resumes from its last epoch. "
                          "Under torchrun the training is data-parallel.")
    parser.add_argument("config", help="grid YAML, e.g. model/configs/demo.yaml")
    parser.add_argument("--only", nargs="+", metavar="VARIANT",
                        help="train only these variants of the grid (e.g. one per cluster array job)")
    parser.add_argument("--out", default="results",
                        help="results root: reads <out>/stimuli, writes <out>/models (default results)")
    parser.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N, mps")
    parser.add_argument("--list", action="store_true", help="print the grid's variant names and exit")
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        where = str(args.config)
        for config in select_variants(expand_grid(load_grid(args.config), where), args.only, where):
            print(config.variant)
        return 0
    started = time.perf_counter()
    folders = train_grid(args.config, args.out, only=args.only, device=args.device)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{len(folders)} variant(s) ready in {Path(args.out) / 'models'} "
              f"({math.ceil(time.perf_counter() - started)} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
