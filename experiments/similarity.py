"""Face-similarity judgements: one more task plugin of the session engine.

Two judgements (``judgement`` in the YAML):

* ``triplet`` odd-one-out: three faces side by side, "which face is least like the other
  two?", answered with one of three keys (left, middle, right face) or a mouse click on the
  face. The two faces not chosen count as the pair judged alike;
* ``rating``: two faces, "how similar are they?", answered 1 (very dissimilar) to 7 (very
  similar) with seven keys.

The faces are a fixed subset of a prepared set (``faces``: identities, images per identity,
chosen by ``selection_seed``, the same for every participant so that their RDMs compare).
The main trials are drawn up front from the session seed with a balanced design
(:func:`balanced_triplets`, :func:`balanced_pairs`): every pair of faces is covered, pairs as
equally often as the number of trials allows, and every prefix of the sequence as balanced as
it can be (a stopped session still covers its pairs evenly). Screen positions are shuffled per
trial. Files, crash safety, resume and refusal to overwrite are the engine's
(:mod:`experiments.run`); the trial-file columns are :data:`stimuli.contracts.trials.SIMILARITY_COLUMNS`.

Observers without a screen (``--observer``):

* ``simulated``: :class:`EmbeddingObserver` on a known embedding (``simulated_observer.embedding``:
  a CSV with a ``stimulus_id`` column and one column per dimension, or an NPZ with
  ``embedding`` and ``stimulus_id``; or, when null, standard normal coordinates drawn from
  ``embedding_seed``). Its distances (scaled to a largest distance of 1) plus Gaussian noise
  (``noise_sd`` per pair and trial, drawn from ``derive_seed(seed, "observer", trial)``)
  decide: the pair with the smallest noisy distance is chosen together, and a rating is
  ``1 + 6 (1 - d)`` rounded into 1..7. The embedding is recorded in the sidecar;
* ``model:VARIANT``: the same rule on the variant's penultimate-layer activations
  (``model_observer.layer``, ``metric``; :mod:`model.rdm`, imported only then).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> design = balanced_triplets(6, 10, rng)
>>> design.shape, len({tuple(sorted(p)) for t in design for p in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2]))})
((10, 3), 15)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist, squareform

from stimuli.contracts.config import require, to_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import PreparedSet, load_prepared_set
from stimuli.contracts.provenance import file_sha256
from stimuli.contracts.trials import SIMILARITY_COLUMNS

from .config import (
    MAX_PRACTICE_TRIALS,
    MAX_SESSION_TRIALS,
    MAX_TRIALS_PER_BLOCK,
    ExperimentConfig,
    Texts,
    check_response_keys,
    register_paradigm,
)
from .observers import Observer
from .sequence import derive_seed
from .task import Response, Task, Trial, stimulus_set_record

__all__ = [
    "FaceSelection",
    "SimilarityDesign",
    "SimilarityResponses",
    "SimulatedObserverSettings",
    "ModelObserverSettings",
    "SimilarityConfig",
    "SimilarityTask",
    "EmbeddingObserver",
    "select_faces",
    "balanced_triplets",
    "balanced_pairs",
    "pair_coverage",
    "load_embedding",
    "RATING_SCALE",
]

RATING_SCALE = 7
DISTANCE_METRICS = ("euclidean", "correlation", "cosine")


# ----------------------------------------------------------------------------- config
@dataclass(kw_only=True)
class FaceSelection:
    """Which faces of the prepared set are judged (the same for every session of a config)."""

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
    triplet: list[str] = field(default_factory=lambda: ["left", "down", "right"])  # left, middle, right face
    rating: list[str] = field(default_factory=lambda: [str(i) for i in range(1, RATING_SCALE + 1)])  # 1..7
    mouse: bool = True  # triplets: a left click on a face answers too

    def __post_init__(self) -> None:
        require(len(self.triplet) == 3, "triplet", "needs three keys: for the left, middle and right face")
        require(len(self.rating) == RATING_SCALE, "rating",
                f"needs {RATING_SCALE} keys: for ratings 1 (very dissimilar) to {RATING_SCALE} (very similar)")


@dataclass(kw_only=True)
class SimulatedObserverSettings:
    """The simulated observer (:class:`EmbeddingObserver` on a known embedding)."""

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
    """The ``model:VARIANT`` observer: the same rule on a layer's activations."""

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
    """A similarity experiment YAML (see experiments/similarity.yaml for every key)."""

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


