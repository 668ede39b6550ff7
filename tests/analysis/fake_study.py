"""A small, seeded fake study for the report tests (a tiny set, trial files, relevance maps).

* Template "participants" whose accuracy rises with how much of the eyes the bubbles show;
  the number of bubbles follows a 1-up / 1-down-ish staircase (fewer after a correct
  answer, more after an error), so guided bubbles (drawn near the eyes) need fewer of them
  and antiguided ones more.
* Model observers (sidecar ``model:VARIANT``) that use the mouth instead.
* Relevance maps of 8 variants (imagenet/faces x gender/identity x 2 seeds) built so that
  seeds agree most, tasks less, pretraining least: a pretraining blob (eyes or mouth), a
  weaker task blob, per-seed and per-image noise.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from stimuli.bubbles import bubbles_mask, sample_centres
from stimuli.contracts.centres import format_centres
from stimuli.contracts.prepared import write_prepared_set
from stimuli.contracts.relevance import relevance_path, save_relevance
from stimuli.contracts.trials import TRIAL_COLUMNS, sidecar_path, trial_file_path
from stimuli.regions import region_mask

SHAPE = (40, 40)
N_FACES = 8
CLASSES = ("female", "male")
VARIANTS = [f"vgg16-{p}-{t}-s{s}" for p in ("imagenet", "faces") for t in ("gender", "identity") for s in (0, 1)]


def make_set(results: Path, name: str = "tiny") -> np.ndarray:
    """A prepared set of 8 smooth random faces with a face aperture; returns the aperture."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    face = np.exp(-(((yy - 20) / 14.0) ** 2 + ((xx - 20) / 11.0) ** 2))
    images = np.clip(0.3 + 0.5 * face + rng.normal(scale=0.05, size=(N_FACES, *SHAPE)), 0, 1).astype(np.float32)
    manifest = pd.DataFrame({
        "stimulus_id": [f"face{i:02d}" for i in range(N_FACES)], "identity": [f"id{i // 2}" for i in range(N_FACES)],
        "gender": [CLASSES[i % 2] for i in range(N_FACES)], "source": "synthetic",
    })
    aperture = np.zeros(SHAPE, dtype=bool)
    aperture[2:38, 4:36] = True
    write_prepared_set(results / "stimuli" / name, images, manifest, background=0.5, aperture=aperture)
    return aperture


def _density(region: np.ndarray, inside: float) -> np.ndarray:
    weights = np.where(region, inside, 1.0)
    return weights / weights.sum()


def simulate_session(seed: int, *, region: str = "eyes", trials: int = 120,
                     conditions=("random", "guided", "antiguided"), sigma_px: float = 2.5,
                     gain: float = 5.0, start_bubbles: int = 14) -> list[dict]:
    """Rows of one session: ``trials`` main trials per condition (blocks in a seeded order)."""
    rng = np.random.default_rng(seed)
    inside = region_mask(region, SHAPE)
    densities = {"random": None, "guided": _density(inside, 8.0), "antiguided": _density(~inside, 8.0)}
    n_bubbles = {c: start_bubbles for c in conditions}
    rows, onset, number = [], 0.0, 0
    for block, condition in enumerate(rng.permutation(list(conditions)), start=1):
        for _ in range(trials):
            number += 1
            n = n_bubbles[condition]
            centres = sample_centres(SHAPE, n, rng, weights=densities[condition])
            mask = bubbles_mask(SHAPE, centres, sigma_px)
            p = 0.5 + 0.5 * (1 - np.exp(-gain * float(mask[inside].mean())))
            correct = int(rng.random() < p)
            n_bubbles[condition] = max(2, n - 1) if correct else min(60, n + 3)
            face = int(rng.integers(N_FACES))
            truth = CLASSES[face % 2]
            onset += 1.5
            rows.append({
                "trial": number, "block": block, "phase": "main", "condition": str(condition),
                "stimulus_id": f"face{face:02d}", "truth": truth,
                "response": truth if correct else CLASSES[1 - CLASSES.index(truth)], "correct": correct,
                "rt_s": round(float(rng.uniform(0.4, 1.2)), 3), "n_bubbles": n, "sigma_px": sigma_px,
                "bubbles": format_centres(centres), "mask_seed": seed * 100000 + number, "onset_s": round(onset, 3),
                "dropped_frames": 0,
            })
    return rows


