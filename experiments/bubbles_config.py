"""The Bubbles experiment YAML: apertures, conditions, design, staircase and observers.

A ``paradigm: bubbles`` YAML (see experiments/bubbles_gender.yaml for every key) holds the
shared sections of :class:`experiments.config.ExperimentConfig` plus the ones below; the task
is :class:`experiments.bubbles.BubblesTask`. Everything is checked on load, each refusal one
line naming the file and the key.

Examples
--------
>>> from experiments.config import load_experiment
>>> used_conditions(load_experiment("experiments/bubbles_classic.yaml"))
['random']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from stimuli.contracts.config import require
from stimuli.contracts.names import NAME_RULE, is_name

from .config import (
    MAX_BLOCKS,
    MAX_BUBBLES,
    MAX_PRACTICE_TRIALS,
    MAX_SESSION_TRIALS,
    MAX_TRIALS_PER_BLOCK,
    ExperimentConfig,
    check_response_keys,
)

__all__ = [
    "MODES",
    "Bubbles",
    "Condition",
    "Design",
    "Staircase",
    "Familiarisation",
    "TemplateSettings",
    "ModelObserverSettings",
    "BubblesConfig",
    "used_conditions",
]

MODES = ("random", "guided", "antiguided")  # where a condition's bubble centres come from


@dataclass(kw_only=True)
class Bubbles:
    """The apertures: their size, how they combine, and where their centres may fall.

    Parameters
    ----------
    sigma_px : float
        Aperture standard deviation on the stimulus grid (pixels).
    merge : {"sum", "prob"}
        How apertures combine (:func:`stimuli.bubbles_mask`).
    region : str, optional
        Where centres may fall: null (the grid), ``aperture`` or a :mod:`stimuli.regions` spec.
    """

    sigma_px: float = 6.0  # aperture standard deviation on the stimulus grid
    merge: Literal["sum", "prob"] = "sum"  # how apertures combine (stimuli.bubbles_mask)
    region: str | None = None  # where centres may fall: null (grid), 'aperture' or a region spec

    def __post_init__(self) -> None:
        require(self.sigma_px > 0, "sigma_px", "must be a positive number of pixels")


@dataclass(kw_only=True)
class Condition:
    """Where the centres of a condition come from: uniform, or guided by a model's relevance.

    Parameters
    ----------
    mode : {"random", "guided", "antiguided"}, optional
        Where the centres come from (null: the condition's name).
    variant : str, optional
        The model variant whose relevance guides the centres.
    maps : {"mean", "per_image"}
        The set-average relevance map or each image's own.
    strength : float
        1 fully guided, 0 uniform (:func:`stimuli.guided.guidance_density`).
    """

    mode: Literal["random", "guided", "antiguided"] | None = None  # None: the condition's name
    variant: str | None = None  # model variant whose relevance maps guide the centres
    maps: Literal["mean", "per_image"] = "mean"  # the set-average map or each image's own
    strength: float = 1.0  # 1: fully guided, 0: uniform (stimuli.guided.guidance_density)

    def __post_init__(self) -> None:
        require(0 <= self.strength <= 1, "strength", "must lie in [0, 1]")


@dataclass(kw_only=True)
class Design:
    """The session's sequence: blocks of conditions, trials per block, practice.

    Parameters
    ----------
    blocks : list of str
        The condition of each block, in order.
    repeats : int
        How many times the list of blocks is run.
    order : {"fixed", "shuffled"}
        Shuffled: each repeat in a seeded random order.
    trials_per_block, practice_trials : int
        Trials of each block, and practice trials before the first.
    practice_condition : str
        The condition practice trials show.
    practice_bubbles : int, optional
        Bubbles of practice trials (null: the staircase's start value).
    balance_classes : bool
        Each block shows every class equally often.
    """

    blocks: list[str] = field(default_factory=lambda: ["random"])  # condition of each block, in order
    repeats: int = 1  # the list of blocks is run this many times
    order: Literal["fixed", "shuffled"] = "fixed"  # shuffled: each repeat in a seeded random order
    trials_per_block: int = 50
    practice_trials: int = 10
    practice_condition: str = "random"
    practice_bubbles: int | None = None  # None: the staircase's start value
    balance_classes: bool = True  # each block shows every class equally often

    def __post_init__(self) -> None:
        require(len(self.blocks) > 0, "blocks", "needs at least one block")
        require(self.repeats >= 1, "repeats", "must be at least 1")
        require(len(self.blocks) * self.repeats <= MAX_BLOCKS, "repeats",
                f"gives {len(self.blocks) * self.repeats} blocks; at most {MAX_BLOCKS} (blocks x repeats)")
        require(1 <= self.trials_per_block <= MAX_TRIALS_PER_BLOCK, "trials_per_block",
                f"must be from 1 to {MAX_TRIALS_PER_BLOCK}")
        require(0 <= self.practice_trials <= MAX_PRACTICE_TRIALS, "practice_trials",
                f"must be from 0 to {MAX_PRACTICE_TRIALS}")
        total = self.practice_trials + len(self.blocks) * self.repeats * self.trials_per_block
        require(total <= MAX_SESSION_TRIALS, "trials_per_block",
                f"makes {total} trials in a session; at most {MAX_SESSION_TRIALS}")
        require(self.practice_bubbles is None or 1 <= self.practice_bubbles <= MAX_BUBBLES, "practice_bubbles",
                f"must be from 1 to {MAX_BUBBLES} or null")


@dataclass(kw_only=True)
class Staircase:
    """QUEST on log10(number of bubbles) (see experiments.staircase).

    Parameters
    ----------
    shared : bool
        One staircase for all conditions instead of one per condition.
    start_bubbles, start_sd : float
        Prior threshold (bubbles) and its sd (log10 units).
    target : float
        The accuracy held.
    beta, delta, gamma : float
        Weibull slope, lapse rate and guess rate (null gamma: chance).
    grain : float
        Step of QUEST's intensity grid (log10 units).
    method : {"quantile", "mean", "mode"}
        The posterior statistic tested next.
    min_bubbles, max_bubbles : int
        Bounds of the number of bubbles (null max: the most that still hide part of the face).
    """

    shared: bool = False  # one staircase for all conditions instead of one per condition
    start_bubbles: float = 40.0
    start_sd: float = 0.5  # prior sd of the threshold, log10 units
    target: float = 0.75
    # slope of QUEST's Weibull in log10(bubbles). Accuracy grows slowly with the number of bubbles
    # (the template observer: 60% -> 90% over ~1 log unit, i.e. beta ~ 1); psychopy's 3.5 (for
    # contrast) made 2,000-trial runs settle anywhere between 72% and 79% correct, 1.5 within 74-77%.
    beta: float = 1.5
    delta: float = 0.01
    gamma: float | None = None  # None: chance, 1 / number of answers
    grain: float = 0.01
    method: Literal["quantile", "mean", "mode"] = "quantile"
    min_bubbles: int = 1
    max_bubbles: int | None = None  # None: the most that still hide part of the face

    def __post_init__(self) -> None:
        require(1 <= self.start_bubbles <= MAX_BUBBLES, "start_bubbles", f"must be from 1 to {MAX_BUBBLES}")
        require(self.start_sd > 0, "start_sd", "must be positive (log10 units)")
        require(0 < self.target < 1, "target", "must lie between 0 and 1")
        require(self.beta > 0, "beta", "must be positive")
        require(0 <= self.delta < 1, "delta", "must lie in [0, 1)")
        require(self.gamma is None or 0 <= self.gamma < self.target, "gamma",
                "must lie in [0, target) or be null (chance)")
        require(self.grain > 0, "grain", "must be positive")
        require(1 <= self.min_bubbles <= MAX_BUBBLES, "min_bubbles", f"must be from 1 to {MAX_BUBBLES}")
        require(self.max_bubbles is None or self.min_bubbles < self.max_bubbles <= MAX_BUBBLES, "max_bubbles",
                f"must exceed min_bubbles and be at most {MAX_BUBBLES}")


@dataclass(kw_only=True)
class Familiarisation:
    """Learning phase before practice (people only): each class's faces with their key.

    Parameters
    ----------
    images_per_class : int, default 0
        Faces of each class shown before practice (0: none).
    caption : str
        Shown under each face; ``{answer}`` and ``{key}`` are filled in.
    """

    images_per_class: int = 0
    caption: str = "{answer}: press {key}"

    def __post_init__(self) -> None:
        require(self.images_per_class >= 0, "images_per_class", "must be 0 or more")


@dataclass(kw_only=True)
class TemplateSettings:
    """The template observer (experiments.observers.TemplateObserver).

    Parameters
    ----------
    region : str
        Its diagnostic region: only pixels inside it enter the decision.
    templates : {"exemplars", "means"}
        Every image, or one mean image per class.
    full_view_accuracy : float
        Its internal noise is calibrated to this accuracy with no mask.
    noise_sd : float, optional
        A fixed internal noise (grey levels per pixel) instead.
    """

    region: str = "eyes"  # its diagnostic region: only pixels inside it enter the decision
    templates: Literal["exemplars", "means"] = "exemplars"
    full_view_accuracy: float = 0.95  # internal noise calibrated to this accuracy with no mask
    noise_sd: float | None = None  # fixed internal noise (grey levels per pixel) instead

    def __post_init__(self) -> None:
        require(0 < self.full_view_accuracy < 1, "full_view_accuracy", "must lie between 0 and 1")
        require(self.noise_sd is None or self.noise_sd > 0, "noise_sd", "must be positive or null")


@dataclass(kw_only=True)
class ModelObserverSettings:
    """The model observer (experiments.observers.ModelObserver).

    Parameters
    ----------
    batch_trials : int
        Consecutive trials of one staircase classified in one batch.
    """

    batch_trials: int = 8  # consecutive trials of one staircase classified in one batch

    def __post_init__(self) -> None:
        require(self.batch_trials >= 1, "batch_trials", "must be at least 1")


def _default_conditions() -> dict[str, Condition]:
    return {"random": Condition()}


@dataclass(kw_only=True)
class BubblesConfig(ExperimentConfig):
    """A Bubbles experiment YAML (see experiments/bubbles_gender.yaml for every key).

    Parameters
    ----------
    classify : {"gender", "identity"}, optional
        What the answer is (null: the task label).
    responses : dict
        Answer (a gender or identity of the set) -> key.
    bubbles, conditions, design, staircase, familiarisation, template_observer, model_observer
        The sections above; the shared sections are :class:`experiments.config.ExperimentConfig`'s.
    """

    paradigm: Literal["bubbles"] = "bubbles"
    classify: Literal["gender", "identity"] | None = None  # None: the task label
    responses: dict[str, str]  # answer (a gender or identity of the set) -> key
    bubbles: Bubbles = field(default_factory=Bubbles)
    conditions: dict[str, Condition] = field(default_factory=_default_conditions)
    design: Design = field(default_factory=Design)
    staircase: Staircase = field(default_factory=Staircase)
    familiarisation: Familiarisation = field(default_factory=Familiarisation)
    template_observer: TemplateSettings = field(default_factory=TemplateSettings)
    model_observer: ModelObserverSettings = field(default_factory=ModelObserverSettings)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classify is None:
            require(self.task in ("gender", "identity"), "classify",
                    f"is needed (gender or identity): the task label '{self.task}' does not say it")
            self.classify = self.task  # type: ignore[assignment]
        check_response_keys(self.responses, self.keys)
        for answer in self.responses:  # answers are class labels: they fill the truth/response columns
            require(is_name(answer), f"responses.{answer}", f"is not a valid class label ({NAME_RULE})")
        for name, condition in self.conditions.items():
            # condition names key files (ci_group_<task>_<condition>.npz): 'random A' must not become 'random-A'
            require(is_name(name), f"conditions.{name}", f"is not a valid condition name ({NAME_RULE})")
            mode = condition.mode or name
            require(mode in MODES, f"conditions.{name}.mode",
                    f"is needed: '{name}' is not one of {', '.join(MODES)}")
            condition.mode = mode  # type: ignore[assignment]
            require(mode == "random" or condition.variant is not None, f"conditions.{name}.variant",
                    "is needed: a guided condition names the model variant whose relevance guides it")
        for i, block in enumerate(self.design.blocks):
            require(block in self.conditions, f"design.blocks[{i}]",
                    f"'{block}' is not a condition (conditions: {', '.join(self.conditions)})")
        if self.design.practice_trials:
            require(self.design.practice_condition in self.conditions, "design.practice_condition",
                    f"'{self.design.practice_condition}' is not a condition "
                    f"(conditions: {', '.join(self.conditions)})")


def used_conditions(config: BubblesConfig) -> list[str]:
    """The conditions a session shows: its blocks' and, with practice trials, the practice one.

    Parameters
    ----------
    config : BubblesConfig
        A loaded Bubbles YAML.

    Returns
    -------
    list of str
        Condition names in the order first shown.

    Examples
    --------
    >>> used_conditions(load_experiment("experiments/bubbles_classic.yaml"))   # doctest: +SKIP
    ['random']
    """
    names = list(config.design.blocks)
    if config.design.practice_trials:
        names.append(config.design.practice_condition)
    return list(dict.fromkeys(names))