# ----------------------------------------------------------------------------- design
def select_faces(manifest: pd.DataFrame, faces: FaceSelection, where: str = "config") -> list[str]:
    """The stimulus ids judged: explicit ids, or identities x images (sorted, or drawn by the seed)."""
    ids = manifest.stimulus_id.astype(str)
    if faces.stimulus_ids is not None:
        present = set(ids)
        missing = [s for s in faces.stimulus_ids if s not in present]
        if missing:
            raise InputError(f"{where}: key 'faces.stimulus_ids': '{missing[0]}' is not in the stimulus set")
        return list(faces.stimulus_ids)
    rng = np.random.default_rng(faces.selection_seed)
    identity = manifest.identity.astype(str)
    available = sorted(set(identity))
    chosen = available if faces.identities is None else list(faces.identities)
    unknown = [i for i in chosen if i not in set(available)]
    if unknown:
        raise InputError(f"{where}: key 'faces.identities': '{unknown[0]}' is not an identity of the stimulus set "
                         f"(it has {', '.join(available[:8])}{', ...' if len(available) > 8 else ''})")
    if faces.n_identities is not None:
        if faces.n_identities > len(chosen):
            raise InputError(f"{where}: key 'faces.n_identities' is {faces.n_identities} but only {len(chosen)} "
                             "identities are available")
        chosen = chosen[:faces.n_identities] if faces.pick == "first" else \
            [chosen[i] for i in sorted(rng.choice(len(chosen), faces.n_identities, replace=False))]
    selected: list[str] = []
    for person in chosen:
        own = sorted(ids[identity == person])
        if len(own) < faces.images_per_identity:
            raise InputError(f"{where}: key 'faces.images_per_identity' is {faces.images_per_identity} but identity "
                             f"'{person}' has {len(own)} image(s)")
        picked = own[:faces.images_per_identity] if faces.pick == "first" else \
            [own[i] for i in sorted(rng.choice(len(own), faces.images_per_identity, replace=False))]
        selected.extend(picked)
    return selected


def _pairs_of(items: Sequence[int]) -> list[tuple[int, int]]:
    return [(min(a, b), max(a, b)) for i, a in enumerate(items) for b in items[i + 1:]]


def pair_coverage(trials: np.ndarray, n: int) -> np.ndarray:
    """(n, n) how often each pair of items appears together in ``trials`` (rows of item indices)."""
    counts = np.zeros((n, n), dtype=np.int64)
    trials = np.asarray(trials)
    for a in range(trials.shape[1]):
        for b in range(a + 1, trials.shape[1]):
            np.add.at(counts, (trials[:, a], trials[:, b]), 1)
    return counts + counts.T


