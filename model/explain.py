"""LRP relevance maps (zennit) on the stimulus grid, with a conservation check on every map.

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

import argparse
import inspect
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from stimuli.errors import InputError, cli_errors
from stimuli.provenance import Provenance, file_sha256, read_provenance
from stimuli.relevance import (
    BASELINE_KINDS,
    SET_HASH_KEY,
    baseline_set,
    relevance_path,
    save_relevance,
)

from .device import full_precision
from .launch import add_execution_arguments, dispatch
from .lrp_fast import SERVED_COMPOSITES, FastLRP, Unsupported, frozen_eval

__all__ = [
    "DEFAULT_METHOD",
    "BASELINES",
    "CONSERVATION_TOLERANCE",
    "methods",
    "check_method",
    "make_composite",
    "input_bounds",
    "Explainer",
    "to_stimulus_grid",
    "conservation_check",
    "ExplainedMaps",
    "explain_images",
    "explain_variant",
    "resolve_device",
    "image_subset",
    "build_parser",
    "main",
]

DEFAULT_METHOD = "epsilon_plus_flat"
BASELINES = ("gradient", "gradient_x_input")
# |sum R / logit - 1| above this flags a map; bias-free networks are held to BIAS_FREE_TOLERANCE
CONSERVATION_TOLERANCE = 0.5
BIAS_FREE_TOLERANCE = 1e-3
# modified gradients, not relevance: no conservation to check (NaN/inf still flagged)
NON_CONSERVATIVE = ("gradient", "deconvnet", "guided_backprop", "beta_smooth")
ToInput = Callable[[torch.Tensor], torch.Tensor]


def methods() -> list[str]:
    """Every valid method name: zennit's registered composites, then the baselines."""
    from zennit.composites import COMPOSITES

    return sorted(COMPOSITES) + list(BASELINES)


