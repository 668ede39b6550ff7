"""Model RDMs: how (dis)similar a variant finds each pair of faces, written for ``analysis``.

Three kinds of representational dissimilarity matrix (RDM) per variant, over every stimulus
of a prepared set:

* **activation** RDMs, one per layer: the distance between two faces' activation patterns
  (``correlation`` distance 1 - Pearson r by default, or ``euclidean`` / ``cosine``).
  Layers are flat layer names (``features.29``, ``classifier.4``, see
  :func:`model.architecture.flat_layers`) or aliases: ``pool1`` ... ``pool5`` (the max-pool
  closing each conv block), ``fc6`` and ``fc7`` (the ReLU after the first / second hidden
  FC layer), ``penultimate`` (= ``fc7``, the input of the output layer) and ``logits``;
* a **confusion** RDM (identity variants): ``1 - (p_i[id_j] + p_j[id_i]) / 2`` where ``p_i``
  is the softmax output for face i and ``id_j`` the class of face j's identity: two faces are
  alike when the model mistakes each for the other's identity. When some identity of the set
  is not a class of the variant, the Jensen-Shannon distance between the softmax outputs is
  used instead (recorded in the file's meta);
* a **relevance** RDM: the distance between two faces' LRP relevance maps (the variant's
  ``model explain`` output for the set).

``python -m model rdm --variant V --stimuli SET`` writes ``<out>/rdm/<V>/<SET>.npz`` through
:func:`stimuli.contracts.rdm.save_rdms` (the file contract) and a ``provenance.json`` beside it.

Examples
--------
>>> from model.architecture import build_vgg16
>>> from model.preprocess import to_model_input
>>> net = build_vgg16(3, width=0.0625).eval()
>>> images = np.random.default_rng(0).random((4, 32, 32), dtype=np.float32)
>>> feats = activations(net, images, ["pool5", "penultimate"], lambda x: to_model_input(x, 32))
>>> {name: f.shape for name, f in feats.items()}
{'pool5': (4, 32), 'penultimate': (4, 256)}
>>> distance_matrix(np.eye(3), "euclidean").round(3)
array([[0.   , 1.414, 1.414],
       [1.414, 0.   , 1.414],
       [1.414, 1.414, 0.   ]])
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.distance import pdist, squareform
from torch import nn
from tqdm.auto import tqdm

from stimuli.contracts.cli import command_parser
from stimuli.contracts.errors import InputError, cli_errors
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.provenance import Provenance, record_run
from stimuli.contracts.rdm import rdm_path, save_rdms
from stimuli.contracts.relevance import load_relevance, relevance_path

from .architecture import flat_layers
from .lrp import resolve_device
from .options import add_results_root
from .variants import load_variant

__all__ = [
    "METRICS",
    "KINDS",
    "DEFAULT_LAYERS",
    "layer_aliases",
    "resolve_layer",
    "activations",
    "distance_matrix",
    "confusion_rdm",
    "relevance_rdm",
    "variant_rdms",
    "variant_features",
    "build_parser",
]


METRICS = ("correlation", "euclidean", "cosine")
KINDS = ("activation", "confusion", "relevance")
DEFAULT_LAYERS = ("pool3", "pool4", "pool5", "fc6", "penultimate")


DESCRIPTION = (  # the command's --help text
    "Representational dissimilarity matrices (RDMs) of variants over a prepared "
    "stimulus set: layer activations, output confusion (identity variants) and "
    "relevance maps; written to <out>/rdm/<variant>/<set>.npz.")


def layer_aliases(net: nn.Module) -> dict[str, str]:
    """Short names of the layers an RDM can be taken from.

    Parameters
    ----------
    net : torch.nn.Module
        A VGG-16 of the platform (any width, with or without batch norm).

    Returns
    -------
    dict of str to str
        Alias -> flat layer name: ``pool1``..``pool5``, ``fc6``, ``fc7`` (the ReLUs after them),
        ``penultimate`` (= ``fc7``) and ``logits``.
    """
    layers = flat_layers(net)
    pools = [name for name, m in layers if isinstance(m, nn.MaxPool2d)]
    aliases = {f"pool{i + 1}": name for i, name in enumerate(pools)}
    classifier = [(name, m) for name, m in layers if name.startswith("classifier.")]
    relus = [name for name, m in classifier if isinstance(m, nn.ReLU)]
    linears = [name for name, m in classifier if isinstance(m, nn.Linear)]
    if len(relus) >= 2:
        aliases.update(fc6=relus[-2], fc7=relus[-1], penultimate=relus[-1])
    if linears:
        aliases["logits"] = linears[-1]
    return aliases


def resolve_layer(net: nn.Module, layer: str) -> tuple[str, nn.Module]:
    """A layer alias or flat name -> (flat name, module); an unknown name is one InputError.

    Parameters
    ----------
    net : torch.nn.Module
        The network.
    layer : str
        An alias (:func:`layer_aliases`) or a flat layer name.

    Returns
    -------
    name : str
        The flat name.
    module : torch.nn.Module
        The layer.
    """
    aliases = layer_aliases(net)
    modules = {name: m for name, m in flat_layers(net) if name != "flatten"}
    name = aliases.get(layer, layer)
    if name not in modules:
        raise InputError(f"unknown layer '{layer}' (use {', '.join(aliases)} or a flat layer name such as "
                         f"{next(iter(modules))} ... {list(modules)[-1]})")
    return name, modules[name]


def activations(net: nn.Module, images: np.ndarray, layers: Sequence[str],
                to_input: Callable[[np.ndarray], torch.Tensor], *, batch_size: int = 32,
                progress: bool = False) -> dict[str, np.ndarray]:
    """Flattened activations (N, F) float32 of ``layers`` for grey stimuli (N, H, W) in [0, 1].

    One forward pass per batch, with forward hooks that copy each layer's output (the
    network is left as it was: eval mode is the caller's, the hooks are removed).

    Parameters
    ----------
    net : torch.nn.Module
        The network.
    images : numpy.ndarray
        Grey stimuli (N, H, W).
    layers : sequence of str
        Aliases or flat layer names.
    to_input : callable
        The model's preprocessing.
    batch_size : int
        Images per pass.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict of str to numpy.ndarray
        Layer (as asked) -> activations (N, F).
    """
    resolved = {layer: resolve_layer(net, layer) for layer in layers}
    collected: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    handles = []
    for layer, (_, module) in resolved.items():
        def hook(_module, _inputs, output, layer=layer):
            collected[layer].append(output.detach().flatten(1).float().cpu().numpy().copy())
        handles.append(module.register_forward_hook(hook))
    try:
        starts = range(0, len(images), batch_size)
        with torch.no_grad():
            for start in tqdm(starts, desc="activations", unit="batch", disable=not progress or len(starts) < 2):
                net(to_input(images[start:start + batch_size]))
    finally:
        for handle in handles:
            handle.remove()
    return {layer: np.concatenate(parts) for layer, parts in collected.items()}


def distance_matrix(features: np.ndarray, metric: str = "correlation") -> np.ndarray:
    """Distances between the rows of ``features``.

    Correlation and cosine distances are undefined for a constant (e.g. all-zero) row; such
    a row gets distance 1 (uncorrelated) to every other row, and 0 to another constant row.

    Parameters
    ----------
    features : numpy.ndarray
        (N, ...) one pattern per stimulus, flattened to (N, D).
    metric : str
        One of :data:`METRICS`.

    Returns
    -------
    numpy.ndarray
        (N, N) float64 distances with a zero diagonal.

    Examples
    --------
    >>> distance_matrix(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [0.0, 0.0, 0.0]])).round(3).tolist()
    [[0.0, 2.0, 1.0], [2.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    """
    if metric not in METRICS:
        raise InputError(f"unknown metric '{metric}' (choose {', '.join(METRICS)})")
    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        distances = squareform(pdist(features, metric=metric))
    if metric != "euclidean":
        flat = (np.ptp(features, axis=1) == 0) if metric == "correlation" else ~features.any(axis=1)
        distances[np.isnan(distances)] = 1.0
        distances[np.ix_(flat, flat)] = 0.0
    np.fill_diagonal(distances, 0.0)
    return distances


def confusion_rdm(logits: np.ndarray, identities: Sequence[str], classes: Sequence[str]) -> tuple[np.ndarray, str]:
    """The output-confusion RDM of an identity variant and the rule used (see the module docstring).

    Parameters
    ----------
    logits : numpy.ndarray
        Logits (N, C) of the faces.
    identities : sequence of str
        Each face's identity.
    classes : sequence of str
        The variant's classes.

    Returns
    -------
    rdm : numpy.ndarray
        (N, N), zero diagonal.
    rule : str
        Which definition was used.
    """
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    classes = [str(c) for c in classes]
    if all(str(i) in classes for i in identities):
        columns = np.array([classes.index(str(i)) for i in identities])
        confused = p[:, columns]  # confused[i, j] = p_i[id_j]
        rdm = 1.0 - 0.5 * (confused + confused.T)
        np.fill_diagonal(rdm, 0.0)
        return rdm, "1 - (p_i[id_j] + p_j[id_i]) / 2"
    rdm = squareform(pdist(p, metric="jensenshannon"))
    np.fill_diagonal(rdm, 0.0)
    return np.nan_to_num(rdm), "Jensen-Shannon distance between softmax outputs (identities outside the classes)"


def relevance_rdm(relevance: np.ndarray, metric: str = "correlation") -> np.ndarray:
    """Distances between relevance maps (N, H, W): how differently the variant explains two faces.

    Parameters
    ----------
    relevance : numpy.ndarray
        Maps (N, H, W).
    metric : str
        A distance of :data:`METRICS`.

    Returns
    -------
    numpy.ndarray
        (N, N) distances.
    """
    return distance_matrix(np.asarray(relevance).reshape(len(relevance), -1), metric)


def variant_features(loaded: Any, images: np.ndarray, layers: Sequence[str], *, batch_size: int = 32,
                     progress: bool = False) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A loaded variant's (``model.load_variant``) activations of ``layers``, and each layer's flat name.

    Parameters
    ----------
    loaded : LoadedVariant
        The variant (its net and preprocessing).
    images, layers, batch_size, progress
        As :func:`activations`.

    Returns
    -------
    features : dict of str to numpy.ndarray
        Layer -> activations (N, F).
    names : dict of str to str
        Layer -> its flat name.
    """
    names = {layer: resolve_layer(loaded.net, layer)[0] for layer in layers}
    feats = activations(loaded.net, images, layers, loaded.to_input, batch_size=batch_size, progress=progress)
    return feats, names


def variant_rdms(variant: str, stimuli: str, results: str | Path = "results", *,
                 layers: Sequence[str] = DEFAULT_LAYERS, kinds: Sequence[str] | None = None,
                 metric: str = "correlation", batch_size: int = 32, device: str | None = None,
                 progress: bool = False) -> tuple[dict[str, np.ndarray], list[str], dict[str, Any]]:
    """Every RDM of ``variant`` over prepared set ``stimuli``.

    ``kinds`` None means: activations, confusion for identity variants, relevance when the
    variant's relevance maps of the set exist. A kind asked for explicitly that cannot be
    made (confusion of a gender variant, relevance without maps) is an InputError.

    Parameters
    ----------
    variant : str
        The variant name.
    stimuli : str
        The prepared set.
    results : str or Path
        The results root.
    layers : sequence of str
        Layers of the activation RDMs.
    kinds : sequence of str, optional
        Which RDMs (:data:`KINDS`).
    metric : str
        The distance.
    batch_size : int
        Images per pass.
    device : str, optional
        Where the variant runs.
    progress : bool
        Show a progress bar.

    Returns
    -------
    rdms : dict of str to numpy.ndarray
        Name -> (N, N) RDM.
    ids : list of str
        The stimulus ids, in manifest order.
    meta : dict
        Metric, kinds, layers and a description of each RDM.
    """
    if metric not in METRICS:
        raise InputError(f"unknown metric '{metric}' (choose {', '.join(METRICS)})")
    unknown = [k for k in (kinds or ()) if k not in KINDS]
    if unknown:
        raise InputError(f"unknown RDM kind '{unknown[0]}' (choose {', '.join(KINDS)})")
    stim = load_prepared_set(stimuli, results)
    loaded = load_variant(variant, results, resolve_device(device))
    explicit = kinds is not None
    if kinds is None:
        kinds = ["activation", "confusion"] if loaded.task == "identity" else ["activation"]
        if relevance_path(variant, stimuli, results).is_file():
            kinds.append("relevance")
    if "confusion" in kinds and loaded.task != "identity":
        raise InputError(f"a confusion RDM needs an identity variant; {variant} classifies {loaded.task}")
    if "activation" in kinds and not layers:
        raise InputError("activation RDMs need at least one layer (--layers)")
    ids = [str(s) for s in stim.manifest.stimulus_id]
    meta: dict[str, Any] = {"variant": variant, "stimuli": stimuli, "metric": metric, "kinds": list(kinds),
                            "layers": {}, "descriptions": {}, "explicit_kinds": explicit}
    wanted = list(dict.fromkeys([*(layers if "activation" in kinds else []),
                                 *(["logits"] if "confusion" in kinds else [])]))
    feats, flat = variant_features(loaded, stim.images, wanted, batch_size=batch_size, progress=progress) \
        if wanted else ({}, {})
    rdms: dict[str, np.ndarray] = {}
    if "activation" in kinds:
        for layer in layers:
            rdms[layer] = distance_matrix(feats[layer], metric)
            meta["layers"][layer] = flat[layer]
            meta["descriptions"][layer] = f"{metric} distance of {flat[layer]} activations"
    if "confusion" in kinds:
        rdm, rule = confusion_rdm(feats["logits"], list(stim.manifest.identity.astype(str)), loaded.classes)
        rdms["confusion"] = rdm
        meta["descriptions"]["confusion"] = rule
    if "relevance" in kinds:
        maps = load_relevance(variant, stimuli, results)
        order = {s: i for i, s in enumerate(maps.stimulus_id)}
        missing = [s for s in ids if s not in order]
        if missing:
            raise InputError(f"{relevance_path(variant, stimuli, results)}: no relevance map for stimulus "
                             f"'{missing[0]}' ({len(missing)} missing); rerun python -m model explain")
        relevance = maps.relevance[[order[s] for s in ids]]
        if not np.isfinite(relevance).all():
            raise InputError(f"{relevance_path(variant, stimuli, results)}: relevance maps hold NaN or infinite values")
        rdms["relevance"] = relevance_rdm(relevance, metric)
        meta["descriptions"]["relevance"] = f"{metric} distance of the LRP relevance maps ({maps.meta.get('composite', '?')})"
        meta["relevance_file"] = str(relevance_path(variant, stimuli, results))
    return rdms, ids, meta


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m model rdm`` (its ``--help``).

    Returns
    -------
    argparse.ArgumentParser
        Its arguments and options.
    """
    parser = command_parser("model", "rdm", DESCRIPTION)
    parser.add_argument("--variant", required=True, nargs="+", help="variant name(s), e.g. vgg16-imagenet-identity-s0")
    parser.add_argument("--stimuli", required=True, help="prepared stimulus set name (python -m stimuli prepare)")
    parser.add_argument("--layers", nargs="+", default=list(DEFAULT_LAYERS),
                        help="layers of the activation RDMs: pool1..pool5, fc6, fc7, penultimate, logits or "
                             f"flat names such as features.29 (default: {' '.join(DEFAULT_LAYERS)})")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=None,
                        help="which RDMs (default: activation, confusion for identity variants, relevance "
                             "when the variant's relevance maps of the set exist)")
    parser.add_argument("--metric", choices=METRICS, default="correlation",
                        help="distance between activation patterns / relevance maps (default correlation)")
    add_results_root(parser)
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    return parser


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m model rdm`` (the RDMs of each ``--variant`` over ``--stimuli``); the exit status."""
    args = build_parser().parse_args(argv)
    for variant in args.variant:
        started = time.perf_counter()
        prov = Provenance(config={**vars(args), "variant": variant}, seeds={})
        rdms, ids, meta = variant_rdms(variant, args.stimuli, args.out, layers=args.layers, kinds=args.kinds,
                                       metric=args.metric, batch_size=args.batch_size, device=args.device,
                                       progress=True)
        for name in ("stimuli/" + args.stimuli + "/manifest.csv", f"models/{variant}/model.pt"):
            if (Path(args.out) / name).is_file():
                prov.add_input(Path(args.out) / name)
        if meta.get("relevance_file"):
            prov.add_input(meta["relevance_file"])
        path = save_rdms(rdm_path(variant, args.stimuli, args.out), rdms, ids, meta)
        record_run(path.parent, prov, run=args.stimuli, output=path)
        print(f"wrote {path}: {len(rdms)} RDM(s) over {len(ids)} stimuli ({', '.join(rdms)}) "
              f"in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
