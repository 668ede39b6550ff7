"""Variant names, training configs and grid expansion.

A variant is named ``vgg16[-bn][-w<width>]-<pretrain>-<task>-s<seed>`` (DESIGN.md), e.g.
``vgg16-imagenet-gender-s0`` or ``vgg16-w0.25-none-identity-s1``. ``pretrain`` is ``none``,
``imagenet``, ``faces``, ``vggface`` (a ``vggface:PATH`` file: :mod:`model.vggface`) or the
label of a ``file:PATH`` source; ``task`` is ``gender``, ``identity`` or ``faces``: a
*face-pretraining source* (identity training with its own recipe, e.g.
``vgg16-imagenet-faces-s0``) whose trunk and FC layers the ``faces`` variants of the same
architecture start from.

A grid YAML (:class:`GridConfig`) expands into one :class:`VariantConfig` per variant; that
resolved config is saved as ``config.yaml`` in the variant folder and is all
``load_variant`` needs.

Examples
--------
>>> spec = parse_variant_name("vgg16-bn-w0.25-imagenet-gender-s3")
>>> spec.batch_norm, spec.width, spec.pretrain, spec.task, spec.seed
(True, 0.25, 'imagenet', 'gender', 3)
>>> spec.name
'vgg16-bn-w0.25-imagenet-gender-s3'
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from stimuli.contracts.config import from_dict, load_yaml, require, to_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.variants import VariantName, parse_variant_name

from .architecture import TRAINABLE

__all__ = [
    "TASKS",
    "RESERVED_PRETRAIN",
    "VGGFACE_TOKEN",
    "Augment",
    "TrainConfig",
    "SplitConfig",
    "GridAxes",
    "FaceSource",
    "GridConfig",
    "VariantConfig",
    "load_grid",
    "expand_grid",
    "pretrain_token",
    "select_variants",
]

TASKS = ("gender", "identity")
RESERVED_PRETRAIN = ("none", "imagenet", "faces")
VGGFACE_TOKEN = "vggface"  # the name token of every ``vggface:PATH`` entry
# the name grammar (VariantName, parse_variant_name) lives in stimuli.contracts.variants: torch-free,
# so analysis reads names too; one definition


def pretrain_token(pretrain: str, where: str = "pretrain") -> str:
    """The name token of a pretraining entry.

    Parameters
    ----------
    pretrain : str
        ``none``, ``imagenet``, ``faces``, ``file:PATH`` or ``vggface:PATH``.
    where : str
        Names the entry in errors.

    Returns
    -------
    str
        The entry itself, a ``file:PATH``'s cleaned file stem, or ``vggface`` for a
        ``vggface:PATH`` (a VGG-Face file, see :mod:`model.vggface`).
    """
    if pretrain in RESERVED_PRETRAIN:
        return pretrain
    if pretrain.startswith("vggface:") and len(pretrain) > 8:
        return VGGFACE_TOKEN
    if pretrain.startswith("file:") and len(pretrain) > 5:
        token = re.sub(r"[^a-z0-9_]", "_", Path(pretrain[5:]).stem.lower()).strip("_") or "file"
        if token in RESERVED_PRETRAIN:
            raise InputError(f"{where}: file name '{Path(pretrain[5:]).name}' gives the reserved "
                             f"token '{token}'; rename the file")
        return token
    raise InputError(f"{where}: unknown pretraining '{pretrain}' "
                     f"(choose none, imagenet, faces, file:PATH or vggface:PATH)")


@dataclass
class Augment:
    """Training-image augmentation, drawn from the variant seed.

    Parameters
    ----------
    hflip : bool
        Mirror half the images (the feature cache holds both orientations).
    max_shift : float
        Random translation, as a fraction of the image side.
    """

    hflip: bool = False  # mirror half the images (the feature cache holds both orientations)
    max_shift: float = 0.0  # random translation, as a fraction of the image side

    def __post_init__(self):
        require(0 <= self.max_shift < 0.5, "max_shift", "must lie in [0, 0.5)")


@dataclass
class TrainConfig:
    """How one variant trains (the grid's ``train`` section).

    Parameters
    ----------
    trainable : str
        The part that trains (:data:`model.architecture.TRAINABLE`); the rest is frozen.
    optimizer : {"sgd", "adam"}
        The optimizer.
    lr, momentum, weight_decay : float
        Its settings (momentum: SGD only).
    epochs, batch_size : int
        Length of the run and images per step.
    schedule : {"constant", "cosine", "step"}
        The learning-rate schedule.
    step_size : int
        Epochs per decay of the ``step`` schedule.
    gamma : float
        Its decay factor.
    patience : int or None
        Early stopping: epochs without a better validation score.
    select : {"best", "last"}
        Weights kept: best validation epoch or last.
    balance : {"none", "weights", "sampler"}
        Against unequal class sizes.
    clip_grad_norm : float or None
        Clip the gradient's global norm.
    dropout : float
        Of the hidden FC layers.
    augment : Augment
        Training-image augmentation.
    cache_features : {"auto", "off"}
        The exact fast path for a frozen prefix.
    checkpoint_every : int
        Epochs between resumable checkpoints.
    eval_batch_size : int
        Images per evaluation pass.
    deterministic : bool
        Deterministic cuDNN on CUDA.
    """

    trainable: Literal[TRAINABLE] = "head"  # type: ignore[valid-type]
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0005
    epochs: int = 30
    batch_size: int = 32
    schedule: Literal["constant", "cosine", "step"] = "cosine"
    step_size: int = 10  # epochs per decay of the "step" schedule
    gamma: float = 0.1
    patience: int | None = None  # early stopping: epochs without a better validation score
    select: Literal["best", "last"] = "best"  # weights kept: best validation epoch or last
    balance: Literal["none", "weights", "sampler"] = "weights"  # against unequal class sizes
    clip_grad_norm: float | None = None  # clip the gradient's global norm (null: no clipping)
    dropout: float = 0.5
    augment: Augment = field(default_factory=Augment)
    cache_features: Literal["auto", "off"] = "auto"  # exact fast path for a frozen prefix
    checkpoint_every: int = 1  # epochs between resumable checkpoints
    eval_batch_size: int = 64
    deterministic: bool = True

    def __post_init__(self):
        require(self.lr > 0, "lr", "must be positive")
        require(0 <= self.momentum < 1, "momentum", "must lie in [0, 1)")
        require(self.weight_decay >= 0, "weight_decay", "must be non-negative")
        require(self.epochs >= 1, "epochs", "must be at least 1")
        require(self.batch_size >= 1, "batch_size", "must be at least 1")
        require(self.step_size >= 1, "step_size", "must be at least 1")
        require(0 < self.gamma <= 1, "gamma", "must lie in (0, 1]")
        require(self.patience is None or self.patience >= 1, "patience", "must be at least 1 (or null)")
        require(0 <= self.dropout < 1, "dropout", "must lie in [0, 1)")
        require(self.clip_grad_norm is None or self.clip_grad_norm > 0, "clip_grad_norm",
                "must be positive (or null)")
        require(self.checkpoint_every >= 1, "checkpoint_every", "must be at least 1")
        require(self.eval_batch_size >= 1, "eval_batch_size", "must be at least 1")


@dataclass
class SplitConfig:
    """The train/val/test split: the same for every variant of a grid.

    Drawn by :func:`stimuli.faces.make_split` from its own ``seed``, not the variant's.

    Parameters
    ----------
    seed : int
        Seed of the split.
    fractions : list of float
        Train, validation and test shares.
    gender : {"image", "identity"}
        Split kind of the gender task.
    identity : {"image"}
        Split kind of the identity task (every person must be seen in training).
    """

    seed: int = 0
    fractions: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    gender: Literal["image", "identity"] = "image"  # split kind of the gender task
    identity: Literal["image"] = "image"  # identity must see every person in training

    def __post_init__(self):
        require(len(self.fractions) == 3 and all(f >= 0 for f in self.fractions)
                and abs(sum(self.fractions) - 1) < 1e-6 and self.fractions[0] > 0,
                "fractions", "must be three non-negative numbers (train > 0) summing to 1")

    def kind(self, task: str) -> str:
        return self.gender if task == "gender" else self.identity


@dataclass
class GridAxes:
    """The axes a grid crosses: every combination is one variant.

    Parameters
    ----------
    arch : list of {"vgg16", "vgg16-bn"}
        Architectures.
    width : list of float
        Width multipliers.
    pretrain : list of str
        Pretraining entries (:func:`pretrain_token`).
    task : list of {"gender", "identity"}
        Tasks.
    seed : list of int
        Variant seeds.
    """

    arch: list[Literal["vgg16", "vgg16-bn"]] = field(default_factory=lambda: ["vgg16"])
    width: list[float] = field(default_factory=lambda: [1.0])
    pretrain: list[str] = field(default_factory=lambda: ["imagenet"])
    task: list[Literal["gender", "identity"]] = field(default_factory=lambda: ["gender", "identity"])
    seed: list[int] = field(default_factory=lambda: [0])

    def __post_init__(self):
        for key in ("arch", "width", "pretrain", "task", "seed"):
            values = getattr(self, key)
            require(len(values) >= 1, key, "needs at least one value")
            require(len(set(values)) == len(values), key, "lists a value twice")
        require(all(0 < w <= 1 for w in self.width), "width", "values must lie in (0, 1]")
        require(all(s >= 0 for s in self.seed), "seed", "values must be non-negative")


@dataclass
class FaceSource:
    """The face-pretraining source that ``pretrain: faces`` variants start from.

    It is trained like a variant, for identity on the grid's train split, and named
    ``<arch>[-w<width>]-<pretrain>-faces-s<seed>``.

    Parameters
    ----------
    pretrain : str
        Where the source itself starts.
    seed : int
        Its seed.
    train : dict
        Overrides of the grid's ``train`` section (e.g. more trainable layers).
    """

    pretrain: str = "imagenet"
    seed: int = 0
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        require(self.pretrain != "faces", "pretrain", "cannot be 'faces' (the source is the faces arm)")
        require(self.seed >= 0, "seed", "must be non-negative")


@dataclass
class GridConfig:
    """A grid YAML: data, input, split, the axes to cross and how to train.

    Read by :func:`load_grid` (e.g. ``model/configs/demo.yaml``); every field but ``stimuli`` has a default.

    Parameters
    ----------
    stimuli : str
        The prepared set.
    input_size : int
        Side of the square model input.
    imagenet_source : str
        ``auto``, ``torchvision``, ``onnx`` or a state_dict path.
    split : SplitConfig
        The split.
    grid : GridAxes
        The axes.
    train : TrainConfig
        The recipe.
    face_source : FaceSource or None
        The source of ``faces`` variants.
    """

    stimuli: str
    input_size: int = 224
    imagenet_source: str = "auto"  # auto | torchvision | onnx | PATH to a state_dict
    split: SplitConfig = field(default_factory=SplitConfig)
    grid: GridAxes = field(default_factory=GridAxes)
    train: TrainConfig = field(default_factory=TrainConfig)
    face_source: FaceSource | None = None

    def __post_init__(self):
        require(self.input_size >= 32, "input_size", "must be at least 32 (five 2x2 poolings)")
        require(bool(self.stimuli), "stimuli", "must name a prepared stimulus set")


@dataclass
class VariantConfig:
    """The resolved config of one variant (saved as its ``config.yaml``).

    Parameters
    ----------
    variant : str
        Its name.
    stimuli : str
        The prepared set.
    input_size : int
        Side of the square model input.
    pretrain : str
        ``none``, ``imagenet``, ``faces``, ``file:PATH`` or ``vggface:PATH``.
    imagenet_source : str
        Where ImageNet weights come from.
    split : SplitConfig
        The split.
    train : TrainConfig
        The recipe.
    face_source : str or None
        The source variant a ``faces`` variant starts from.
    classes : list of str or None
        Filled in when training starts.
    """

    variant: str
    stimuli: str
    input_size: int
    pretrain: str  # none | imagenet | faces | file:PATH | vggface:PATH
    imagenet_source: str
    split: SplitConfig
    train: TrainConfig
    face_source: str | None = None  # the source variant a ``faces`` variant starts from
    classes: list[str] | None = None  # filled in when training starts

    @property
    def spec(self) -> VariantName:
        return parse_variant_name(self.variant)

    def as_dict(self) -> dict[str, Any]:
        return to_dict(self)


def load_grid(path: str | os.PathLike) -> GridConfig:
    """Read and validate a grid YAML.

    Parameters
    ----------
    path : str or os.PathLike
        The grid YAML, e.g. ``model/configs/demo.yaml``.

    Returns
    -------
    GridConfig
        The grid (an invalid key or value is one InputError with a hint).
    """
    where = str(path)
    grid = from_dict(GridConfig, load_yaml(path), where)
    for i, entry in enumerate(grid.grid.pretrain):
        pretrain_token(entry, f"{where}: key 'grid.pretrain[{i}]'")
    if grid.face_source is not None:
        pretrain_token(grid.face_source.pretrain, f"{where}: key 'face_source.pretrain'")
    tokens = [pretrain_token(p) for p in grid.grid.pretrain]
    if len(set(tokens)) != len(tokens):
        raise InputError(f"{where}: key 'grid.pretrain' gives two entries the same name token")
    if "faces" in grid.grid.pretrain and grid.face_source is None:
        raise InputError(f"{where}: 'pretrain: faces' needs a 'face_source' section "
                         "(how the face-pretraining source is trained)")
    if "vgg16-bn" in grid.grid.arch and grid.imagenet_source == "onnx" and (
            "imagenet" in grid.grid.pretrain
            or (grid.face_source is not None and grid.face_source.pretrain == "imagenet"
                and "faces" in grid.grid.pretrain)):
        raise InputError(f"{where}: key 'imagenet_source' onnx holds plain vgg16 weights; "
                         "vgg16-bn needs torchvision or a state_dict path")
    if any(w != 1.0 for w in grid.grid.width) and "imagenet" in grid.grid.pretrain:
        raise InputError(f"{where}: key 'grid.width': ImageNet weights exist only for width 1.0")
    _check_vggface(grid, where)
    return grid


def _check_vggface(grid: GridConfig, where: str) -> None:
    """VGG-Face weights are plain VGG-16 at width 1.0: refuse other architectures up front."""
    entries = [p for p in grid.grid.pretrain if p.startswith("vggface:")]
    if grid.face_source is not None and grid.face_source.pretrain.startswith("vggface:") \
            and "faces" in grid.grid.pretrain:
        entries.append(grid.face_source.pretrain)
    if not entries:
        return
    if any(w != 1.0 for w in grid.grid.width):
        raise InputError(f"{where}: key 'grid.width': VGG-Face weights exist only for width 1.0")
    if "vgg16-bn" in grid.grid.arch:
        raise InputError(f"{where}: key 'grid.arch': VGG-Face weights are plain vgg16 (no batch norm)")


def _source_train(grid: GridConfig, where: str) -> TrainConfig:
    assert grid.face_source is not None
    merged = {**to_dict(grid.train), **grid.face_source.train}
    if isinstance(grid.face_source.train.get("augment"), dict):
        merged["augment"] = {**to_dict(grid.train.augment), **grid.face_source.train["augment"]}
    return from_dict(TrainConfig, merged, where, prefix="face_source.train.")


def expand_grid(grid: GridConfig, where: str = "config") -> list[VariantConfig]:
    """Every variant of a grid, face-pretraining sources first (they must train before use).

    Parameters
    ----------
    grid : GridConfig
        The grid.
    where : str
        The grid file, named in errors.

    Returns
    -------
    list of VariantConfig
        The variants.
    """
    sources: dict[str, VariantConfig] = {}
    variants: list[VariantConfig] = []
    axes = grid.grid
    for arch in axes.arch:
        for width in axes.width:
            for pretrain in axes.pretrain:
                token = pretrain_token(pretrain)
                source_name = None
                if pretrain == "faces":
                    fs = grid.face_source
                    assert fs is not None
                    spec = VariantName(arch == "vgg16-bn", width, pretrain_token(fs.pretrain), "faces", fs.seed)
                    source_name = spec.name
                    if source_name not in sources:
                        if fs.pretrain == "imagenet" and width != 1.0:
                            raise InputError(f"{where}: key 'face_source.pretrain': ImageNet weights "
                                             "exist only for width 1.0")
                        sources[source_name] = VariantConfig(
                            variant=source_name, stimuli=grid.stimuli, input_size=grid.input_size,
                            pretrain=fs.pretrain, imagenet_source=grid.imagenet_source,
                            split=replace(grid.split), train=_source_train(grid, where))
                for task in axes.task:
                    for seed in axes.seed:
                        spec = VariantName(arch == "vgg16-bn", width, token, task, seed)
                        variants.append(VariantConfig(
                            variant=spec.name, stimuli=grid.stimuli, input_size=grid.input_size,
                            pretrain=pretrain, imagenet_source=grid.imagenet_source,
                            split=replace(grid.split), train=replace(grid.train),
                            face_source=source_name))
    return list(sources.values()) + variants


def select_variants(variants: list[VariantConfig], only: list[str] | None, where: str) -> list[VariantConfig]:
    """The variants named by ``--only`` (all when None); an unknown name is an InputError.

    Parameters
    ----------
    variants : list of VariantConfig
        A grid's variants.
    only : list of str or None
        The names asked for.
    where : str
        The grid file, named in errors.

    Returns
    -------
    list of VariantConfig
        The selected variants, in grid order.
    """
    if not only:
        return variants
    by_name = {v.variant: v for v in variants}
    chosen = []
    for name in only:
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (it has {', '.join(list(by_name)[:4])} ...)"
            raise InputError(f"{where}: the grid has no variant '{name}'{hint}")
        if by_name[name] not in chosen:
            chosen.append(by_name[name])
    return chosen
