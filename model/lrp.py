"""LRP relevance maps (zennit) on the stimulus grid, with a conservation check on every map.

The maps of images held in memory; :mod:`model.explain_stream` streams a set into its
relevance file and :mod:`model.explain` is the command (and :func:`model.explain.ensure_maps`).

A method is one of zennit's composite names (``zennit.composites.COMPOSITES``: the default
``epsilon_plus_flat``, ``epsilon_gamma_box`` with its bounds taken from the model's input
normalisation, ``epsilon_alpha2_beta1_flat``, ...) or a baseline: ``gradient`` and
``gradient_x_input``. Batch-norm variants get zennit's ``VGGCanonizer``. The explained output is
the true class by default (``target="pred"``: the predicted one); the output relevance is
one-hot(target) x logit, so a conservative LRP map sums to the explained logit.

Composites that :mod:`model.lrp_fast` serves run through its exact hook-free sweep; the others
(and any network it does not recognise) through zennit's ``Gradient`` attributor, the
reference. Either way parameters get no gradients and the model is left exactly as it was
(mode, ``requires_grad``, no hooks).

Maps leave the model's input grid (3 x S x S) for the stimulus grid (H x W) by the adjoint of
the preprocessing resize, channels summed: total relevance per map is preserved exactly
whenever the resize reproduces a constant image (bilinear / antialiased interpolation does).

Examples
--------
>>> from model.architecture import build_vgg16
>>> from model.preprocess import to_model_input
>>> net = build_vgg16(2, width=0.0625)
>>> images = np.random.default_rng(0).random((3, 40, 40), dtype=np.float32)
>>> maps = explain_images(net, images, lambda im: to_model_input(im, 32), target=[0, 1, 0])
>>> maps.relevance.shape, maps.conservation["method"]
((3, 40, 40), 'epsilon_plus_flat')
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from zennit.attribution import Gradient
from zennit.composites import COMPOSITES
from zennit.torchvision import VGGCanonizer

from stimuli.contracts.errors import InputError

from .device import full_precision, select_device
from .frozen import frozen_eval
from .grid import ToInput, input_bounds, to_stimulus_grid
from .lrp_fast import SERVED_COMPOSITES, FastLRP, Unsupported

__all__ = [
    "DEFAULT_METHOD",
    "BASELINES",
    "CONSERVATION_TOLERANCE",
    "methods",
    "check_method",
    "make_composite",
    "Explainer",
    "conservation_check",
    "ExplainedMaps",
    "explain_images",
    "explain_batches",
    "collect_maps",
    "resolve_device",
]

DEFAULT_METHOD = "epsilon_plus_flat"
BASELINES = ("gradient", "gradient_x_input")
# |sum R / logit - 1| above this flags a map; bias-free networks are held to BIAS_FREE_TOLERANCE
CONSERVATION_TOLERANCE = 0.5
BIAS_FREE_TOLERANCE = 1e-3
# modified gradients, not relevance: no conservation to check (NaN/inf still flagged)
NON_CONSERVATIVE = ("gradient", "deconvnet", "guided_backprop", "beta_smooth")


def methods() -> list[str]:
    """Every valid method name: zennit's registered composites, then the baselines.

    Returns
    -------
    list of str
        Sorted composite names, then ``gradient`` and ``gradient_x_input``.
    """
    return sorted(COMPOSITES) + list(BASELINES)


def check_method(name: str) -> str:
    """``name`` if it is a valid method, else one InputError listing the valid ones.

    Parameters
    ----------
    name : str
        A composite or baseline name.

    Returns
    -------
    str
        ``name``.
    """
    valid = methods()
    if name not in valid:
        raise InputError(f"unknown composite '{name}'; valid: {', '.join(valid)}")
    return name


def _has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def _bias_free(net: nn.Module) -> bool:
    """No biases anywhere (and no batch norm): LRP must then conserve relevance to ~1e-5."""
    if _has_batch_norm(net):
        return False
    return all(getattr(m, "bias", None) is None or not bool(m.bias.detach().any())
               for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def make_composite(name: str, net: nn.Module, *, low: torch.Tensor | None = None,
                   high: torch.Tensor | None = None):
    """zennit composite ``name`` for ``net`` (BatchNorm canonizer when it has batch norm).

    Composites whose constructor takes ``low``/``high`` (``epsilon_gamma_box``) get the bounds.

    Parameters
    ----------
    name : str
        A zennit composite name (not a baseline).
    net : torch.nn.Module
        The network it is for.
    low, high : torch.Tensor, optional
        Model-input bounds (:func:`model.grid.input_bounds`).

    Returns
    -------
    zennit.core.Composite
        The composite, not yet registered.
    """
    check_method(name)
    if name in BASELINES:
        raise InputError(f"'{name}' is a baseline, not a zennit composite")
    cls = COMPOSITES[name]
    params = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {}
    if "low" in params:
        if low is None or high is None:
            raise InputError(f"composite '{name}' needs the model's input bounds (low, high)")
        kwargs.update(low=low, high=high)
    if _has_batch_norm(net) and "canonizers" in params:
        kwargs["canonizers"] = [VGGCanonizer()]
    return cls(**kwargs)


def _output_relevance(logits: torch.Tensor, target: torch.Tensor, scale_by_logit: bool) -> torch.Tensor:
    index = target.reshape(-1, 1)
    value = logits.detach().gather(1, index) if scale_by_logit else torch.ones_like(index, dtype=logits.dtype)
    return torch.zeros_like(logits).detach().scatter_(1, index, value)


class Explainer:
    """Relevance of one network for one method; built once, called per batch.

    Parameters
    ----------
    net
        The classifier (torchvision VGG for the fast path; anything zennit handles otherwise).
    method
        A name from :func:`methods`.
    low, high
        Model-input bounds (from :func:`model.grid.input_bounds`), needed by ``epsilon_gamma_box``.
    fast
        Use :mod:`model.lrp_fast` where it serves the method (zennit otherwise).

    Examples
    --------
    >>> from model.architecture import build_vgg16
    >>> explainer = Explainer(build_vgg16(2, width=0.0625))
    >>> logits, relevance = explainer(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    >>> explainer.backend, relevance.shape
    ('fast', torch.Size([2, 3, 32, 32]))
    """

    def __init__(self, net: nn.Module, method: str = DEFAULT_METHOD, *, low=None, high=None,
                 fast: bool = True) -> None:
        self.net = net
        self.method = check_method(method)
        self.low, self.high = low, high
        self.fast: FastLRP | None = None
        self.fallback_reason: str | None = None
        self.canonizer = "VGGCanonizer" if _has_batch_norm(net) and method not in BASELINES else None
        if method in BASELINES:
            self.backend = "autograd"
            return
        self.composite = make_composite(method, net, low=low, high=high)  # validates before any work
        self.backend = "zennit"
        if not fast:
            self.fallback_reason = "fast path switched off"
        elif method not in SERVED_COMPOSITES:
            self.fallback_reason = f"fast path does not serve '{method}'"
        else:
            try:
                self.fast = FastLRP(net, method, low=low, high=high)
                self.backend = "fast"
            except Unsupported as why:
                self.fallback_reason = str(why)

    @full_precision  # LRP in float32 even inside an AMP context: conservation
    def __call__(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, K) and relevance (N, C, S, S) of ``target`` (default: predicted class)."""
        if self.fast is not None:
            return self.fast(x, target)
        with frozen_eval(self.net):
            if target is None:
                with torch.inference_mode():
                    target = self.net(x).argmax(1)
            target = torch.as_tensor(target, device=x.device)
            x = x.detach().requires_grad_(True)
            if self.backend == "autograd":
                logits = self.net(x)
                (grad,) = torch.autograd.grad(logits, x, _output_relevance(logits, target, False))
                relevance = grad if self.method == "gradient" else grad * x.detach()
                return logits.detach(), relevance.detach()
            with Gradient(self.net, self.composite,
                          attr_output=lambda out: _output_relevance(out, target, True)) as attributor:
                logits, relevance = attributor(x)
        return logits.detach(), relevance.detach()


def conservation_check(total: np.ndarray, logit: np.ndarray, *, applicable: bool,
                       tolerance: float) -> dict[str, Any]:
    """Per-map ratio sum(R) / logit and which maps are far off or not finite.

    Parameters
    ----------
    total : numpy.ndarray
        Sum of each map.
    logit : numpy.ndarray
        The explained logit of each image.
    applicable : bool
        Whether the method conserves relevance (modified gradients do not).
    tolerance : float
        ``|ratio - 1|`` above this flags a map.

    Returns
    -------
    dict
        The JSON-ready summary stored in the relevance file's ``meta`` (ratios, flagged maps).
    """
    total = np.asarray(total, dtype=np.float64)
    logit = np.asarray(logit, dtype=np.float64)
    nonfinite = ~np.isfinite(total)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = total / logit
    off = applicable & (~np.isfinite(ratio) | (np.abs(ratio - 1.0) > tolerance))
    finite_ratio = ratio[np.isfinite(ratio)]
    return {
        "applicable": bool(applicable),
        "tolerance": float(tolerance),
        "ratio": [None if not math.isfinite(v) else float(v) for v in ratio],
        "median_ratio": float(np.median(finite_ratio)) if len(finite_ratio) else None,
        "max_abs_error": float(np.max(np.abs(finite_ratio - 1))) if len(finite_ratio) else None,
        "nonfinite": np.flatnonzero(nonfinite).tolist(),
        "far_off": np.flatnonzero(off & ~nonfinite).tolist(),
    }


@dataclass
class ExplainedMaps:
    """Maps on the stimulus grid with the explained logits and the conservation summary.

    Parameters
    ----------
    relevance : numpy.ndarray
        Maps (N, H, W), float32 (memory-mapped when streamed to a file).
    target : numpy.ndarray
        The explained class per image.
    prediction : numpy.ndarray
        The predicted class per image.
    logit : numpy.ndarray
        The explained logit per image.
    conservation : dict
        :func:`conservation_check`'s summary.
    backend : str
        ``fast``, ``zennit`` or ``autograd``.
    info : dict
        Grid, input size, bounds, canonizer and why the fast path was not used.
    """

    relevance: np.ndarray  # (N, H, W) float32
    target: np.ndarray
    prediction: np.ndarray
    logit: np.ndarray
    conservation: dict[str, Any]
    backend: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> list[int]:
        """Indices of maps that are not finite or far from conservation."""
        return sorted(set(self.conservation["nonfinite"]) | set(self.conservation["far_off"]))


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to explain on: :func:`model.device.select_device` (``auto``: cuda, else mps, else cpu).

    Parameters
    ----------
    device : str or torch.device, optional
        The requested device.

    Returns
    -------
    torch.device
        The device.
    """
    return select_device(device)


def _refuse_nonfinite(images: np.ndarray, first: int, ids: Sequence[str] | None) -> None:
    bad = np.flatnonzero(~np.isfinite(images).all(axis=(1, 2)))
    if len(bad):
        which = ids[first + bad[0]] if ids is not None else f"#{first + bad[0]}"
        raise InputError(f"image {which} contains NaN or infinite pixels; refusing to explain it")


def explain_batches(
    net: nn.Module,
    read: Callable[[int, int], np.ndarray],
    n: int,
    grid_shape: Sequence[int],
    to_input: ToInput,
    *,
    method: str = DEFAULT_METHOD,
    target: np.ndarray | None = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    fast: bool = True,
    ids: Sequence[str] | None = None,
    progress: bool = False,
    info: dict[str, Any] | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(start, maps, logits)`` batch by batch: ``read(start, stop)`` gives images ``start:stop``.

    Only one batch is held, so a set of any size streams (:mod:`model.explain_stream` writes
    each batch to the relevance file).

    Parameters
    ----------
    net : torch.nn.Module
        The classifier; moved to ``device``, otherwise unchanged.
    read : callable
        ``read(start, stop)`` -> grey images (k, H, W) in [0, 1].
    n : int
        Images in all.
    grid_shape : sequence of int
        The stimulus grid (H, W).
    to_input : callable
        The model's preprocessing.
    method, target, batch_size, device, fast, ids, progress
        As :func:`explain_images`.
    info : dict, optional
        Receives the backend, grid and input bounds before the first batch.

    Yields
    ------
    start : int
        Index of the batch's first image.
    maps : numpy.ndarray
        Its maps (k, H, W), float32 on the stimulus grid.
    logits : numpy.ndarray
        Its logits (k, K).
    """
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if target is not None and len(target) != n:
        raise InputError(f"{len(target)} targets for {n} images")
    device = torch.device(device)
    net.to(device)
    grid_shape = (int(grid_shape[0]), int(grid_shape[1]))
    low, high = input_bounds(to_input, grid_shape, device)
    explainer = Explainer(net, method, low=low, high=high, fast=fast)
    if info is not None:
        info.update(backend=explainer.backend, input_size=list(to_input(torch.zeros(1, *grid_shape, device=device)).shape[1:]),
                    grid=list(grid_shape), fallback_reason=explainer.fallback_reason, canonizer=explainer.canonizer,
                    low=low.flatten().tolist(), high=high.flatten().tolist())
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc=f"explain ({method})", unit="batch", disable=not progress, total=len(starts)):
        images = np.asarray(read(start, min(start + batch_size, n)), dtype=np.float32)
        _refuse_nonfinite(images, start, ids)
        x = to_input(torch.from_numpy(images).to(device))
        t = None if target is None else torch.from_numpy(target[start:start + len(images)]).to(device)
        logits, relevance = explainer(x, t)
        maps = to_stimulus_grid(relevance, to_input, grid_shape, low, high).cpu().numpy()
        yield start, maps, logits.float().cpu().numpy()