def write_session(data_root: Path, participant: str, session: int, rows: list[dict], observer: dict,
                  task: str = "gender", columns=tuple(TRIAL_COLUMNS)) -> Path:
    """A trial file (n/a for missing cells) and its sidecar naming the observer.

    The sidecar's ``Masks`` record says every condition's centres share one density, which
    the analysis estimates from the pooled centres (as for random conditions): the fake
    guided densities are not made from a relevance file, so there is none to rebuild.
    """
    path = trial_file_path(data_root, participant, session, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(columns)]
    lines += ["\t".join("n/a" if row.get(c) is None else str(row[c]) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sidecar = {c: {"Description": TRIAL_COLUMNS.get(c, "")} for c in columns}
    sidecar.update(TaskName=task, Observer=observer, Masks={
        "conditions": {c: {"mode": "random"} for c in sorted({str(r["condition"]) for r in rows})}})
    sidecar_path(path).write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
    return path


TEMPLATE = {"kind": "template", "spec": "template"}


def model_observer(variant: str) -> dict:
    return {"kind": "model", "spec": f"model:{variant}", "variant": variant}


def make_relevance(results: Path, set_name: str = "tiny", variants=tuple(VARIANTS), n_images: int = N_FACES,
                   nan_in: str | None = None, baselines: bool = True) -> list[Path]:
    """Relevance npz files of ``variants``: seeds alike, tasks less, pretraining least; with
    ``baselines`` also each variant's ``untrained`` and ``random`` baseline maps (a shared
    face-and-image pattern under much per-variant noise: alike, but less than trained seeds)."""
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]

    def blob(row, col, size):
        return np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * size**2))

    pretrain_blob = {"imagenet": blob(13, 20, 5) + 0.3 * blob(28, 8, 4), "faces": blob(29, 20, 5) + 0.3 * blob(12, 32, 4)}
    task_blob = {"gender": blob(20, 10, 4), "identity": blob(20, 30, 4)}
    paths = []
    for variant in variants:
        _, pretrain, task, seed = variant.split("-")
        rng = np.random.default_rng(zlib.crc32(variant.encode()))
        image_rng = np.random.default_rng(7)  # the same image-specific pattern for every variant
        base = pretrain_blob[pretrain] + 0.6 * task_blob[task] + 0.15 * rng.normal(size=SHAPE)
        maps = np.stack([base * (1 + 0.2 * image_rng.normal()) + 0.25 * image_rng.normal(size=SHAPE)
                         + 0.15 * rng.normal(size=SHAPE) for _ in range(n_images)]).astype(np.float32)
        if variant == nan_in:
            maps[1, 3, 4] = np.nan
        logits = maps.sum(axis=(1, 2))
        ids = [f"face{i:02d}" for i in range(n_images)]
        targets = np.arange(n_images) % 2
        meta = {"variant": variant, "composite": "epsilon_plus_flat", "canonizer": None, "target": "true"}
        paths.append(save_relevance(relevance_path(variant, set_name, results), maps, ids, targets, targets, logits,
                                    meta))
        if baselines:
            paths.extend(_baseline_files(results, set_name, variant, n_images, blob(20, 20, 9), meta))
    return paths


def _baseline_files(results: Path, set_name: str, variant: str, n_images: int, face: np.ndarray,
                    meta: dict) -> list[Path]:
    from stimuli.contracts.relevance import baseline_set

    paths = []
    for kind, shared in (("untrained", 1.0), ("random", 0.2)):
        rng = np.random.default_rng(zlib.crc32(f"{variant}:{kind}".encode()))
        image_rng = np.random.default_rng(7)
        maps = np.stack([shared * (face + 0.25 * image_rng.normal(size=SHAPE)) + 0.45 * rng.normal(size=SHAPE)
                         for _ in range(n_images)]).astype(np.float32)
        record = {"kind": kind, "seed": 0, "trainable": "block5",
                  "reinitialised": ["features.24", "features.26", "features.28", "classifier.0", "classifier.3",
                                    "classifier.6"] if kind == "untrained" else ["features.0"]}
        ids = [f"face{i:02d}" for i in range(n_images)]
        targets = np.arange(n_images) % 2
        paths.append(save_relevance(relevance_path(variant, baseline_set(set_name, kind), results), maps, ids,
                                    targets, targets, maps.sum(axis=(1, 2)), {**meta, "baseline": record}))
    return paths


def make_study(root: Path, *, participants: int = 4, trials: int = 120, model_variants=("vgg16-imagenet-gender-s0",),
               relevance: bool = True) -> dict[str, Path]:
    """Everything a report reads, under ``root``: results/ (set, relevance), simulated/ (trials)."""
    results, simulated = root / "results", root / "simulated"
    aperture = make_set(results)
    for i in range(participants):
        write_session(simulated, f"{i + 1:02d}", 1, simulate_session(100 + i, trials=trials), TEMPLATE)
    for j, variant in enumerate(model_variants):
        rows = simulate_session(500 + j, region="mouth", trials=trials, conditions=("random", "guided"))
        write_session(simulated, f"m{j + 1:02d}", 1, rows, model_observer(variant))
    if relevance:
        make_relevance(results)
        make_evaluate(results / "evaluate" / "demo_evaluate")
    return {"root": root, "results": results, "simulated": simulated, "aperture": aperture}


