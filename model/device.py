"""Which device runs, its numeric precision, and the torch.distributed set-up under ``torchrun``.

Automatic mixed precision (AMP) runs on CUDA only: bf16 where the GPU supports it, else fp16
with a gradient scaler. On the CPU (and MPS) every pass stays float32, exactly as without AMP.
``--no-amp`` (or ``MODEL_AMP=0`` in the environment, which cluster jobs inherit) switches it
off everywhere; LRP always runs in float32 (:func:`full_precision`), since conservation is a
float32 property.

Examples
--------
>>> select_device("cpu")
device(type='cpu')
>>> amp_dtype(torch.device("cpu")) is None  # float32 on the CPU
True
>>> with autocast(torch.device("cpu")):
...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
torch.float32
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from stimuli.contracts.errors import InputError

__all__ = ["select_device", "Distributed", "init_distributed", "set_amp", "amp_enabled", "amp_dtype",
           "autocast", "grad_scaler", "optimizer_step", "full_precision", "precision_name"]

_F = TypeVar("_F", bound=Callable[..., Any])
_AUTOCAST_KINDS = ("cuda", "cpu", "mps", "xpu")


def select_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` when given (``auto`` or None: cuda, else mps, else cpu).

    A requested device that is not available is an InputError.

    Parameters
    ----------
    name : str or torch.device, optional
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Returns
    -------
    torch.device
        The device to use.

    Examples
    --------
    >>> select_device("cpu")
    device(type='cpu')
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
    """This process's place in a data-parallel run (rank 0 of 1 when not distributed).

    Made by :func:`init_distributed` from the ``RANK`` and ``WORLD_SIZE`` that ``torchrun`` sets.

    Parameters
    ----------
    rank : int
        This process's rank.
    world_size : int
        Processes in the run.
    """

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

    Parameters
    ----------
    device : torch.device
        The device asked for.

    Returns
    -------
    dist : Distributed
        This process's place.
    device : torch.device
        Its device (``cuda:<local rank>`` on CUDA).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed(), device
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world), device


# ---------------------------------------------------------------------------- precision

_amp = os.environ.get("MODEL_AMP", "1").strip().lower() not in ("0", "off", "false", "no")


def set_amp(enabled: bool) -> None:
    """Switch automatic mixed precision on or off for this process (``--no-amp``).

    Also exported as ``MODEL_AMP`` so that child processes (local jobs) follow.

    Parameters
    ----------
    enabled : bool
        On or off.
    """
    global _amp
    _amp = bool(enabled)
    os.environ["MODEL_AMP"] = "1" if enabled else "0"


def amp_enabled() -> bool:
    """Whether AMP is switched on (it still only acts on CUDA).

    Returns
    -------
    bool
        The switch.
    """
    return _amp


def amp_dtype(device: torch.device | str, enabled: bool | None = None) -> torch.dtype | None:
    """The autocast dtype on ``device``: bf16 or fp16 on CUDA, None (float32) elsewhere or when off.

    Parameters
    ----------
    device : torch.device or str
        The device.
    enabled : bool, optional
        Override the switch (default: :func:`amp_enabled`).

    Returns
    -------
    torch.dtype or None
        The dtype.
    """
    device = torch.device(device)
    if not (amp_enabled() if enabled is None else enabled) or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def precision_name(device: torch.device | str, enabled: bool | None = None) -> str:
    """``bfloat16``, ``float16`` or ``float32``: what the passes on ``device`` compute in.

    Parameters
    ----------
    device : torch.device or str
        Where the passes run.
    enabled : bool, optional
        Override :func:`amp_enabled`.

    Returns
    -------
    str
        The name (recorded in metrics and provenance).

    Examples
    --------
    >>> precision_name("cpu")
    'float32'
    """
    dtype = amp_dtype(device, enabled)
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def autocast(device: torch.device | str, enabled: bool | None = None) -> contextlib.AbstractContextManager:
    """The autocast context of training and inference passes on ``device``.

    A no-op (float32) on the CPU, MPS or with AMP off; ``torch.autocast`` in :func:`amp_dtype`
    on CUDA.

    Parameters
    ----------
    device, enabled
        Where the passes run and the AMP override (:func:`amp_dtype`).

    Returns
    -------
    contextlib.AbstractContextManager
        The context.
    """
    dtype = amp_dtype(device, enabled)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def grad_scaler(device: torch.device | str, enabled: bool | None = None) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 autocast; None for bf16 and float32, which need none.

    Parameters
    ----------
    device, enabled
        The device and the override of the switch, as for :func:`amp_dtype`.

    Returns
    -------
    torch.amp.GradScaler or None
        The scaler.
    """
    if amp_dtype(device, enabled) != torch.float16:
        return None
    return torch.amp.GradScaler("cuda")


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler | None = None, *, clip_grad_norm: float | None = None,
                   parameters: Iterable[torch.nn.Parameter] | None = None) -> None:
    """One optimizer step on ``loss``: zero the gradients, backward, (clip,) step.

    With a scaler (fp16) the loss is scaled, the gradients unscaled before clipping, and a
    step with inf gradients is skipped; without one (float32, bf16) a plain step.

    Parameters
    ----------
    loss : torch.Tensor
        The scalar loss.
    optimizer : torch.optim.Optimizer
        The optimizer to step.
    scaler : torch.amp.GradScaler, optional
        :func:`grad_scaler`'s scaler (None: no scaling).
    clip_grad_norm : float, optional
        Clip the gradients of ``parameters`` to this total norm first.
    parameters : iterable of torch.nn.Parameter, optional
        What ``clip_grad_norm`` clips.

    Examples
    --------
    >>> w = torch.nn.Parameter(torch.ones(1))
    >>> optimizer_step((2 * w).sum(), torch.optim.SGD([w], lr=0.5))
    >>> w.item()
    0.0
    """
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:  # float32 or bf16
        loss.backward()
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
        optimizer.step()
    else:  # fp16: scale the loss, unscale before clipping, skip steps with inf gradients
        scaler.scale(loss).backward()
        if clip_grad_norm is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()


@contextlib.contextmanager
def _no_autocast() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for kind in _AUTOCAST_KINDS:
            try:
                active = torch.is_autocast_enabled(kind)
            except (RuntimeError, TypeError):  # a device type this build does not know
                continue
            if active:
                stack.enter_context(torch.autocast(device_type=kind, enabled=False))
        yield


def full_precision(fn: _F) -> _F:
    """Decorator: ``fn`` runs with every enclosing autocast switched off (float32 LRP).

    Parameters
    ----------
    fn : callable
        The function, to run in float32.

    Returns
    -------
    callable
        The wrapped function.

    Examples
    --------
    >>> @full_precision
    ... def product():
    ...     return (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     product()
    torch.float32
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _no_autocast():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