def check_method(name: str) -> str:
    """``name`` if it is a valid method, else one InputError listing the valid ones."""
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
    """
    from zennit.composites import COMPOSITES
    from zennit.torchvision import VGGCanonizer

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


def input_bounds(to_input: ToInput, grid_shape: Sequence[int], device: torch.device | str = "cpu"):
    """Lowest and highest model-input values per channel, (1, C, 1, 1) each.

    They are the images of an all-black and an all-white stimulus under the model's own
    preprocessing, i.e. the range of the normalised pixel values (zennit's ZBox ``low``/``high``).
    """
    h, w = int(grid_shape[0]), int(grid_shape[1])
    with torch.no_grad():
        black = to_input(torch.zeros(1, h, w, device=device))
        white = to_input(torch.ones(1, h, w, device=device))
    low = black.amin(dim=(2, 3), keepdim=True)
    high = white.amax(dim=(2, 3), keepdim=True)
    return low, high


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
        Model-input bounds (from :func:`input_bounds`), needed by ``epsilon_gamma_box``.
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
        from zennit.attribution import Gradient

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


def to_stimulus_grid(relevance: torch.Tensor, to_input: ToInput, grid_shape: Sequence[int],
                     low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Model-input relevance (N, C, S, S) -> stimulus-grid relevance (N, H, W).

    Applies the adjoint (transpose) of the preprocessing's resize to the channel sum: the
    vector-Jacobian product of ``to_input`` with the relevance scaled by the per-channel std
    (``1 / (high - low)``), which cancels the normalisation and keeps the resize's transpose.
    """
    n = relevance.shape[0]
    h, w = int(grid_shape[0]), int(grid_shape[1])
    with torch.inference_mode(False), torch.enable_grad():  # callable from inside inference mode too
        cotangent = relevance / (high - low)
        grid = torch.zeros(n, h, w, device=relevance.device, requires_grad=True)
        out = to_input(grid)
        if out.shape != relevance.shape:
            raise ValueError(f"preprocessing gives {tuple(out.shape)}, relevance is {tuple(relevance.shape)}")
        (back,) = torch.autograd.grad(out, grid, cotangent)
    return back.detach()


def conservation_check(total: np.ndarray, logit: np.ndarray, *, applicable: bool,
                       tolerance: float) -> dict[str, Any]:
    """Per-map ratio sum(R) / logit and which maps are far off or not finite.

    Returns the JSON-ready summary stored in the relevance file's ``meta``.
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
    """Maps on the stimulus grid with the explained logits and the conservation summary."""

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
    """The device to explain on: :func:`model.device.select_device` (``auto``: cuda, else mps, else cpu)."""
    from .device import select_device

    return select_device(device)


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
    """Relevance maps of ``images`` (N, H, W) in [0, 1] on their own grid.

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
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise InputError(f"images must be (N, H, W), got shape {images.shape}")
    bad = np.flatnonzero(~np.isfinite(images).all(axis=(1, 2)))
    if len(bad):
        which = ids[bad[0]] if ids is not None else f"#{bad[0]}"
        raise InputError(f"image {which} contains NaN or infinite pixels; refusing to explain it")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    n = len(images)
    if target is not None:
        target = np.asarray(target, dtype=np.int64).reshape(-1)
        if len(target) != n:
            raise InputError(f"{len(target)} targets for {n} images")
    device = torch.device(device)
    net.to(device)
    grid_shape = images.shape[1:]
    low, high = input_bounds(to_input, grid_shape, device)
    explainer = Explainer(net, method, low=low, high=high, fast=fast)
    out = np.empty((n, *grid_shape), dtype=np.float32)
    logits_all = []
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc=f"explain ({method})", unit="batch", disable=not progress,
                      total=len(starts)):
        batch = torch.from_numpy(images[start:start + batch_size]).to(device)
        x = to_input(batch)
        t = None if target is None else torch.from_numpy(target[start:start + batch_size]).to(device)
        logits, relevance = explainer(x, t)
        out[start:start + len(batch)] = to_stimulus_grid(relevance, to_input, grid_shape, low, high).cpu().numpy()
        logits_all.append(logits.float().cpu())
    logits = torch.cat(logits_all).numpy() if logits_all else np.zeros((0, 0), np.float32)
    prediction = logits.argmax(1) if n else np.zeros(0, np.int64)
    explained = target if target is not None else prediction
    logit = logits[np.arange(n), explained] if n else np.zeros(0, np.float32)
    bias_free = _bias_free(net)
    applicable = method not in NON_CONSERVATIVE
    check = conservation_check(out.sum(axis=(1, 2), dtype=np.float64), logit, applicable=applicable,
                               tolerance=min(tolerance, BIAS_FREE_TOLERANCE) if bias_free else tolerance)
    check.update(method=method, bias_free=bias_free)
    info = {"input_size": list(to_input(torch.zeros(1, *grid_shape, device=device)).shape[1:]),
            "grid": list(grid_shape), "fallback_reason": explainer.fallback_reason,
            "canonizer": explainer.canonizer, "low": low.flatten().tolist(), "high": high.flatten().tolist()}
    return ExplainedMaps(out, np.asarray(explained, np.int64), prediction.astype(np.int64),
                         logit.astype(np.float32), check, explainer.backend, info)


# --------------------------------------------------------------------------- variants and files


def _true_targets(variant, manifest) -> np.ndarray:
    task = variant.task
    if task not in manifest.columns:
        raise InputError(f"the stimulus manifest has no '{task}' column for the true class; use --target pred")
    classes = [str(c) for c in variant.classes]
    lookup = {c: i for i, c in enumerate(classes)}
    labels = manifest[task].astype(str).tolist()
    missing = [(sid, lab) for sid, lab in zip(manifest.stimulus_id, labels) if lab not in lookup]
    if missing:
        sid, lab = missing[0]
        raise InputError(f"stimulus '{sid}': {task} '{lab}' is not a class of the variant "
                         f"({len(missing)} such stimuli); use --target pred")
    return np.array([lookup[lab] for lab in labels], dtype=np.int64)


def explain_variant(variant, stimuli, *, method: str = DEFAULT_METHOD, target_rule: str = "true",
                    batch_size: int = 16, device: torch.device | str = "cpu", fast: bool = True,
                    tolerance: float = CONSERVATION_TOLERANCE, progress: bool = False) -> ExplainedMaps:
    """Maps of a loaded variant (``model.load_variant``) on a prepared set (``load_prepared_set``)."""
    if target_rule not in ("true", "pred"):
        raise InputError(f"target must be 'true' or 'pred', got '{target_rule}'")
    target = _true_targets(variant, stimuli.manifest) if target_rule == "true" else None
    return explain_images(variant.net, stimuli.images, variant.to_input, method=method, target=target,
                          batch_size=batch_size, device=device, fast=fast, tolerance=tolerance,
                          ids=list(stimuli.manifest.stimulus_id), progress=progress)