def collect_maps(net: nn.Module, totals: np.ndarray, logits: np.ndarray, target: np.ndarray | None,
                 info: dict[str, Any], *, method: str, tolerance: float,
                 relevance: np.ndarray | None = None) -> ExplainedMaps:
    """The explained classes, logits and conservation check of a finished run.

    Parameters
    ----------
    net : torch.nn.Module
        The classifier (whether it is bias-free sets the tolerance).
    totals : numpy.ndarray
        Sum of each map.
    logits : numpy.ndarray
        Logits (N, K).
    target : numpy.ndarray or None
        The explained classes (None: the predicted ones).
    info : dict
        What :func:`explain_batches` recorded (its ``backend`` is taken out).
    method : str
        The method.
    tolerance : float
        Conservation tolerance (bias-free networks: at most 1e-3).
    relevance : numpy.ndarray, optional
        The maps, when held in memory.

    Returns
    -------
    ExplainedMaps
        The run's maps and summary.
    """
    n = len(totals)
    prediction = logits.argmax(1) if n else np.zeros(0, np.int64)
    explained = target if target is not None else prediction
    logit = logits[np.arange(n), explained] if n else np.zeros(0, np.float32)
    bias_free = _bias_free(net)
    check = conservation_check(totals, logit, applicable=method not in NON_CONSERVATIVE,
                               tolerance=min(tolerance, BIAS_FREE_TOLERANCE) if bias_free else tolerance)
    check.update(method=method, bias_free=bias_free)
    info = dict(info)
    backend = info.pop("backend")
    return ExplainedMaps(relevance, np.asarray(explained, np.int64), prediction.astype(np.int64),
                         logit.astype(np.float32), check, backend, info)


