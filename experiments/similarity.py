"""Face-similarity judgements: one more task plugin of the session engine.

Two judgements (``judgement`` in the YAML):

* ``triplet`` odd-one-out: three faces side by side, "which face is least like the other
  two?", answered with one of three keys (left, middle, right face) or a mouse click on the
  face. The two faces not chosen count as the pair judged alike;
* ``rating``: two faces, "how similar are they?", answered 1 (very dissimilar) to 7 (very
  similar) with seven keys.

The faces are a fixed subset of a prepared set, judged in a balanced design drawn up front
from the session seed (:mod:`experiments.similarity_design`); the YAML is
:class:`experiments.similarity_config.SimilarityConfig`. Files, crash safety, resume and
refusal to overwrite are the engine's (:mod:`experiments.engine`); the trial-file columns
are :data:`stimuli.contracts.trials.SIMILARITY_COLUMNS`.

Observers without a screen (``--observer``):

* ``simulated``: :class:`experiments.observers.EmbeddingObserver` on a known embedding
  (``simulated_observer.embedding``: a CSV with a ``stimulus_id`` column and one column per dimension, or an NPZ with
  ``embedding`` and ``stimulus_id``; or, when null, standard normal coordinates drawn from
  ``embedding_seed``). Its distances (scaled to a largest distance of 1) plus Gaussian noise
  (``noise_sd`` per pair and trial, drawn from ``derive_seed(seed, "observer", trial)``)
  decide: the pair with the smallest noisy distance is chosen together, and a rating is
  ``1 + 6 (1 - d)`` rounded into 1..7. The embedding is recorded in the sidecar;
* ``model:VARIANT``: the same rule on the variant's penultimate-layer activations
  (``model_observer.layer``, ``metric``; :mod:`model.rdm`, imported only then).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stimuli.contracts.config import to_dict
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import PreparedSet, load_prepared_set
from stimuli.contracts.provenance import file_sha256
from stimuli.contracts.trials import SIMILARITY_COLUMNS

from .observers.base import Observer
from .observers.embedding import RATING_SCALE, EmbeddingObserver, load_embedding, scaled_distances
from .paradigms import register_paradigm
from .sequence import derive_seed
from .similarity_config import SimilarityConfig
from .similarity_design import balanced_pairs, balanced_triplets, pair_coverage, select_faces
from .task import Response, Task, Trial, stimulus_set_record

__all__ = ["SimilarityTask"]


@register_paradigm("similarity")
class SimilarityTask(Task):
    """Triplet odd-one-out or pairwise ratings on a subset of a prepared set (checked on load).

    Parameters
    ----------
    config : SimilarityConfig
        The loaded YAML.
    results : str
        The results root holding the prepared set.
    config_path : str
        The YAML (an embedding file's path is relative to it).
    """

    paradigm = "similarity"
    config_class = SimilarityConfig
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
            "Design": {"judgement": config.judgement, "rule": "experiments.similarity_design.balanced_triplets"
                       if config.judgement == "triplet" else "experiments.similarity_design.balanced_pairs",
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
            from model import load_variant  # lazy: model imports torch (model observers only)
            from model.rdm import variant_features  # lazy: as above
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

