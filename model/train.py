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
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as tdist
import yaml
from tqdm.auto import tqdm

from stimuli.contracts.cli import command_parser
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.outputs import atomic_output_dir
from stimuli.contracts.provenance import Provenance, atomic_write_json, record_run

from .checkpoint import checkpoint_payload, read_checkpoint, restore, save_checkpoint
from .config import VariantConfig, expand_grid, load_grid, select_variants
from .data import TrainData, load_train_data
from .device import Distributed, init_distributed, select_device, set_amp
from .launch import add_execution_arguments, dispatch
from .options import add_results_root
from .plan import print_plan
from .trainer import SINGLE, RunState, Trainer, initial_network
from .variants import (
    is_trained,
    read_variant_config,
    resume_dir,
    variant_dir,
    variant_file_hashes,
)

__all__ = ["TRAIN_COMMAND", "train_variant", "train_grid"]


TRAIN_COMMAND = "model train"  # recorded in provenance.json: only this command replaces a variant folder


# ---------------------------------------------------------------------------- one variant

DESCRIPTION = (  # the command's --help text
    "Train the VGG-16 variants of a grid YAML into <out>/models/<variant>/ "
    "(model.pt, config.yaml, metrics.json, split.csv, provenance.json). Finished "
    "variants are skipped; an interrupted one resumes from its last epoch. "
    "Under torchrun the training is data-parallel.")


def _check_face_source_split(config: VariantConfig, data: TrainData, results: Path) -> None:
    """A faces variant must not be tested on images its face source trained on."""
    source = variant_dir(config.face_source, results)
    split_file = source / "split.csv"
    if not split_file.is_file():
        return
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

    Parameters
    ----------
    config : VariantConfig
        The variant.
    results : str or Path
        The results root (its set, face sources, and where it is written).
    device : torch.device or str, optional
        Where it trains (default: auto).
    dist : Distributed
        The process group under ``torchrun`` (default: one process).
    grid_file : str, optional
        The grid YAML (recorded, and named in hints).
    after_epoch : callable, optional
        ``after_epoch(epoch)`` runs after each epoch's checkpoint (tests use it to simulate an
        interruption).
    progress : bool
        Show progress bars.
    command : list of str, optional
        The command line recorded in ``provenance.json``.

    Returns
    -------
    Path
        The variant folder.
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
            save_checkpoint(ckpt_file, checkpoint_payload(config, trainer, run))

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
        "device": str(device), "world_size": dist.world_size, "precision": trainer.precision,
    }
    for path in (data.stimuli.folder / "manifest.csv", data.stimuli.folder / "set.json",
                 *weight_files, *([Path(grid_file)] if grid_file else [])):
        if Path(path).is_file():
            prov.add_input(path)
    prov.extra.update(pretrained=pretrained, device=str(device), world_size=dist.world_size,
                      precision=trainer.precision,
                      feature_cache=trainer.cached, resumed_from_epoch=resumed_from or None,
                      wall_seconds=time.perf_counter() - started)
    with atomic_output_dir(final, replace=True, command=TRAIN_COMMAND, protect=[results]) as work:
        torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, work / "model.pt")
        (work / "config.yaml").write_text(yaml.safe_dump(config.as_dict(), sort_keys=False))
        data.split.to_csv(work / "split.csv", index=False)
        atomic_write_json(work / "metrics.json", metrics)
        prov.extra["variant_files"] = variant_file_hashes(work)  # load_variant refuses a changed config or model
        record_run(work, prov)
    shutil.rmtree(partial, ignore_errors=True)
    if progress:
        test = final_scores["test"][trainer.metric]
        tqdm.write(f"{name}: test {trainer.metric.replace('_', ' ')} {test:.3f} "
                   f"(epoch {metrics['selected_epoch']}, {state.seconds:.0f} s training) -> {final}")
    return final


def train_grid(config_file: str | Path, results: str | Path = "results", *, only: Sequence[str] | None = None,
               device: str | None = None, progress: bool = True) -> list[Path]:
    """Train every (or each ``only``) variant of a grid YAML, face sources first.

    Parameters
    ----------
    config_file : str or Path
        The grid YAML.
    results : str or Path
        The results root.
    only : sequence of str, optional
        Train only these variants.
    device : str, optional
        Where to train (default: auto; one GPU per process under ``torchrun``).
    progress : bool
        Show progress bars.

    Returns
    -------
    list of Path
        The variant folders.
    """
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
            tdist.barrier()
    return folders


# ---------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m model train`` (its ``--help``)."""
    parser = command_parser("model", "train", DESCRIPTION)
    parser.add_argument("config", help="grid YAML, e.g. model/configs/demo.yaml")
    parser.add_argument("--only", nargs="+", metavar="VARIANT",
                        help="train only these variants of the grid (e.g. one per cluster array job)")
    add_results_root(parser)
    parser.add_argument("--list", action="store_true", help="print the grid's variant names and exit")
    parser.add_argument("--plan", action="store_true",
                        help="print, without training, each variant's trainable parameters, images per "
                             "epoch and the measured seconds per training step on --device, and exit")
    parser.add_argument("--plan-steps", type=int, default=2, metavar="N",
                        help="timed steps per architecture in --plan, after one warm-up step (default 2)")
    add_execution_arguments(parser)
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m model train`` with ``argv`` (default: the command line); the exit status."""
    args = build_parser().parse_args(argv)
    if args.list:
        where = str(args.config)
        for config in select_variants(expand_grid(load_grid(args.config), where), args.only, where):
            print(config.variant)
        return 0
    argv = list(sys.argv[1:] if argv is None else argv)
    if args.plan:
        if args.no_amp:
            set_amp(False)
        print_plan(args.config, args.out, only=args.only, device=args.device, steps=args.plan_steps)
        return 0
    code = dispatch("train", args, argv)
    if code is not None:
        return code
    started = time.perf_counter()
    folders = train_grid(args.config, args.out, only=args.only, device=args.device)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{len(folders)} variant(s) ready in {Path(args.out) / 'models'} "
              f"({math.ceil(time.perf_counter() - started)} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
