"""One variant's training: its initial weights, the training loop and its resumable checkpoints.

:func:`initial_network` builds the network a variant starts from (seeded init, the pretrained
weights of its source, a new seeded head).

:class:`Trainer` holds a variant's network split at its first trainable layer (a frozen prefix
and the trainable suffix), its data on the device, optimizer and schedule; :meth:`Trainer.fit`
runs epochs from a :class:`RunState` and calls back for checkpoints. Every epoch draws its order,
augmentation and dropout from ``(seed, epoch)`` only, so a run resumed from a checkpoint
(:mod:`model.checkpoint`) ends with the same weights as an uninterrupted one.

On CUDA the steps run under automatic mixed precision (:func:`model.device.autocast`: bf16
where supported, else fp16 with a gradient scaler) in ``channels_last``; on the CPU they run in
float32 exactly as before.

Examples
--------
>>> RunState().epoch
0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import file_sha256

from .architecture import build_vgg16, first_trainable, flat_layers, freeze_prefix
from .config import TrainConfig, VariantConfig
from .data import TrainData, augment_batch, class_weights, epoch_plan, torch_seed
from .device import Distributed, autocast, grad_scaler, optimizer_step, precision_name
from .features import prefix_outputs
from .preprocess import normalise_grey, resize_grey
from .variants import check_variant_files, is_trained, train_command, variant_dir
from .vggface import vggface_state_dict
from .weights import imagenet_state_dict, load_compatible, read_state_dict

__all__ = [
    "initial_network",
    "selection_metric",
    "RunState",
    "Trainer",
]

SINGLE = Distributed()  # one process, not distributed
# feature caches above this size fall back to the plain path (recomputing the prefix)
CACHE_LIMIT_BYTES = 4 << 30
_HEAD = ("classifier.6.",)  # the output layer: always new, never taken from a source

def initial_network(config: VariantConfig, num_classes: int, results: str | Path, *,
                    grid_file: str | None = None) -> tuple[nn.Module, dict[str, Any], list[Path]]:
    """The network a variant starts from: seeded init, pretrained weights, a new seeded head.

    Parameters
    ----------
    config : VariantConfig
        The variant (its spec, pretraining source and training settings).
    num_classes : int
        Outputs of the new head.
    results : str or Path
        The results root (a face-pretraining source variant is read from it).
    grid_file : str, optional
        The grid YAML, named in the hint when a face source is not trained yet.

    Returns
    -------
    net : torch.nn.Module
        The network, ready to train.
    info : dict
        Provenance record of where its weights came from.
    files : list of Path
        The weight files read (for input hashes).
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
        path = Path(pretrain[8:])
        state, source = vggface_state_dict(path)
        load_compatible(net, state, where=str(path), skip=_HEAD, describe=f"{spec.arch} width {spec.width:g}")
        info.update(source)
        files.append(path)
    else:  # pragma: no cover - load_grid refuses other values
        raise InputError(f"{config.variant}: unknown pretrain '{pretrain}'")
    return net, info, files


def selection_metric(task: str) -> str:
    """Validation score that selects epochs: balanced accuracy for (unbalanced) gender.

    Parameters
    ----------
    task : str
        ``gender`` or ``identity``.

    Returns
    -------
    str
        ``balanced_accuracy`` or ``accuracy``.

    Examples
    --------
    >>> selection_metric("gender")
    'balanced_accuracy'
    """
    return "balanced_accuracy" if task == "gender" else "accuracy"


# ---------------------------------------------------------------------------- the training loop

