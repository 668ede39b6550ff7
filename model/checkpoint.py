"""Resumable checkpoints of a training run: written every epoch, read back before any work.

A checkpoint holds the trainable part's weights, the optimizer and schedule, the RNG state and
the :class:`~model.trainer.RunState`; a run resumed from it (:func:`read_checkpoint`,
:func:`restore`) ends with the same weights as an uninterrupted one, because every epoch draws
from ``(seed, epoch)`` only. One made with another config is refused.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import atomic_write_bytes

from .config import VariantConfig
from .trainer import RunState, Trainer
from .weights import safe_load

__all__ = ["CHECKPOINT_FORMAT", "checkpoint_payload", "save_checkpoint", "read_checkpoint", "restore"]

CHECKPOINT_FORMAT = 1


def checkpoint_payload(config: VariantConfig, trainer: Trainer, state: RunState) -> dict[str, Any]:
    """What a checkpoint holds after an epoch.

    Parameters
    ----------
    config : VariantConfig
        The variant's config (a resumed run must have the same).
    trainer : Trainer
        The trainer (trainable weights, optimizer, schedule, scaler).
    state : RunState
        Where the run stands.

    Returns
    -------
    dict
        The payload for :func:`save_checkpoint`.
    """
    return {
        "format": CHECKPOINT_FORMAT,
        "variant": config.variant,
        "config": config.as_dict(),
        "trainable": trainer.trainable_state(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,  # informational: every epoch reseeds from (seed, epoch)
        "run": {"epoch": state.epoch, "history": state.history, "best_epoch": state.best_epoch,
                "best_key": state.best_key, "best_state": state.best_state,
                "bad_epochs": state.bad_epochs, "stopped": state.stopped, "seconds": state.seconds},
    }


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a crash midway leaves the last one).

    Parameters
    ----------
    path : Path
        The checkpoint file.
    payload : dict
        :func:`checkpoint_payload`'s dict.
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(path: Path, config: VariantConfig) -> dict[str, Any] | None:
    """An interrupted run's checkpoint, checked against the config before any expensive work.

    Parameters
    ----------
    path : Path
        The checkpoint file.
    config : VariantConfig
        The current config; a checkpoint made with another one is an InputError.

    Returns
    -------
    dict or None
        The payload; None when there is no checkpoint.
    """
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
    """Put a checkpoint's weights, optimizer and schedule into ``trainer``.

    Parameters
    ----------
    payload : dict
        :func:`read_checkpoint`'s payload.
    trainer : Trainer
        A trainer built from the same config.

    Returns
    -------
    RunState
        Where the interrupted run stood.
    """
    trainer.load_trainable_state(payload["trainable"])
    trainer.optimizer.load_state_dict(payload["optimizer"])
    trainer.scheduler.load_state_dict(payload["scheduler"])
    if trainer.scaler is not None and payload.get("scaler"):
        trainer.scaler.load_state_dict(payload["scaler"])
    run = payload["run"]
    return RunState(epoch=run["epoch"], history=list(run["history"]), best_epoch=run["best_epoch"],
                    best_key=run["best_key"], best_state=run["best_state"],
                    bad_epochs=run["bad_epochs"], stopped=run["stopped"], seconds=run["seconds"])
