"""The Bubbles classification task (Gosselin & Schyns, 2001): one task plugin of the engine.

A face from the prepared set is seen through Gaussian apertures; the observer answers its
gender, or which of k learned identities it is. Blocks of conditions (``random``,
``guided``, ``antiguided``: where the centres come from) follow each other; a QUEST
staircase per condition (or one shared) sets the number of bubbles to hold accuracy at the
target. Practice trials come first, with a fixed number of bubbles.

The sequence (blocks, conditions, stimuli, mask seeds) is drawn up front from the session
seed; only the number of bubbles is decided at run time, by the staircase. A trial's centres
are the first ``n_bubbles`` draws of ``numpy.random.default_rng(mask_seed)`` from its
condition's sampler, built by :mod:`stimuli.bubbles` (and :mod:`stimuli.guided` for guided
conditions), so the trial file's ``bubbles`` column rebuilds every mask exactly
(:func:`stimuli.bubbles.mask_from_trial`).

Examples
--------
>>> from experiments.config import load_experiment                      # doctest: +SKIP
>>> config = load_experiment("experiments/bubbles_gender.yaml")        # doctest: +SKIP
>>> task = BubblesTask(config, results="results")                       # doctest: +SKIP
>>> trial = task.prepare(task.plan(seed=1)[0]); trial.images[0].shape   # doctest: +SKIP
(128, 128)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from stimuli.bubbles import (
    REVEALED_COLUMNS,
    CentreSampler,
    aperture_pixels,
    bubbles_mask,
    compose,
    mask_area,
    max_sensible_bubbles,
)
from stimuli.contracts.centres import format_centres
from stimuli.contracts.config import to_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import PreparedSet, load_prepared_set, remake_command
from stimuli.contracts.provenance import file_sha256
from stimuli.contracts.relevance import load_relevance, relevance_path
from stimuli.contracts.trials import TRIAL_COLUMNS
from stimuli.guided import guidance_density
from stimuli.regions import region_mask

from .bubbles_config import BubblesConfig, Condition, used_conditions
from .paradigms import register_paradigm
from .sequence import Cycler, balanced_labels, block_order, derive_seed
from .staircase import Quest, QuestParams, bubbles_for_intensity, intensity_for_bubbles
from .task import Response, Task, Trial, stimulus_set_record

__all__ = ["BubblesTask", "EXTRA_COLUMNS"]

EXTRA_COLUMNS: dict[str, str] = {
    "staircase": "Staircase that set n_bubbles (a condition name, 'shared'), n/a for practice.",
    "intensity": "log10 number of bubbles the QUEST staircase asked for, before rounding; n/a for practice.",
    "response_key": "Key pressed (psychopy key name); n/a for simulated observers or no answer.",
    **REVEALED_COLUMNS,
}



@register_paradigm("bubbles")
class BubblesTask(Task):
    """The Bubbles task on a prepared set; everything is checked here, before any window opens.

    Parameters
    ----------
    config : BubblesConfig
        The loaded YAML.
    results : str
        The results root holding the prepared set and relevance maps.
    config_path : str
        The YAML, for messages and provenance.
    """

    paradigm = "bubbles"
    config_class = BubblesConfig

    def __init__(self, config: BubblesConfig, *, results: str = "results", config_path: str = "") -> None:
        super().__init__(config, results=results, config_path=config_path)
        where = config_path or "config"
        # the missing-set hint makes the set this config needs (with the aperture when centres fall in it)
        self.set: PreparedSet = load_prepared_set(config.stimuli, results,
                                                  aperture=config.bubbles.region == "aperture")
        self.shape = self.set.shape
        self.background = self.set.background
        manifest = self.set.manifest
        column = config.classify
        present = sorted(set(manifest[column].astype(str)))
        missing = [c for c in config.responses if c not in present]
        if missing:
            raise InputError(f"{where}: key 'responses': '{missing[0]}' is not a {column} of stimulus set "
                             f"'{self.set.name}' (it has {', '.join(present[:8])}{', ...' if len(present) > 8 else ''})")
        self.classes = list(config.responses)
        eligible = manifest[manifest[column].astype(str).isin(self.classes)]
        self.by_class = {c: list(eligible.stimulus_id[eligible[column].astype(str) == c]) for c in self.classes}
        self.truth_of = dict(zip(eligible.stimulus_id, eligible[column].astype(str)))
        sigma = config.bubbles.sigma_px
        self.max_bubbles = config.staircase.max_bubbles or max_sensible_bubbles(self.shape, sigma)
        if config.design.practice_bubbles is not None and config.design.practice_bubbles > self.max_bubbles:
            raise InputError(f"{where}: key 'design.practice_bubbles' ({config.design.practice_bubbles}) exceeds "
                             f"the most bubbles that still hide part of the face ({self.max_bubbles})")
        if config.staircase.start_bubbles > self.max_bubbles:
            raise InputError(f"{where}: key 'staircase.start_bubbles' ({config.staircase.start_bubbles:g}) "
                             f"exceeds the most bubbles that still hide part of the face ({self.max_bubbles})")
        self.region = self._sampling_region(where)
        self.aperture_px = aperture_pixels(self.shape, self.set.aperture)  # revealed_fraction's denominator
        self._relevance: dict[str, Any] = {}
        self._samplers: dict[tuple[str, str | None], CentreSampler] = {}
        # only the conditions the design shows need their maps: an unused guided condition blocks nothing
        self.used_conditions = used_conditions(config)
        for name in self.used_conditions:
            if config.conditions[name].mode != "random":
                self._load_relevance(name, config.conditions[name], where)
        self.quest_params = self._quest_params()
        self.quests: dict[str, Quest] = {}

    # --- set-up ------------------------------------------------------------------------------
    def _sampling_region(self, where: str) -> np.ndarray | None:
        spec = self.config.bubbles.region
        if spec is None:
            return None
        if spec == "aperture":
            if self.set.aperture is None:
                raise InputError(f"{where}: key 'bubbles.region' is 'aperture' but stimulus set "
                                 f"'{self.set.name}' has none; re-make it with: "
                                 f"{remake_command(self.set, aperture=True)}")
            return self.set.aperture
        try:
            return region_mask(spec, self.shape)
        except InputError as error:
            raise InputError(f"{where}: key 'bubbles.region': {error}") from None

    def _load_relevance(self, name: str, condition: Condition, where: str) -> None:
        try:
            maps = load_relevance(condition.variant, self.set.name, self.results, prepared=self.set)  # same set version
        except InputError as error:
            raise InputError(f"{where}: condition '{name}': {error}") from None
        if maps.relevance.shape[1:] != self.shape:
            raise InputError(f"{where}: condition '{name}': relevance maps of {condition.variant} are "
                             f"{maps.relevance.shape[1:]}, the stimulus grid is {self.shape}")
        if condition.maps == "per_image":
            have = set(maps.stimulus_id)
            lacking = [s for s in self.truth_of if s not in have]
            if lacking:
                raise InputError(f"{where}: condition '{name}': no relevance map of {condition.variant} "
                                 f"for stimulus '{lacking[0]}' ({len(lacking)} missing)")
        self._relevance[name] = (maps, str(relevance_path(condition.variant, self.set.name, self.results)))
        if condition.maps == "mean":
            self._sampler(name, None)  # build now: a bad map fails before the session starts

    def _sampler(self, condition_name: str, stimulus_id: str | None) -> CentreSampler:
        condition = self.config.conditions[condition_name]
        key = (condition_name, stimulus_id if condition.maps == "per_image" else None)
        if key in self._samplers:
            return self._samplers[key]
        if condition.mode == "random":
            sampler = CentreSampler(self.shape, weights=self.region)
        else:
            maps = self._relevance[condition_name][0]
            relevance = maps.mean_map() if condition.maps == "mean" else maps.by_id(stimulus_id)
            density = guidance_density(relevance, self.config.bubbles.sigma_px, strength=condition.strength,
                                       mode=condition.mode, region=self.region, shape=self.shape)
            sampler = CentreSampler(self.shape, weights=density)
        if condition.maps == "per_image" and len(self._samplers) > 512:
            self._samplers.clear()  # bounded cache for large sets
        self._samplers[key] = sampler
        return sampler

    def _quest_params(self) -> QuestParams:
        s = self.config.staircase
        return QuestParams(
            start=float(np.log10(s.start_bubbles)), start_sd=s.start_sd, target=s.target,
            beta=s.beta, delta=s.delta, gamma=1.0 / len(self.classes) if s.gamma is None else s.gamma,
            grain=s.grain, method=s.method, min_val=float(np.log10(s.min_bubbles)),
            max_val=float(np.log10(self.max_bubbles)),
        )

    # --- the Task interface ---------------------------------------------------------------------
    def columns(self) -> dict[str, str]:
        return {**TRIAL_COLUMNS, **EXTRA_COLUMNS}

    def planned_columns(self) -> tuple[str, ...]:
        return ("trial", "block", "phase", "condition", "stimulus_id", "truth", "mask_seed", "staircase")

    def staircase_of(self, condition: str) -> str:
        return "shared" if self.config.staircase.shared else condition

    def plan(self, seed: int) -> list[dict[str, Any]]:
        design = self.config.design
        rng = np.random.default_rng(derive_seed(seed, "plan"))
        mask_rng = np.random.default_rng(derive_seed(seed, "masks"))
        cyclers = {c: Cycler(ids, rng) for c, ids in self.by_class.items()}
        everything = Cycler([s for ids in self.by_class.values() for s in ids], rng)
        blocks = [(0, "practice", design.practice_condition, design.practice_trials)] if design.practice_trials else []
        blocks += [(b, "main", c, design.trials_per_block)
                   for b, c in enumerate(block_order(design.blocks, design.repeats, design.order, rng), start=1)]
        rows = []
        for block, phase, condition, n in blocks:
            if design.balance_classes:
                stimuli = [cyclers[c].draw() for c in balanced_labels(self.classes, n, rng)]
            else:
                stimuli = [everything.draw() for _ in range(n)]
            for stimulus_id in stimuli:
                rows.append({
                    "trial": len(rows) + 1,
                    "block": block,
                    "phase": phase,
                    "condition": condition,
                    "stimulus_id": stimulus_id,
                    "truth": self.truth_of[stimulus_id],
                    "mask_seed": int(mask_rng.integers(0, 2**31 - 1)),
                    "staircase": self.staircase_of(condition) if phase == "main" else None,
                })
        return rows

    def restore(self, done: pd.DataFrame) -> None:
        self.quests = {}
        if len(done) == 0:
            return
        main = done[done.phase == "main"]
        for _, row in main.iterrows():
            correct = 0 if pd.isna(row.correct) else int(row.correct)
            self._quest(str(row.staircase)).update(intensity_for_bubbles(int(row.n_bubbles)), correct)

    def _quest(self, name: str) -> Quest:
        if name not in self.quests:
            self.quests[name] = Quest(self.quest_params)
        return self.quests[name]

    def groups(self, todo: Sequence[dict[str, Any]], batch: int = 1) -> Iterator[list[dict[str, Any]]]:
        """Consecutive trials of one staircase (and one block), at most ``batch`` of them.

        Trials of a group are prepared with the staircase as it stands before the group, and
        it is updated with all their answers after (QUEST's posterior is a product of the
        answers, so only the intensities tested differ from a trial-by-trial run).
        """
        group: list[dict[str, Any]] = []
        for row in todo:
            if group and (len(group) >= batch or row["block"] != group[-1]["block"]
                          or row["staircase"] != group[-1]["staircase"]):
                yield group
                group = []
            group.append(row)
        if group:
            yield group

    def prepare(self, planned: dict[str, Any]) -> Trial:
        config = self.config
        if planned["phase"] == "main":
            asked = self._quest(planned["staircase"]).next_intensity()
            n = bubbles_for_intensity(asked, config.staircase.min_bubbles, self.max_bubbles)
        else:
            asked = None
            n = int(min(self.max_bubbles, config.design.practice_bubbles or round(config.staircase.start_bubbles)))
        stimulus_id = planned["stimulus_id"]
        sampler = self._sampler(planned["condition"], stimulus_id)
        centres = sampler.sample(n, np.random.default_rng(int(planned["mask_seed"])))
        mask = bubbles_mask(self.shape, centres, config.bubbles.sigma_px, merge=config.bubbles.merge)
        index = self.set.index_of(stimulus_id)
        image = compose(self.set.read_images([index])[0], mask, self.background)  # one face, not the set
        row = {**planned, "n_bubbles": n, "sigma_px": config.bubbles.sigma_px,
               "bubbles": format_centres(centres), "intensity": asked}
        return Trial(row=row, images=[image], choices={k: c for c, k in config.responses.items()},
                     truth=planned["truth"], payload={"mask": mask, "stimulus_index": index})

    def record(self, trial: Trial, response: Response) -> dict[str, Any]:
        row = dict(trial.row)
        correct = int(response.response is not None and response.response == trial.truth)
        # the area of the mask this trial showed, over the set's face aperture (stimuli.bubbles.revealed_area
        # gives the same number from the row)
        revealed = mask_area(trial.payload["mask"], self.set.aperture)
        row.update(response=response.response, correct=correct, rt_s=response.rt_s, onset_s=response.onset_s,
                   dropped_frames=response.dropped_frames, response_key=response.extra.get("key"),
                   revealed_px=revealed, revealed_fraction=revealed / self.aperture_px)
        if row["phase"] == "main":
            self._quest(row["staircase"]).update(intensity_for_bubbles(row["n_bubbles"]), correct)
        return row

    def familiarisation(self) -> list[tuple[np.ndarray, str]]:
        per_class = self.config.familiarisation.images_per_class
        items = []
        for answer, key in self.config.responses.items():
            for stimulus_id in sorted(self.by_class[answer])[:per_class]:
                caption = self.config.familiarisation.caption.format(answer=answer, key=key.upper())
                items.append((self.set.image(stimulus_id), caption))
        return items

    def key_help(self) -> str:
        return ", ".join(f"{key.upper()} = {answer}" for answer, key in self.config.responses.items())

    def classification_set(self) -> tuple[np.ndarray, list[str], list[str]]:
        """Images, their answers and the answers' order: what observers may learn from."""
        ids = [s for ids in self.by_class.values() for s in ids]
        images = self.set.read_images([self.set.index_of(s) for s in ids])
        return images, [self.truth_of[s] for s in ids], list(self.classes)

    def inputs(self) -> list[str]:
        files = [str(self.set.folder / "manifest.csv"), str(self.set.folder / "set.json")]
        return files + [path for _, path in self._relevance.values()]

    def _condition_record(self, name: str, condition: Condition) -> dict[str, Any]:
        """What rebuilds a condition's centre density (analysis.guided_densities reads it)."""
        path = self._relevance.get(name, (None, None))[1]
        record = {**to_dict(condition), "relevance_file": path}
        if path is not None:
            record["relevance_sha256"] = file_sha256(path)
            record["density"] = ("stimuli.guided.guidance_density(relevance, Masks.sigma_px, strength=strength, "
                                 "mode=mode, region=Masks.centre_region); relevance: RelevanceMaps.mean_map() "
                                 "(maps: mean) or the trial's stimulus' own map (maps: per_image)")
        return record

    def sidecar(self) -> dict[str, Any]:
        config = self.config
        return {
            "StimulusSet": stimulus_set_record(self.set),
            "Masks": {
                "builder": "stimuli.bubbles.bubbles_mask",
                "merge": config.bubbles.merge,
                "sigma_px": config.bubbles.sigma_px,
                "centre_region": config.bubbles.region,
                "centres": "first n_bubbles draws of numpy.random.default_rng(mask_seed) from the "
                           "condition's stimuli.bubbles.CentreSampler",
                "conditions": {name: self._condition_record(name, config.conditions[name])
                               for name in self.used_conditions},
            },
            "MaskMergeRule": config.bubbles.merge,
            "Staircase": {"method": "QUEST (experiments.staircase, as psychopy.data.QuestHandler)",
                          "intensity": "log10(n_bubbles)", **to_dict(config.staircase),
                          "gamma_used": self.quest_params.gamma, "max_bubbles_used": self.max_bubbles},
            "Responses": dict(config.responses),
        }