def balanced_triplets(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` triplets of ``n`` items (rows of 3 distinct indices, in screen order).

    Greedy balanced design: each triplet takes the least-covered pair (ties: items shown
    least, then at random) and the third item whose pairs with it are least covered. Every
    pair is covered once ``count`` passes roughly ``n (n - 1) / 6`` (each triplet covers three
    pairs); after that, pair counts differ by as little as the greedy choice can keep them.
    """
    if n < 3:
        raise InputError(f"a triplet needs 3 faces, the selection has {n}")
    pairs = np.zeros((n, n), dtype=np.int64)
    shown = np.zeros(n, dtype=np.int64)
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    out = np.empty((count, 3), dtype=np.int64)
    for t in range(count):
        # lexicographic: pair count, then how often its items were shown, then chance
        score = pairs * (4.0 * n * (count + 1)) + (shown[:, None] + shown[None, :]) + rng.random((n, n)) * 0.5
        score[~upper] = np.inf
        i, j = np.unravel_index(int(np.argmin(score)), score.shape)
        cost = (pairs[i] + pairs[j]) * (4.0 * (count + 1)) + shown + rng.random(n) * 0.5
        cost[[i, j]] = np.inf
        k = int(np.argmin(cost))
        for a, b in ((i, j), (i, k), (j, k)):
            pairs[a, b] += 1
            pairs[b, a] += 1
        shown[[i, j, k]] += 1
        out[t] = rng.permutation([i, j, k])
    return out


def balanced_pairs(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` pairs of ``n`` items (rows of 2 indices, in screen order): every pair equally
    often (counts differ by at most one), shuffled, the screen side of each drawn at random."""
    if n < 2:
        raise InputError(f"a rating needs 2 faces, the selection has {n}")
    every = np.array(_pairs_of(list(range(n))), dtype=np.int64)
    rounds = [every[rng.permutation(len(every))] for _ in range(-(-count // len(every)))]
    chosen = np.concatenate(rounds)[:count]
    flip = rng.random(count) < 0.5
    chosen[flip] = chosen[flip][:, ::-1]
    return chosen


# ----------------------------------------------------------------------------- observers
def load_embedding(path: str | os.PathLike, ids: Sequence[str]) -> np.ndarray:
    """An embedding file -> (len(ids), D) float64 rows in the order of ``ids``.

    CSV: a ``stimulus_id`` column and one numeric column per dimension. NPZ: ``embedding``
    (N, D) and ``stimulus_id`` (N,). Every face of ``ids`` needs a row.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: embedding file not found")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "embedding" not in data.files or "stimulus_id" not in data.files:
                    raise InputError(f"{path}: an embedding NPZ needs arrays 'embedding' and 'stimulus_id'")
                values, names = data["embedding"].astype(np.float64), data["stimulus_id"].astype(str)
        else:
            table = pd.read_csv(path)
            if "stimulus_id" not in table.columns or table.shape[1] < 2:
                raise InputError(f"{path}: an embedding CSV needs a 'stimulus_id' column and one column per dimension")
            names = table.stimulus_id.astype(str).to_numpy()
            numeric = table.drop(columns="stimulus_id").apply(pd.to_numeric, errors="coerce")
            if numeric.isna().any().any():
                row = int(np.flatnonzero(numeric.isna().any(axis=1).to_numpy())[0]) + 2
                raise InputError(f"{path}, line {row}: a coordinate is missing or not a number")
            values = numeric.to_numpy(np.float64)
    except (OSError, ValueError, EOFError, pd.errors.ParserError) as error:
        raise InputError(f"{path}: unreadable embedding ({error})") from None
    if values.ndim != 2 or len(values) != len(names):
        raise InputError(f"{path}: embedding must be (N, D) with one stimulus_id per row")
    if not np.isfinite(values).all():
        raise InputError(f"{path}: the embedding holds NaN or infinite values")
    index = {s: i for i, s in enumerate(names)}
    missing = [s for s in ids if s not in index]
    if missing:
        raise InputError(f"{path}: no row for face '{missing[0]}' ({len(missing)} of the judged faces missing)")
    return values[[index[s] for s in ids]]


def scaled_distances(features: np.ndarray, metric: str) -> np.ndarray:
    """(N, N) distances between rows, scaled so that the largest is 1 (constant rows: 1 apart)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        distances = np.nan_to_num(squareform(pdist(np.asarray(features, np.float64), metric=metric)), nan=1.0)
    np.fill_diagonal(distances, 0.0)
    top = distances.max()
    return distances / top if top > 0 else distances


class EmbeddingObserver(Observer):
    """Judges similarity from distances between faces (scaled to a largest distance of 1) plus noise.

    Triplet: the pair with the smallest noisy distance is alike, the third face is the odd
    one out. Rating: ``round(1 + 6 (1 - d))`` clipped to 1..7. Each trial's noise (one draw
    per pair) comes from ``derive_seed(seed, "observer", trial)``: a resumed session gives
    the same answers.

    Examples
    --------
    >>> points = np.array([[0.0], [0.1], [5.0]])
    >>> observer = EmbeddingObserver(scaled_distances(points, "euclidean"), ["a", "b", "c"], noise_sd=0.0)
    >>> trial = Trial(row={"trial": 1, "condition": "triplet", "stimulus_1": "c", "stimulus_2": "a",
    ...                    "stimulus_3": "b"}, images=[], choices={}, payload={"indices": [2, 0, 1]})
    >>> observer.respond([trial])[0].response
    'c'
    """

    kind = "simulated"

    def __init__(self, distances: np.ndarray, ids: Sequence[str], *, noise_sd: float = 0.1, seed: int = 0,
                 kind: str = "simulated", info: dict[str, Any] | None = None) -> None:
        self.distances = np.asarray(distances, dtype=np.float64)
        self.ids = list(ids)
        self.noise_sd = float(noise_sd)
        self.seed = int(seed)
        self.kind = kind
        self.info = dict(info or {})

    def _noise(self, trial: int, size: int) -> np.ndarray:
        if self.noise_sd == 0:
            return np.zeros(size)
        return self.noise_sd * np.random.default_rng(derive_seed(self.seed, "observer", trial)).standard_normal(size)

    def judge(self, condition: str, indices: Sequence[int], trial: int) -> int | str:
        """Triplet: the position (0, 1, 2) of the odd one out; rating: the rating as text."""
        d = self.distances
        if condition == "triplet":
            a, b, c = indices
            noisy = np.array([d[a, b], d[a, c], d[b, c]]) + self._noise(trial, 3)
            return (2, 1, 0)[int(np.argmin(noisy))]  # pair (a, b) alike -> c is odd, ...
        a, b = indices
        value = d[a, b] + self._noise(trial, 1)[0]
        return str(int(np.clip(np.rint(1 + (RATING_SCALE - 1) * (1 - value)), 1, RATING_SCALE)))

    def respond(self, trials: Sequence[Trial]) -> list[Response]:
        responses = []
        for trial in trials:
            condition = trial.row["condition"]
            answer = self.judge(condition, trial.payload["indices"], trial.number)
            if condition == "triplet":
                answer = str(trial.row[f"stimulus_{int(answer) + 1}"])
            responses.append(Response(str(answer)))
        return responses

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "noise_sd": self.noise_sd,
                "noise_seed": "derive_seed(session seed, 'observer', trial)",
                "decision": "triplet: the pair with the smallest noisy distance is alike, the third face is the "
                            "odd one out; rating: round(1 + 6 (1 - d)) in 1..7; distances scaled to a largest "
                            "distance of 1 (experiments.similarity.EmbeddingObserver)",
                **self.info}


# ----------------------------------------------------------------------------- task
class SimilarityTask(Task):
    """Triplet odd-one-out or pairwise ratings on a subset of a prepared set (checked on load)."""

    paradigm = "similarity"
    observer_forms = {"simulated": ("simulated",), "model": ("model:VARIANT",)}

    def __init__(self, config: SimilarityConfig, *, results: str = "results", config_path: str = "") -> None:
        super().__init__(config, results=results, config_path=config_path)
        where = config_path or "config"
        self.where = where
        self.set: PreparedSet = load_prepared_set(config.stimuli, results)
        self.background = self.set.background
        self.ids = select_faces(self.set.manifest, config.faces, where)
        self.index = {s: i for i, s in enumerate(self.ids)}
        n, per_trial = len(self.ids), 3 if config.judgement == "triplet" else 2
        if n < per_trial:
            raise InputError(f"{where}: key 'faces': {n} face(s) selected, a {config.judgement} needs {per_trial}")
        self.n_pairs = n * (n - 1) // 2
        if config.design.cover_all_pairs:
            least = -(-self.n_pairs // 3) if config.judgement == "triplet" else self.n_pairs
            if config.design.trials < least:
                raise InputError(f"{where}: key 'design.trials': {config.design.trials} {config.judgement} trials "
                                 f"cannot cover all {self.n_pairs} pairs of {n} faces (at least {least} needed; "
                                 "or set design.cover_all_pairs: false)")
        self.coverage: dict[str, Any] = {}
        self._embedding_file = self._embedding_path()

    def _embedding_path(self) -> Path | None:
        name = self.config.simulated_observer.embedding
        if name is None:
            return None
        path = Path(name)
        if not path.is_absolute() and self.config_path:
            path = Path(self.config_path).parent / path
        return path

    # --- the Task interface ---------------------------------------------------------------------
    def columns(self) -> dict[str, str]:
        return dict(SIMILARITY_COLUMNS)

    def planned_columns(self) -> tuple[str, ...]:
        return ("trial", "block", "phase", "condition", "stimulus_1", "stimulus_2", "stimulus_3")

    def _design(self, count: int, rng: np.random.Generator) -> np.ndarray:
        n = len(self.ids)
        if self.config.judgement == "triplet":
            return balanced_triplets(n, count, rng)
        return balanced_pairs(n, count, rng)

    def plan(self, seed: int) -> list[dict[str, Any]]:
        design = self.config.design
        rng = np.random.default_rng(derive_seed(seed, "plan"))
        n = len(self.ids)
        main = self._design(design.trials, rng)
        counts = pair_coverage(main, n)[np.triu_indices(n, 1)]
        self.coverage = {"pairs": int(len(counts)), "pairs_covered": int((counts > 0).sum()),
                         "min_per_pair": int(counts.min()), "max_per_pair": int(counts.max())}
        if design.cover_all_pairs and counts.min() == 0:
            raise InputError(f"{self.where}: key 'design.trials': {design.trials} trials leave "
                             f"{int((counts == 0).sum())} of {len(counts)} pairs uncovered with this seed; "
                             "add trials (or set design.cover_all_pairs: false)")
        width = main.shape[1]
        practice = np.stack([rng.choice(n, width, replace=False) for _ in range(design.practice_trials)]) \
            if design.practice_trials else np.empty((0, width), dtype=np.int64)
        rows = []
        for phase, items in (("practice", practice), ("main", main)):
            for k, trial in enumerate(items):
                faces = [self.ids[int(i)] for i in trial] + [None] * (3 - width)
                rows.append({
                    "trial": len(rows) + 1,
                    "block": 0 if phase == "practice" else 1 + k // design.trials_per_block,
                    "phase": phase,
                    "condition": self.config.judgement,
                    "stimulus_1": faces[0], "stimulus_2": faces[1], "stimulus_3": faces[2],
                })
        return rows

    def _positions(self, count: int) -> list[tuple[float, float]]:
        spacing = self.config.spacing
        return [((i - (count - 1) / 2) * spacing, 0.0) for i in range(count)]

    def prepare(self, planned: dict[str, Any]) -> Trial:
        faces = [planned[f"stimulus_{i}"] for i in (1, 2, 3) if planned.get(f"stimulus_{i}") is not None]
        images = [self.set.image(s) for s in faces]
        responses = self.config.responses
        if planned["condition"] == "triplet":
            choices = dict(zip(responses.triplet, faces))
            clicks: list[str | None] = list(faces) if responses.mouse else []
        else:
            choices = {key: str(i + 1) for i, key in enumerate(responses.rating)}
            clicks = []
        return Trial(row=dict(planned), images=images, choices=choices, positions=self._positions(len(faces)),
                     payload={"indices": [self.index[s] for s in faces]}, hold=True, clicks=clicks)

    def record(self, trial: Trial, response: Response) -> dict[str, Any]:
        row = dict(trial.row)
        position = None
        if row["condition"] == "triplet" and response.response is not None:
            faces = [row["stimulus_1"], row["stimulus_2"], row["stimulus_3"]]
            position = faces.index(response.response) + 1
        row.update(response=response.response, response_position=position, response_key=response.extra.get("key"),
                   rt_s=response.rt_s, onset_s=response.onset_s, dropped_frames=response.dropped_frames)
        return row

    def levels(self) -> dict[str, dict[str, str]]:
        return {"phase": {"practice": "practice trials (random faces, not analysed)",
                          "main": "main trials (the balanced design)"},
                "condition": {"triplet": "odd one out of three faces", "rating": "similarity of two faces, 1-7"},
                "response_position": {"1": "left face", "2": "middle face", "3": "right face"}}

    def key_help(self) -> str:
        responses = self.config.responses
        if self.config.judgement == "triplet":
            keys = " / ".join(k.upper() for k in responses.triplet)
            click = " (or click that face)" if responses.mouse else ""
            return (f"Which face is least like the other two?\n{keys} = the left / middle / right face{click}")
        return (f"How similar are the two faces?\n{responses.rating[0].upper()} = very dissimilar ... "
                f"{responses.rating[-1].upper()} = very similar")

    def inputs(self) -> list[str]:
        files = [str(self.set.folder / "manifest.csv"), str(self.set.folder / "set.json")]
        return files + ([str(self._embedding_file)] if self._embedding_file is not None else [])

    def sidecar(self) -> dict[str, Any]:
        config = self.config
        return {
            "StimulusSet": stimulus_set_record(self.set),
            "Faces": {"stimulus_ids": list(self.ids), "selection": to_dict(config.faces)},
            "Design": {"judgement": config.judgement, "rule": "experiments.similarity.balanced_triplets"
                       if config.judgement == "triplet" else "experiments.similarity.balanced_pairs",
                       "plan_seed": "derive_seed(session seed, 'plan')", **self.coverage},
            "Responses": {"triplet": dict(zip(("left", "middle", "right"), config.responses.triplet)),
                          "rating": dict(zip(range(1, RATING_SCALE + 1), config.responses.rating)),
                          "mouse": config.responses.mouse},
        }

    # --- observers ------------------------------------------------------------------------------
    def simulated_embedding(self) -> tuple[np.ndarray, dict[str, Any]]:
        """The simulated observer's embedding of the judged faces and how it was obtained."""
        settings = self.config.simulated_observer
        if self._embedding_file is not None:
            values = load_embedding(self._embedding_file, self.ids)
            source = {"file": str(self._embedding_file), "sha256": file_sha256(self._embedding_file)}
        else:
            rng = np.random.default_rng(settings.embedding_seed)
            values = rng.standard_normal((len(self.ids), settings.dims))
            source = {"generated": "numpy.random.default_rng(embedding_seed).standard_normal((faces, dims))",
                      "embedding_seed": settings.embedding_seed, "dims": settings.dims}
        return values, source

    def make_observer(self, kind: str, argument: str | None, *, seed: int,
                      results: str = "results") -> Observer | None:
        if kind == "simulated":
            settings = self.config.simulated_observer
            values, source = self.simulated_embedding()
            info = {"embedding": {**source, "metric": settings.metric, "stimulus_id": list(self.ids),
                                  "values": values.tolist()}}
            return EmbeddingObserver(scaled_distances(values, settings.metric), self.ids,
                                     noise_sd=settings.noise_sd, seed=seed, info=info)
        if kind == "model":
            return self._model_observer(str(argument), seed, results)
        raise InputError(f"--observer {kind}: the similarity task has no {kind} observer")

    def _model_observer(self, variant: str, seed: int, results: str) -> EmbeddingObserver:
        settings = self.config.model_observer
        try:
            from model import load_variant
            from model.rdm import variant_features
        except ImportError as error:
            raise InputError(f"the model observer needs the model package (pip install '.[all]'): {error}") from None
        loaded = load_variant(variant, results)
        images = np.stack([self.set.image(s) for s in self.ids])
        try:
            feats, names = variant_features(loaded, images, [settings.layer])
        except InputError as error:
            raise InputError(f"{self.where}: key 'model_observer.layer': {error}") from None
        info = {"variant": variant, "layer": settings.layer, "layer_module": names[settings.layer],
                "metric": settings.metric, "features": int(feats[settings.layer].shape[1])}
        return EmbeddingObserver(scaled_distances(feats[settings.layer], settings.metric), self.ids,
                                 noise_sd=settings.noise_sd, seed=seed, kind="model", info=info)


register_paradigm("similarity", SimilarityConfig, SimilarityTask)
