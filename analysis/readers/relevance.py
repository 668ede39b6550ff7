"""Reading relevance maps for the statistics: each variant's maps of a set, and their baselines.

Problems (a missing or unreadable file, another grid, NaN maps) are reported one line each
and the variant left out; the statistics (:mod:`analysis.model_stats`,
:mod:`analysis.similarity_null`) take the ``{variant: RelevanceMaps}`` these return.

Examples
--------
>>> discover_variants("orl64", "no-such-results")
[]
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from stimuli.contracts.errors import InputError
from stimuli.contracts.relevance import (
    BASELINE_KINDS,
    RelevanceMaps,
    baseline_command,
    baseline_set,
    load_relevance,
    relevance_path,
)

__all__ = ["discover_variants", "load_variant_maps", "load_baseline_maps"]


def discover_variants(stimuli: str, results: str | Path = "results") -> list[str]:
    """Every variant with relevance maps of the set ``stimuli`` under ``<results>/relevance/``.

    Parameters
    ----------
    stimuli : str
        The prepared set's name.
    results : path
        The results root.

    Returns
    -------
    list of str
        The variants, sorted.
    """
    folder = Path(results) / "relevance"
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob(f"*/{stimuli}.npz"))


def _warn_default(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def load_variant_maps(variants: Iterable[str], stimuli: str, results: str | Path = "results", *,
                      warn: Callable[[str], None] | None = None) -> dict[str, RelevanceMaps]:
    """Read each variant's relevance maps of ``stimuli``; problems are reported, not fatal.

    A missing or unreadable file, or a set of maps of another grid than the first, is
    reported through ``warn`` (one line each) and the variant left out. Maps holding NaN or
    infinite values are dropped (reported with their count); a variant left with none is
    left out. Returns ``{variant: maps}`` in the given order.

    Parameters
    ----------
    variants : iterable of str
        Variant names.
    stimuli : str
        The prepared set's name.
    results : path
        The results root.
    warn : callable, optional
        Called with one line per problem (default: a ``warning:`` line on stderr).

    Returns
    -------
    dict of str to RelevanceMaps
        variant -> its finite maps.
    """
    warn = warn or _warn_default
    loaded: dict[str, RelevanceMaps] = {}
    shape = None
    for variant in variants:
        try:
            maps = load_relevance(variant, stimuli, results)
        except InputError as error:
            warn(str(error))
            continue
        path = relevance_path(variant, stimuli, results)
        if shape is not None and maps.relevance.shape[1:] != shape:
            warn(f"{path}: maps of shape {maps.relevance.shape[1:]}, not {shape} like the others; left out")
            continue
        finite = maps.finite()
        if not finite.all():
            first = maps.stimulus_id[~finite][0]
            if not finite.any():
                warn(f"{path}: every map holds NaN or infinite values; variant left out")
                continue
            warn(f"{path}: {int((~finite).sum())} of {len(maps)} maps hold NaN or infinite values "
                 f"(first: stimulus {first}); those maps left out")
            maps = RelevanceMaps(maps.relevance[finite], maps.stimulus_id[finite], maps.target[finite],
                                 maps.prediction[finite], maps.logit[finite], maps.meta)
        shape = maps.relevance.shape[1:]
        loaded[variant] = maps
    return loaded


def load_baseline_maps(variants: Iterable[str], stimuli: str, results: str | Path = "results", *,
                       kinds: Sequence[str] = BASELINE_KINDS,
                       warn: Callable[[str], None] | None = None) -> dict[str, dict[str, RelevanceMaps]]:
    """Each kind's baseline maps of ``variants`` (``{kind: {variant: maps}}``; kinds with none left out).

    Variants without a baseline file are named in one warning per kind, with the command that
    makes the first one's.

    Parameters
    ----------
    variants, stimuli, results, warn
        As for :func:`load_variant_maps`.
    kinds : sequence of str
        Baseline kinds (``untrained``, ``random``).

    Returns
    -------
    dict of str to dict of str to RelevanceMaps
        kind -> variant -> maps.
    """
    warn = warn or _warn_default
    variants = list(variants)
    out: dict[str, dict[str, RelevanceMaps]] = {}
    for kind in kinds:
        name = baseline_set(stimuli, kind)
        present = [v for v in variants if relevance_path(v, name, results).is_file()]
        missing = [v for v in variants if v not in present]
        if missing and present:
            warn(f"no '{kind}' baseline maps of set '{stimuli}' for {', '.join(missing)}; make them with: "
                 f"{baseline_command(missing[0], stimuli, kind, results)}")
        if present:
            loaded = load_variant_maps(present, name, results, warn=warn)
            if loaded:
                out[kind] = loaded
    return out