@dataclass
class RunState:
    """Everything a checkpoint holds besides weights and optimizer: where the run stands.

    Parameters
    ----------
    epoch : int
        Epochs completed.
    history : list of dict
        Per-epoch scores.
    best_epoch : int or None
        The epoch selected so far.
    best_key : list of float or None
        Its (validation score, -validation loss).
    best_state : dict or None
        Its trainable weights.
    bad_epochs : int
        Epochs without improvement (early stopping).
    stopped : bool
        Whether early stopping ended the run.
    seconds : float
        Training time so far.
    """

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

    Parameters
    ----------
    net : torch.nn.Module
        The network (:func:`initial_network`); trained in place.
    config : TrainConfig
        The recipe.
    data : TrainData
        Images, labels and split.
    seed : int
        The variant seed: every epoch draws from ``(seed, epoch)``.
    input_size : int
        Side of the square model input.
    task : str
        ``gender`` or ``identity``.
    device : torch.device or str
        Where it trains.
    dist : Distributed
        The process group (default: one process).
    name : str
        For progress bars and messages.
    progress : bool
        Show progress bars.
    """

    def __init__(self, net: nn.Module, config: TrainConfig, data: TrainData, *, seed: int,
                 input_size: int, task: str, device: torch.device | str = "cpu",
                 dist: Distributed = SINGLE, name: str = "variant", progress: bool = True):
        self.net, self.config, self.data, self.seed = net, config, data, seed
        self.device, self.dist, self.name, self.task = torch.device(device), dist, name, task
        self.metric = selection_metric(task)
        self.num_classes = len(data.classes)
        # CUDA: mixed precision (None: float32), channels_last convolutions, and the resized set
        # waiting in pinned host memory, each batch copied asynchronously (GPU memory holds batches)
        self.precision = precision_name(self.device)
        self.scaler = grad_scaler(self.device)
        self.on_gpu = self.device.type == "cuda"
        net.to(self.device)
        if self.on_gpu:
            net.to(memory_format=torch.channels_last)
        self.prefix, self.suffix = freeze_prefix(net, config.trainable)
        cut = [n for n, _ in flat_layers(net)].index(first_trainable(net, config.trainable))
        names = tuple(f"{n}." for n, _ in flat_layers(net)[cut:])
        self.trainable_keys = [k for k in net.state_dict() if k.startswith(names)]
        grey = resize_grey(data.images, input_size, device="cpu" if self.on_gpu else self.device)
        self.grey = grey.pin_memory() if self.on_gpu else grey
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

    def _to_device(self, grey: torch.Tensor) -> torch.Tensor:
        """Grey images onto the device (asynchronously from pinned memory on CUDA)."""
        if not self.on_gpu:
            return grey
        return grey.pin_memory().to(self.device, non_blocking=True)

    def _cache_features(self, progress: bool) -> bool:
        with torch.no_grad(), autocast(self.device):
            dim = self.prefix(normalise_grey(self._to_device(self.grey[:1]))).numel()
        n = len(self.grey) + (len(self.data.index["train"]) if self.config.augment.hflip else 0)
        if n * dim * 4 > CACHE_LIMIT_BYTES:
            return False
        desc = f"{self.name}: frozen features" if progress and self.dist.main else None
        bs = self.config.eval_batch_size
        grey = self.grey.to(self.device)  # the whole set once, for the one prefix pass
        with autocast(self.device):
            self.features = prefix_outputs(self.prefix, grey, batch_size=bs, desc=desc)
        if self.config.augment.hflip:
            train = torch.as_tensor(self.data.index["train"], device=self.device)
            with autocast(self.device):
                flipped = prefix_outputs(self.prefix, torch.flip(grey[train], dims=(-1,)),
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
        grey = self._to_device(self.grey[torch.as_tensor(rows)]) if self.on_gpu else self.grey[index]
        if flips is not None or shifts is not None:
            n = len(rows)
            grey = augment_batch(grey, flips if flips is not None else np.zeros(n, bool),
                                 shifts if shifts is not None else np.zeros((n, 2), np.int64),
                                 self.background)
        with torch.no_grad():
            x = normalise_grey(grey)
            return self.prefix(x.contiguous(memory_format=torch.channels_last) if self.on_gpu else x)

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
            with autocast(self.device):
                x = self.suffix_input(rows[share], plan.flips[batch][share], plan.shifts[batch][share]
                                      if self.max_shift_px else None)
            y = self.labels[torch.as_tensor(rows[share], device=self.device)]
            with autocast(self.device):  # float32 on the CPU: a no-op
                logits = self.model(x).float()
            losses = F.cross_entropy(logits, y, reduction="none") * weight[share]
            # DDP averages gradients over processes: scale so the sum is the global-batch loss
            loss = losses.sum() / batch_weight * dist.world_size
            optimizer_step(loss, self.optimizer, self.scaler, clip_grad_norm=cfg.clip_grad_norm,
                           parameters=self.suffix.parameters())
            with torch.no_grad():
                predicted = logits.argmax(1)
                counts[:, 1] += torch.bincount(y, minlength=self.num_classes)
                counts[:, 0] += torch.bincount(y[predicted == y], minlength=self.num_classes)
                totals += torch.stack([losses.sum().double(), weight[share].sum().double()])
        if dist.active:
            tdist.all_reduce(counts)
            tdist.all_reduce(totals)
        scores = _scores(counts)
        return {"loss": float(totals[0] / totals[1].clamp(min=1e-12)), **scores,
                "images": len(plan.order), "seconds": time.perf_counter() - started}

    def logits(self, rows: np.ndarray) -> torch.Tensor:
        """Eval-mode logits of manifest rows (no augmentation)."""
        self.suffix.eval()
        out = []
        with torch.no_grad(), autocast(self.device):
            for start in range(0, len(rows), self.config.eval_batch_size):
                out.append(self.suffix(self.suffix_input(rows[start:start + self.config.eval_batch_size])).float())
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
