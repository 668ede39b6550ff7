"""The similarity experiment YAML: which faces, the design, the keys and the simulated observers.

A ``paradigm: similarity`` YAML (see experiments/similarity.yaml for every key) holds the
shared sections of :class:`experiments.config.ExperimentConfig` plus the ones below; the task
is :class:`experiments.similarity.SimilarityTask`.

Examples
--------
>>> from experiments.config import load_experiment
>>> config = load_experiment("experiments/similarity.yaml")
>>> config.judgement, config.faces.n_identities, config.responses.triplet
('triplet', 20, ['left', 'down', 'right'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from stimuli.contracts.config import require

from .config import (
    MAX_PRACTICE_TRIALS,
    MAX_SESSION_TRIALS,
    MAX_TRIALS_PER_BLOCK,
    ExperimentConfig,
    Texts,
    check_response_keys,
)
from .observers.embedding import RATING_SCALE

__all__ = [
    "FaceSelection",
    "SimilarityDesign",
    "SimilarityResponses",
    "SimulatedObserverSettings",
    "ModelObserverSettings",
    "SimilarityConfig",
]

DISTANCE_METRICS = ("euclidean", "correlation", "cosine")


@dataclass(kw_only=True)
class FaceSelection:
    """Which faces of the prepared set are judged (the same for every session of a config).

    Parameters
    ----------
    stimulus_ids : list of str, optional
        An explicit list; then the keys below are not used.
    identities : list of str, optional
        Identities to draw from (null: every identity of the set).
    n_identities : int, optional
        How many of them (null: all).
    images_per_identity : int
        Images of each identity.
    pick : {"first", "random"}
        In sorted order, or drawn by ``selection_seed``.
    selection_seed : int
        Seed of a random pick.
    """

    stimulus_ids: list[str] | None = None  # an explicit list; then the keys below are not used
    identities: list[str] | None = None  # identities to draw from (null: every identity of the set)
    n_identities: int | None = None  # how many of them (null: all)
    images_per_identity: int = 1
    pick: Literal["first", "random"] = "first"  # first: in sorted order; random: drawn by selection_seed
    selection_seed: int = 0

    def __post_init__(self) -> None:
        require(self.stimulus_ids is None or (self.identities is None and self.n_identities is None), "stimulus_ids",
                "cannot be combined with identities or n_identities (list the faces, or choose identities)")
        require(self.stimulus_ids is None or len(set(self.stimulus_ids)) == len(self.stimulus_ids), "stimulus_ids",
                "lists a face more than once")
        require(self.n_identities is None or self.n_identities >= 1, "n_identities", "must be at least 1 or null")
        require(self.images_per_identity >= 1, "images_per_identity", "must be at least 1")
        require(self.selection_seed >= 0, "selection_seed", "must be a non-negative integer")


@dataclass(kw_only=True)
class SimilarityDesign:
    """How many trials a session has, in blocks, after optional practice.

    Parameters
    ----------
    trials, trials_per_block : int
        Main trials of a session, and trials between breaks.
    practice_trials : int
        Random triplets or pairs before the main trials (not analysed).
    cover_all_pairs : bool
        Refuse a design that leaves a pair of faces never judged.
    """

    trials: int = 300  # main trials of a session
    trials_per_block: int = 100  # a break after each block
    practice_trials: int = 0  # random triplets / pairs before the main trials (not analysed)
    cover_all_pairs: bool = True  # refuse a design that leaves a pair of faces never judged

    def __post_init__(self) -> None:
        require(self.trials >= 1, "trials", "must be at least 1")
        require(self.trials_per_block >= 1, "trials_per_block", "must be at least 1")
        require(self.practice_trials >= 0, "practice_trials", "must be 0 or more")
        for name, most in (("trials", MAX_SESSION_TRIALS), ("trials_per_block", MAX_TRIALS_PER_BLOCK),
                           ("practice_trials", MAX_PRACTICE_TRIALS)):  # refused, never clamped
            require(getattr(self, name) <= most, name, f"must be at most {most}")


@dataclass(kw_only=True)
class SimilarityResponses:
    """The keys (and the mouse) that answer triplets and ratings.

    Parameters
    ----------
    triplet : list of str
        Keys for the left, middle and right face.
    rating : list of str
        Keys for ratings 1 (very dissimilar) to 7 (very similar).
    mouse : bool
        Triplets: a left click on a face answers too.
    """

    triplet: list[str] = field(default_factory=lambda: ["left", "down", "right"])  # left, middle, right face
    rating: list[str] = field(default_factory=lambda: [str(i) for i in range(1, RATING_SCALE + 1)])  # 1..7
    mouse: bool = True  # triplets: a left click on a face answers too

    def __post_init__(self) -> None:
        require(len(self.triplet) == 3, "triplet", "needs three keys: for the left, middle and right face")
        require(len(self.rating) == RATING_SCALE, "rating",
                f"needs {RATING_SCALE} keys: for ratings 1 (very dissimilar) to {RATING_SCALE} (very similar)")


@dataclass(kw_only=True)
class SimulatedObserverSettings:
    """The simulated observer (:class:`EmbeddingObserver` on a known embedding).

    Parameters
    ----------
    embedding : str, optional
        CSV or NPZ file (relative to the YAML's folder); null: drawn from ``embedding_seed``.
    embedding_seed, dims : int
        Seed and dimensions of a drawn embedding.
    metric : {"euclidean", "correlation", "cosine"}
        Distance between faces.
    noise_sd : float
        Noise per pair and trial, in units of the largest distance.
    """

    embedding: str | None = None  # CSV or NPZ file (relative to this YAML's folder); null: drawn from embedding_seed
    embedding_seed: int = 0
    dims: int = 5  # dimensions of a drawn embedding
    metric: Literal["euclidean", "correlation", "cosine"] = "euclidean"
    noise_sd: float = 0.1  # per pair and trial, in units of the largest distance between two faces

    def __post_init__(self) -> None:
        require(self.embedding_seed >= 0, "embedding_seed", "must be a non-negative integer")
        require(self.dims >= 1, "dims", "must be at least 1")
        require(math.isfinite(self.noise_sd) and self.noise_sd >= 0, "noise_sd", "must be zero or positive")


@dataclass(kw_only=True)
class ModelObserverSettings:
    """The ``model:VARIANT`` observer: the same rule on a layer's activations.

    Parameters
    ----------
    layer : str
        A :mod:`model.rdm` layer name or alias.
    metric : {"correlation", "euclidean", "cosine"}
        Distance between activations.
    noise_sd : float
        Noise per pair and trial, in units of the largest distance.
    """

    layer: str = "penultimate"  # model.rdm layer name or alias
    metric: Literal["correlation", "euclidean", "cosine"] = "correlation"
    noise_sd: float = 0.0

    def __post_init__(self) -> None:
        require(math.isfinite(self.noise_sd) and self.noise_sd >= 0, "noise_sd", "must be zero or positive")


def _similarity_texts() -> Texts:
    return Texts(instructions="Look at the faces and judge how alike they look.\n\n{keys}\n\n"
                              "There are no right or wrong answers.\n\nPress space to start.")


@dataclass(kw_only=True)
class SimilarityConfig(ExperimentConfig):
    """A similarity experiment YAML (see experiments/similarity.yaml for every key).

    Parameters
    ----------
    judgement : {"triplet", "rating"}
        Odd one out of three faces, or a 1-7 rating of two.
    faces, design, responses, simulated_observer, model_observer
        The sections above; the shared sections are :class:`experiments.config.ExperimentConfig`'s.
    spacing : float
        Distance between face centres, in face widths.
    """

    paradigm: Literal["similarity"] = "similarity"
    judgement: Literal["triplet", "rating"] = "triplet"
    faces: FaceSelection = field(default_factory=FaceSelection)
    design: SimilarityDesign = field(default_factory=SimilarityDesign)
    responses: SimilarityResponses = field(default_factory=SimilarityResponses)
    spacing: float = 1.15  # distance between face centres, in face widths
    simulated_observer: SimulatedObserverSettings = field(default_factory=SimulatedObserverSettings)
    model_observer: ModelObserverSettings = field(default_factory=ModelObserverSettings)
    text: Texts = field(default_factory=_similarity_texts)
    feedback: bool = False  # there is no correct answer

    def __post_init__(self) -> None:
        super().__post_init__()
        require(not self.feedback, "feedback", "must be false: a similarity judgement has no correct answer")
        require(self.spacing >= 1, "spacing", "must be at least 1 (face widths between centres: faces must not overlap)")
        for name in ("triplet", "rating"):
            keys = getattr(self.responses, name)
            check_response_keys({f"{name} {i + 1}": k for i, k in enumerate(keys)}, self.keys,
                                f"responses.{name}")