def write_config(path: Path, study: dict[str, Path], **overrides) -> Path:
    """A report config for ``study`` (tiny sizes), with top-level keys overridden."""
    import yaml

    config = {
        "stimuli": "tiny", "tasks": ["gender"], "title": "Test report", "results": str(study["results"]),
        "data": {"people": str(study["root"] / "people"), "simulated": str(study["simulated"])},
        "seed": 3, "exclusion": {"min_trials": 50},
        "models": {"split_half_splits": 10, "evaluate": str(study["results"] / "evaluate" / "demo_evaluate")},
        "alignment": {"reference": "template", "null_draws": 40, "noise_splits": 20},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def make_evaluate(folder: Path, variants=tuple(VARIANTS), fractions=(0.0, 0.1, 0.2, 0.5)) -> Path:
    """Masking tables in the layout of ``python -m model evaluate`` (``<folder>/tables/*.csv``):
    own maps hurt most, then other seeds, tasks, pretraining; imagenet maps serve faces targets
    better than the reverse (an asymmetry); random masks hurt least."""
    from stimuli.contracts.variants import variant_relation

    strength = {"same": 1.0, "seed": 0.9, "task": 0.7, "pretrain": 0.35}
    rng = np.random.default_rng(11)
    rows = []
    for t_index, target in enumerate(variants):
        unmasked = 0.9 - 0.01 * t_index
        for source in [*variants, "random"]:
            relation = "random" if source == "random" else variant_relation(source, target)
            if relation == "other":
                s = 0.3
            else:
                s = 0.1 if relation == "random" else strength[relation]
            if relation == "pretrain" and "imagenet" in source:
                s += 0.15
            s += rng.normal(scale=0.03)
            for fraction in fractions:
                drop = 0.4 * s * np.sqrt(fraction)
                rows.append({"source": source, "target": target, "mode": "remove", "fraction": fraction,
                             "accuracy": unmasked - drop, "accuracy_sd": 0.0, "p_true": unmasked - drop,
                             "n_images": 40, "repeats": 1, "fill": "background", "unmasked_accuracy": unmasked,
                             "chance": 0.5, "majority": 0.5})
    accuracy = pd.DataFrame(rows)
    aopc = (accuracy.groupby(["source", "target"], sort=False)
            .apply(lambda c: float(np.mean(c.accuracy.iloc[0] - c.accuracy)), include_groups=False)
            .rename("aopc").reset_index())
    own = {r.target: r.aopc for r in aopc.itertuples() if r.source == r.target}
    rand = {r.target: r.aopc for r in aopc.itertuples() if r.source == "random"}
    transfer = pd.DataFrame([
        {"source": r.source, "target": r.target, "mode": "remove", "aopc": r.aopc, "aopc_own": own[r.target],
         "aopc_random": rand[r.target], "relative": (r.aopc - rand[r.target]) / (own[r.target] - rand[r.target])}
        for r in aopc.itertuples() if r.source != "random"])
    value = {(r.source, r.target): r for r in transfer.itertuples()}
    names = sorted(variants)
    asymmetry = pd.DataFrame([
        {"a": a, "b": b, "mode": "remove", "m_ab": value[a, b].aopc, "m_ba": value[b, a].aopc,
         "asymmetry": value[a, b].aopc - value[b, a].aopc, "relative_ab": value[a, b].relative,
         "relative_ba": value[b, a].relative, "relative_asymmetry": value[a, b].relative - value[b, a].relative}
        for i, a in enumerate(names) for b in names[i + 1:]])
    # the per-pair bootstrap over images of model evaluate: a CI of +-0.08, significant beyond 0.1
    difference = asymmetry["relative_asymmetry"]
    asymmetry["relative_asymmetry_ci_low"] = difference - 0.08
    asymmetry["relative_asymmetry_ci_high"] = difference + 0.08
    asymmetry["relative_asymmetry_p"] = np.where(difference.abs() > 0.1, 0.002, 0.6)
    tables = folder / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    accuracy.to_csv(tables / "accuracy.csv", index=False)
    transfer.to_csv(tables / "transfer_remove.csv", index=False)
    asymmetry.to_csv(tables / "asymmetry_remove.csv", index=False)
    (folder / "summary.json").write_text(json.dumps({"variants": list(variants), "stimuli": "tiny"}))
    return folder