def explain_images(
    net: nn.Module,
    images: np.ndarray,
    to_input: ToInput,
    *,
    method: str = DEFAULT_METHOD,
    target: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    fast: bool = True,
    tolerance: float = CONSERVATION_TOLERANCE,
    ids: Sequence[str] | None = None,
    progress: bool = False,
) -> ExplainedMaps:
    """Relevance maps of ``images`` (N, H, W) in [0, 1] on their own grid (held in memory;
    :func:`model.explain_stream.explain_to_file` streams a set of any size into its file).

    Parameters
    ----------
    net
        The classifier; it is moved to ``device`` and left there, otherwise unchanged.
    images
        Grey stimuli; a NaN or infinite pixel is refused (InputError naming the image).
    to_input
        The model's preprocessing: (N, H, W) tensor in [0, 1] -> (N, C, S, S) tensor.
    target
        Class index per image to explain; None explains the predicted class.
    tolerance
        Conservation tolerance (see :func:`conservation_check`); bias-free networks use
        at most 1e-3.
    ids
        Names used in error messages (stimulus ids).

    Returns
    -------
    ExplainedMaps
        Maps (N, H, W) on the images' grid, with the explained classes, logits and the
        conservation check.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise InputError(f"images must be (N, H, W), got shape {images.shape}")
    _refuse_nonfinite(images, 0, ids)  # all of them before any work
    if target is not None:
        target = np.asarray(target, dtype=np.int64).reshape(-1)
    out = np.empty(images.shape, dtype=np.float32)
    logits, info = [], {}
    for start, maps, batch_logits in explain_batches(
            net, lambda a, b: images[a:b], len(images), images.shape[1:], to_input, method=method, target=target,
            batch_size=batch_size, device=device, fast=fast, ids=ids, progress=progress, info=info):
        out[start:start + len(maps)] = maps
        logits.append(batch_logits)
    stacked = np.concatenate(logits) if logits else np.zeros((0, 0), np.float32)
    return collect_maps(net, out.sum(axis=(1, 2), dtype=np.float64), stacked, target, info, method=method,
                        tolerance=tolerance, relevance=out)