def _set_hash(path: Path, stimuli: str) -> str | None:
    """Content hash of the set the maps are of: ``<results>/stimuli/<set>`` next to the contract path."""
    from stimuli.prepared import load_prepared_set, prepared_set_dir

    results = Path(path).parent.parent.parent
    if not (prepared_set_dir(stimuli, results) / "manifest.csv").is_file():
        return None
    return load_prepared_set(stimuli, results).content_hash


def write_maps(maps: ExplainedMaps, path: Path, *, variant: str, stimuli: str, target_rule: str,
               stimulus_id: Sequence[str], extra: dict[str, Any] | None = None,
               set_hash: str | None = None) -> Path:
    """Save maps through the contract's writer, the conservation check in ``meta``.

    ``meta`` records the prepared set's content hash (``set_hash``, else that of
    ``<results>/stimuli/<stimuli>`` for a contract ``path``), so maps of an older version
    of the set are refused later.
    """
    import zennit

    check = dict(maps.conservation)
    check["far_off_ids"] = [str(stimulus_id[i]) for i in check["far_off"]]
    check["nonfinite_ids"] = [str(stimulus_id[i]) for i in check["nonfinite"]]
    meta = {
        "variant": variant,
        "stimuli": stimuli,
        "composite": check["method"],
        "canonizer": maps.info.get("canonizer"),
        "target_rule": target_rule,
        "backend": maps.backend,
        "zennit": getattr(zennit, "__version__", None) or _version("zennit"),
        "resampling": "adjoint of the preprocessing resize, colour channels summed (sum-preserving)",
        "conservation": check,
        "flagged": len(maps.flagged),
        SET_HASH_KEY: set_hash or _set_hash(path, stimuli),
        **maps.info,
        **(extra or {}),
    }
    return save_relevance(path, maps.relevance, stimulus_id, maps.target, maps.prediction, maps.logit, meta)


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def summary_line(maps: ExplainedMaps) -> str:
    """One printed line: how many maps, backend, conservation, flags."""
    c = maps.conservation
    head = f"{len(maps.relevance)} maps ({c['method']}, {maps.backend})"
    if not c["applicable"]:
        cons = "conservation: not applicable"
    elif c["median_ratio"] is None:
        cons = "conservation: no finite map"
    else:
        cons = (f"sum R / logit: median {c['median_ratio']:.4f}, max |ratio - 1| {c['max_abs_error']:.2e} "
                f"(tolerance {c['tolerance']:g})")
    flags = f"FLAGGED {len(maps.flagged)} map(s): {len(c['nonfinite'])} not finite, {len(c['far_off'])} far off" \
        if maps.flagged else "none flagged"
    return f"{head}; {cons}; {flags}"


