"""Which device runs, and the torch.distributed set-up under ``torchrun``.

Examples
--------
>>> select_device("cpu")
device(type='cpu')
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from stimuli.errors import InputError

__all__ = ["select_device", "Distributed", "init_distributed"]


def select_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` when given (``auto`` or None: cuda, else mps, else cpu).

    A requested device that is not available is an InputError.
    """
    if name is None or str(name) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"--device: unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device: '{name}' requested but no CUDA GPU is available (use cpu or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"--device: '{name}' does not exist ({torch.cuda.device_count()} GPU(s))")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"--device: '{name}' requested but MPS is not available (use cpu or auto)")
    return device


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1), else stay single.

    Backend nccl on CUDA (one GPU per local rank), gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(), device
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world), device
