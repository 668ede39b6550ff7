"""Running a model without leaving a trace: eval mode, no gradients, the same tensors afterwards.

zennit's canonizers and rule hooks, and :mod:`model.lrp_fast`'s batch-norm merge, change a
network while they work; these context managers give it back exactly as it was (training
flags, ``requires_grad``, the parameter and buffer objects themselves).

Examples
--------
>>> net = nn.Linear(2, 1)
>>> with frozen_eval(net):
...     net.training
False
>>> net.training
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["preserved", "frozen_eval"]


@contextlib.contextmanager
def preserved(net: nn.Module) -> Iterator[nn.Module]:
    """Whatever happens inside, every module ends with the parameter and buffer objects it began with.

    zennit's canonizers and parameter modifiers swap tensors on modules while they work; zennit
    1.0 does it by re-assigning (``load_state_dict(assign=True)``, ``object.__setattr__``), which
    can leave new Parameter objects, merged batch-norm weights in the state dict, or instance
    attributes shadowing parameters behind. This puts the original objects back.

    Parameters
    ----------
    net : torch.nn.Module
        The network to protect.

    Yields
    ------
    torch.nn.Module
        ``net`` itself.
    """
    snapshot = [(m, dict(m._parameters), dict(m._buffers),
                 {k for k in vars(m) if k in m._parameters or k in m._buffers}) for m in net.modules()]
    try:
        yield net
    finally:
        for m, params, buffers, shadowed in snapshot:
            for key in [k for k in vars(m) if (k in params or k in buffers) and k not in shadowed]:
                del m.__dict__[key]
            m._parameters.clear()
            m._parameters.update(params)
            m._buffers.clear()
            m._buffers.update(buffers)


@contextlib.contextmanager
def frozen_eval(net: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and parameters without gradients for the duration; the model is restored afterwards.

    Restored: each module's training flag, each parameter's ``requires_grad`` and the parameter
    and buffer objects themselves (:func:`preserved`).

    Parameters
    ----------
    net : torch.nn.Module
        The network to run.

    Yields
    ------
    torch.nn.Module
        ``net`` itself, in eval mode with frozen parameters.

    Examples
    --------
    >>> net = nn.Linear(2, 1)
    >>> with frozen_eval(net):
    ...     net.weight.requires_grad
    False
    >>> net.weight.requires_grad, net.training
    (True, True)
    """
    modes = {m: m.training for m in net.modules()}
    grads = {p: p.requires_grad for p in net.parameters()}
    with preserved(net):
        try:
            net.eval()
            for p in grads:
                p.requires_grad_(False)
            yield net
        finally:
            for m, mode in modes.items():
                m.train(mode)
            for p, flag in grads.items():
                p.requires_grad_(flag)