def _record_provenance(folder: Path, prov: Provenance, stimuli: str, output: Path) -> None:
    """One provenance.json per relevance folder; each set's run is kept under ``runs``."""
    runs: dict[str, Any] = {}
    if (folder / "provenance.json").is_file():
        try:
            runs = dict(read_provenance(folder).get("runs", {}))
        except (OSError, json.JSONDecodeError, AttributeError):
            runs = {}
    runs[stimuli] = {"command": prov.command, "config": prov.config, "started": prov.started,
                     "output": output.name, "sha256": file_sha256(output)}
    prov.extra["runs"] = runs
    prov.write(folder)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m model explain")
    parser.description = ("Relevance maps (LRP with zennit, or a gradient baseline) of one variant on a "
                          "prepared stimulus set, written to <out>/relevance/<variant>/<set>.npz.")
    parser.add_argument("--variant", required=True, help="variant name, e.g. vgg16-imagenet-gender-s0")
    parser.add_argument("--stimuli", required=True, help="prepared stimulus set name (python -m stimuli prepare)")
    parser.add_argument("--composite", default=DEFAULT_METHOD,
                        help=f"zennit composite name or baseline (default {DEFAULT_METHOD}; "
                             "gradient, gradient_x_input; unknown names list the valid ones)")
    parser.add_argument("--target", choices=("true", "pred"), default="true",
                        help="explain the true class (default) or the predicted one")
    parser.add_argument("--out", default="results", help="results root to read from and write to (default results)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch (default 16)")
    parser.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    parser.add_argument("--tolerance", type=float, default=CONSERVATION_TOLERANCE,
                        help="flag maps with |sum R / logit - 1| above this (default 0.5; 1e-3 for bias-free nets)")
    parser.add_argument("--reference", action="store_true",
                        help="use zennit's hooks even where the fast exact path serves the composite")
    parser.add_argument("--baseline", choices=BASELINE_KINDS, nargs="+", metavar="KIND",
                        help="explain null models instead: 'untrained' (the variant's trained layers "
                             "re-initialised, not trained) and/or 'random' (every layer re-initialised); "
                             "each written to <set>.baseline-<kind>.npz next to the variant's maps")
    parser.add_argument("--baseline-seed", type=int, default=0,
                        help="seed of the baseline's re-initialisation (mixed with the variant name; default 0)")
    parser.add_argument("--images", type=int, default=None,
                        help="explain a seeded random subset of this many images (default: all)")
    parser.add_argument("--image-seed", type=int, default=0, help="seed of the --images subset (default 0)")
    add_execution_arguments(parser)  # --no-amp, --launcher local|slurm: one job for the variant
    return parser


def image_subset(n_total: int, n: int | None, seed: int = 0) -> np.ndarray:
    """Rows of a seeded subset of ``n`` of ``n_total`` images, in set order (all when ``n`` is None).

    The same ``(n, seed)`` picks the same images for every variant, so maps of a subset pair up.

    Examples
    --------
    >>> image_subset(10, 3, seed=1).tolist() == image_subset(10, 3, seed=1).tolist()
    True
    """
    if n is None or n >= n_total:
        return np.arange(n_total)
    if n < 1:
        raise InputError(f"--images must be at least 1, got {n}")
    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


def _subset(stimuli, rows: np.ndarray):
    """A prepared set restricted to ``rows`` (images and manifest) for explaining."""
    from types import SimpleNamespace

    return SimpleNamespace(images=stimuli.images[rows], manifest=stimuli.manifest.iloc[rows].reset_index(drop=True))


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (code := dispatch("explain", args, sys.argv[1:] if argv is None else argv)) is not None:
        return code
    from stimuli.prepared import load_prepared_set

    from . import load_variant

    check_method(args.composite)
    device = resolve_device(args.device)
    stimuli = load_prepared_set(args.stimuli, args.out)
    variant = load_variant(args.variant, args.out, device)
    rows = image_subset(len(stimuli.manifest), args.images, args.image_seed)
    chosen = _subset(stimuli, rows) if len(rows) < len(stimuli.manifest) else stimuli
    for kind in args.baseline or [None]:  # one run per baseline kind, the variant loaded once
        extra: dict[str, Any] = {}
        explained, set_name = variant, args.stimuli
        if kind:
            from .sanity import baseline_variant

            explained, extra["baseline"] = baseline_variant(variant, kind, seed=args.baseline_seed)
            set_name = baseline_set(args.stimuli, kind)
        if len(rows) < len(stimuli.manifest):
            extra["images"] = {"n": len(rows), "of": len(stimuli.manifest), "seed": args.image_seed}
        prov = Provenance(config={**vars(args), "baseline": kind},
                          seeds={"baseline": args.baseline_seed, "images": args.image_seed})
        prov.add_input(stimuli.folder / "manifest.csv")
        model_file = Path(args.out) / "models" / args.variant / "model.pt"
        if model_file.is_file():
            prov.add_input(model_file)
        started = time.perf_counter()
        maps = explain_variant(explained, chosen, method=args.composite, target_rule=args.target,
                               batch_size=args.batch_size, device=device, fast=not args.reference,
                               tolerance=args.tolerance, progress=True)
        path = relevance_path(args.variant, set_name, args.out)
        write_maps(maps, path, variant=args.variant, stimuli=args.stimuli, target_rule=args.target,
                   stimulus_id=list(chosen.manifest.stimulus_id), set_hash=stimuli.content_hash, extra=extra)
        _record_provenance(path.parent, prov, set_name, path)
        print(summary_line(maps))
        print(f"wrote {path} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
