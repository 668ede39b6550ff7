"""The centre densities guided trials were drawn from, rebuilt from files (no model, no torch).

A Bubbles session records in its sidecar how each condition placed its centres
(``Masks``: ``sigma_px``, ``centre_region`` and, per condition, ``mode``, ``variant``,
``maps``, ``strength``, ``relevance_file``, ``relevance_sha256``; see
``experiments/bubbles.py``). A guided or antiguided trial's centres are draws from
``stimuli.guided.guidance_density(relevance, sigma_px, strength=, mode=, region=)`` where
``relevance`` is the relevance file's set-mean map (``maps: mean``) or the trial's own
face's map (``maps: per_image``): the same code, on the same file, gives the same density
here. The file is found under ``<results>/relevance/<variant>/<set>.npz`` (else at the
recorded path) and must have the recorded SHA-256: a changed or missing file, or a sidecar
without these fields, is refused with one line saying why.

Each trial gets a **stratum** label naming its density (:class:`analysis.BubbleTrials`):
``""`` for a condition whose centres share one density estimated from the pooled centres
(random conditions, as before), ``"<spec>"`` for a set-mean guided condition and
``"<spec>/<stimulus_id>"`` per image, ``<spec>`` a short hash of what defines the density.

Examples
--------
>>> densities = GuidedDensities(load_prepared_set("orl128"), results="results")   # doctest: +SKIP
>>> bt = densities.label(bt, "sub-01/ses-1/beh/..._beh.tsv", "guided", stimulus_ids)  # doctest: +SKIP
>>> densities.density(bt.stratum[0]).moments(6.0)[0].shape                        # doctest: +SKIP
(128, 128)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import PreparedSet
from stimuli.contracts.provenance import file_sha256
from stimuli.contracts.relevance import RelevanceMaps, load_relevance, relevance_path
from stimuli.contracts.trials import read_sidecar, sidecar_path
from stimuli.guided import GUIDED_MODES, guidance_density
from stimuli.regions import region_mask

from ..apertures import BubbleTrials, centre_histogram
from ..ci_null import CentreDensity

__all__ = ["GuidedSpec", "GuidedDensities", "POOLED"]

POOLED = ""  # stratum of trials whose density is estimated from the pooled centres


@dataclass(frozen=True)
class GuidedSpec:
    """Everything that defines one guided condition's density (per image or set-mean).

    Parameters
    ----------
    mode : str
        ``guided`` or ``antiguided``.
    variant : str
        The model variant whose relevance guided the centres.
    maps : str
        ``per_image`` or ``mean`` (the set-mean map).
    strength, sigma_px : float
        The guidance strength and aperture sigma.
    region : str or None
        The region the density was limited to.
    relevance : str
        Path of the relevance file used.
    sha256 : str
        Its content hash as the session recorded it.
    """

    mode: str
    variant: str
    maps: str
    strength: float
    sigma_px: float
    region: str | None
    relevance: str  # path of the relevance file used
    sha256: str

    @property
    def key(self) -> str:
        text = json.dumps([self.mode, self.variant, self.maps, self.strength, self.sigma_px, self.region,
                           self.sha256])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class GuidedDensities:
    """Labels trials with their centre density and builds those densities, cached.

    Parameters
    ----------
    stim : the prepared set the sessions showed (its grid and face aperture).
    results : results root holding ``relevance/<variant>/<set>.npz``.
    """

    def __init__(self, stim: PreparedSet, results: str | os.PathLike = "results") -> None:
        self.stim = stim
        self.results = Path(results)
        self._sidecars: dict[Path, dict[str, Any] | None] = {}
        self._specs: dict[str, GuidedSpec] = {}
        self._maps: dict[str, RelevanceMaps] = {}
        self._hashes: dict[Path, str] = {}  # relevance file -> SHA-256, hashed once per run
        self._densities: dict[str, CentreDensity] = {}

    # --- what a session's sidecar says ------------------------------------------------------
    def spec(self, trial_file: str | os.PathLike, condition: str) -> GuidedSpec | None:
        """The guided density of ``condition`` in this session, None when its centres share one
        density (random); InputError when it is guided but cannot be rebuilt."""
        trial_file = Path(trial_file)
        if trial_file not in self._sidecars:
            self._sidecars[trial_file] = read_sidecar(trial_file)
        sidecar = self._sidecars[trial_file]
        masks = (sidecar or {}).get("Masks") or {}
        record = (masks.get("conditions") or {}).get(condition)
        mode = (record or {}).get("mode") or (condition if condition in GUIDED_MODES else "random")
        if mode not in GUIDED_MODES:
            return None
        where = f"{sidecar_path(trial_file)}: condition '{condition}' is {mode}"
        if record is None:
            raise InputError(f"{where} but the sidecar does not record how its centres were drawn "
                             "(Masks.conditions); its centre density cannot be rebuilt, no CI")
        missing = [k for k in ("variant", "maps", "strength", "relevance_sha256") if record.get(k) is None]
        missing += [f"Masks.{k}" for k in ("sigma_px",) if masks.get(k) is None]
        if missing:
            raise InputError(f"{where} but the sidecar lacks {', '.join(missing)}; "
                             "its centre density cannot be rebuilt, no CI")
        path = self._find_relevance(record, where)
        spec = GuidedSpec(mode=mode, variant=str(record["variant"]), maps=str(record["maps"]),
                          strength=float(record["strength"]), sigma_px=float(masks["sigma_px"]),
                          region=masks.get("centre_region"), relevance=str(path), sha256=str(record["relevance_sha256"]))
        self._specs.setdefault(spec.key, spec)
        return spec

    def _find_relevance(self, record: dict[str, Any], where: str) -> Path:
        candidates = [relevance_path(str(record["variant"]), self.stim.name, self.results)]
        if record.get("relevance_file"):
            candidates.append(Path(record["relevance_file"]))
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise InputError(f"{where}, guided by {candidates[0]}: relevance file not found; "
                             "its centre density cannot be rebuilt, no CI")
        if found not in self._hashes:
            self._hashes[found] = file_sha256(found)
        if self._hashes[found] != record["relevance_sha256"]:
            raise InputError(f"{where}: relevance file {found} changed since the session (SHA-256 differs "
                             "from the sidecar's); its centre density cannot be rebuilt, no CI")
        return found

    def label(self, bt: BubbleTrials, trial_file: str | os.PathLike, condition: str,
              stimulus_ids: Any = None) -> BubbleTrials:
        """``bt`` (one session's trials of ``condition``) with each trial's stratum label."""
        spec = self.spec(trial_file, condition)
        if spec is None:
            return bt.with_strata(np.full(bt.n_trials, POOLED))
        if spec.maps == "mean":
            labels = np.full(bt.n_trials, spec.key)
        elif spec.maps == "per_image":
            if stimulus_ids is None:
                raise InputError(f"{trial_file}: condition '{condition}' uses per-image maps but the trial "
                                 "file has no 'stimulus_id' column; its centre densities cannot be rebuilt")
            ids = np.asarray(stimulus_ids, dtype=str)
            relevance = self._relevance(spec)
            unknown = sorted(set(ids) - set(relevance.stimulus_id))
            if unknown:
                raise InputError(f"{trial_file}: condition '{condition}': stimulus '{unknown[0]}' has no map in "
                                 f"{spec.relevance}; its centre density cannot be rebuilt, no CI")
            labels = np.char.add(f"{spec.key}/", ids)
        else:
            raise InputError(f"{sidecar_path(Path(trial_file))}: condition '{condition}': unknown maps "
                             f"'{spec.maps}' (mean or per_image)")
        return bt.with_strata(labels)

    # --- the densities ---------------------------------------------------------------------
    def _relevance(self, spec: GuidedSpec) -> RelevanceMaps:
        if spec.relevance not in self._maps:
            self._maps[spec.relevance] = load_relevance(spec.relevance)
        return self._maps[spec.relevance]

    def _region(self, spec: GuidedSpec) -> np.ndarray | None:
        if spec.region is None:
            return None
        if spec.region == "aperture":
            if self.stim.aperture is None:
                raise InputError(f"centres were drawn inside the face aperture, but prepared set "
                                 f"'{self.stim.name}' has none; the centre density cannot be rebuilt")
            return self.stim.aperture
        return region_mask(spec.region, self.stim.shape)

    def density_map(self, label: str) -> np.ndarray:
        """The (H, W) density (sums to 1) of a guided stratum label, exactly as the session drew from."""
        key, _, stimulus_id = label.partition("/")
        if key not in self._specs:
            raise InputError(f"unknown centre-density label '{label}'")
        spec = self._specs[key]
        maps = self._relevance(spec)
        relevance = maps.by_id(stimulus_id) if spec.maps == "per_image" else maps.mean_map()
        return guidance_density(relevance, spec.sigma_px, strength=spec.strength, mode=spec.mode,
                                region=self._region(spec), shape=self.stim.shape,
                                name=f"relevance of {stimulus_id or 'the set mean'} ({spec.variant})")

    def density(self, label: str) -> CentreDensity:
        """:class:`CentreDensity` of a guided stratum label (built once)."""
        if label not in self._densities:
            self._densities[label] = CentreDensity(self.density_map(label), self.stim.shape)
        return self._densities[label]

    def for_condition(self, trials: list[BubbleTrials]) -> tuple[list[BubbleTrials], Any]:
        """Participants' trials of one condition and the centre density (or densities) of their null.

        All trials pooled (random conditions): the trials without labels and one
        :class:`CentreDensity` from everyone's centres, as before. Otherwise a mapping from
        each stratum label to its density (pooled labels: the pooled centres of those trials).
        """
        labels = {str(s) for bt in trials if bt.stratum is not None for s in np.unique(bt.stratum)} or {POOLED}
        pooled = [bt.centres[(bt.stratum[bt.trial_of] == POOLED) if bt.stratum is not None
                             else np.ones(len(bt.centres), bool)] for bt in trials]
        shape = self.stim.shape
        if labels == {POOLED}:
            return [bt.with_strata(None) for bt in trials], CentreDensity(centre_histogram(np.concatenate(pooled), shape))
        mapping: dict[str, CentreDensity] = {label: self.density(label) for label in sorted(labels - {POOLED})}
        if POOLED in labels:
            mapping[POOLED] = CentreDensity(centre_histogram(np.concatenate(pooled), shape))
        return trials, mapping
