"""A small seeded simulated Bubbles observer that writes proper trial files (tests only).

Probability correct rises with the mask mass inside a known diagnostic region:
``p = 0.5 + 0.5 * (1 - exp(-gain * mean(mask[region])))``; with ``gain=0`` the observer
answers at a fixed accuracy whatever the mask shows (the null).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stimuli.bubbles import bubbles_mask, sample_centres
from stimuli.contracts.centres import format_centres
from stimuli.contracts.trials import TRIAL_COLUMNS, sidecar_path, trial_file_path
from stimuli.regions import region_mask

CLASSES = ("female", "male")


def simulate_trials(shape, region, *, n_trials, sigma_px, n_bubbles, seed, gain=4.0,
                    null_accuracy=0.75, condition="random", n_practice=0):
    """Rows (dicts of TRIAL_COLUMNS) of one simulated session."""
    rng = np.random.default_rng(seed)
    inside = region_mask(region, shape) if isinstance(region, str) else np.asarray(region, bool)
    low, high = (n_bubbles, n_bubbles) if np.isscalar(n_bubbles) else n_bubbles
    rows, onset = [], 0.0
    for i in range(n_practice + n_trials):
        n = int(rng.integers(low, high + 1))
        centres = sample_centres(shape, n, rng)
        mask = bubbles_mask(shape, centres, sigma_px)
        if gain > 0:
            p = 0.5 + 0.5 * (1 - np.exp(-gain * float(mask[inside].mean())))
        else:
            p = null_accuracy
        correct = int(rng.random() < p)
        truth = CLASSES[int(rng.integers(2))]
        onset += 1.5
        rows.append({
            "trial": i + 1, "block": 0 if i < n_practice else 1 + (i - n_practice) // 100,
            "phase": "practice" if i < n_practice else "main", "condition": condition,
            "stimulus_id": f"face{int(rng.integers(4)):02d}", "truth": truth,
            "response": truth if correct else CLASSES[1 - CLASSES.index(truth)],
            "correct": correct, "rt_s": round(float(rng.uniform(0.4, 1.2)), 3), "n_bubbles": n,
            "sigma_px": sigma_px, "bubbles": format_centres(centres), "mask_seed": seed * 100000 + i,
            "onset_s": round(onset, 3), "dropped_frames": 0,
        })
    return rows


def write_trial_file(data_root, participant, session, task, rows, columns=tuple(TRIAL_COLUMNS), masks=None):
    """Write rows as a BIDS-style TSV (n/a for missing) with a JSON sidecar; returns the path.

    ``masks`` is the sidecar's ``Masks`` record (how centres were drawn); by default every
    condition of ``rows`` is recorded as uniform (``mode: random``), which is what
    :func:`simulate_trials` draws whatever the condition's name.
    """
    path = trial_file_path(data_root, participant, session, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(columns)]
    for row in rows:
        lines.append("\t".join("n/a" if row.get(c) is None else str(row[c]) for c in columns))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sidecar = {c: {"Description": TRIAL_COLUMNS.get(c, "")} for c in columns}
    sidecar["observer"] = {"kind": "simulated", "model": "tests/analysis/ci_simulation.py"}
    sidecar["Masks"] = masks if masks is not None else {
        "conditions": {c: {"mode": "random"} for c in sorted({str(r["condition"]) for r in rows})}}
    sidecar_path(path).write_text(json.dumps(sidecar, indent=1), encoding="utf-8")
    return Path(path)


def simulate_group(data_root, n_observers, shape, region, *, task="gender", seed=0, **kwargs):
    """One session per observer, participants 01, 02, ...; returns their trial files."""
    return [
        write_trial_file(data_root, f"{i + 1:02d}", 1, task,
                         simulate_trials(shape, region, seed=seed * 1000 + i, **kwargs))
        for i in range(n_observers)
    ]


def guided_face_densities(shape, n_faces, *, sigma_px, seed, strength=1.0, region=None):
    """Per-face guided centre densities (n_faces, H, W) from synthetic relevance maps.

    Each face's 'relevance' is two eyes and a mouth (Gaussian blobs) at jittered places with
    face-specific weights, turned into a density by :func:`stimuli.guided.guidance_density`
    as a session with ``maps: per_image`` does.
    """
    from stimuli.guided import guidance_density

    rng = np.random.default_rng(seed)
    height, width = shape
    rr, cc = np.mgrid[0:height, 0:width]
    out = []
    for _ in range(n_faces):
        relevance = np.zeros(shape)
        parts = [(0.38, 0.3), (0.38, 0.7), (0.75, 0.5)]  # (row, col) of eyes and mouth, as fractions
        for (fr, fc), weight in zip(parts, rng.uniform(0.2, 1.0, 3)):
            r0 = fr * height + rng.normal(0, 0.06 * height)
            c0 = fc * width + rng.normal(0, 0.06 * width)
            relevance += weight * np.exp(-((rr - r0) ** 2 + (cc - c0) ** 2) / (2 * (0.07 * height) ** 2))
        out.append(guidance_density(relevance, sigma_px, strength=strength, region=region, shape=shape))
    return np.stack(out)


def simulate_guided_observer(rng, densities, accuracies, *, n_trials, n_range, sigma_px, n_slope=0.0,
                             region=None, gain=0.0):
    """One observer of a guided condition with per-image maps, as parsed trials.

    Trial ``t`` shows face ``s`` (balanced at random) through ``n_t`` apertures drawn from
    ``densities[s]``. Under the null (``gain=0``) it is correct with probability
    ``accuracies[s] + n_slope * (n_t - mean n)``: the faces differ in accuracy, where the
    bubbles fall does not matter. With ``gain > 0`` and a boolean ``region``, the probability
    rises by ``gain`` times the (centred) mean aperture sum inside the region. Each trial's
    ``stratum`` is its face (``"face<s>"``).
    """
    from analysis.apertures import BubbleTrials, aperture_sum

    densities = np.asarray(densities, dtype=np.float64)
    n_faces, height, width = densities.shape
    faces = rng.permutation(np.arange(n_trials) % n_faces)
    n = rng.integers(n_range[0], n_range[1] + 1, size=n_trials)
    trial_of = np.repeat(np.arange(n_trials), n)
    face_of = faces[trial_of]
    flat = np.empty(len(trial_of), dtype=np.int64)
    cdfs = np.cumsum(densities.reshape(n_faces, -1), axis=1)
    for s in range(n_faces):
        on = face_of == s
        flat[on] = np.minimum(np.searchsorted(cdfs[s] / cdfs[s, -1], rng.random(int(on.sum())), side="right"),
                              height * width - 1)
    centres = np.stack(np.divmod(flat, width), axis=1).astype(np.float64)
    p = np.asarray(accuracies, dtype=np.float64)[faces] + n_slope * (n - n.mean())
    if gain > 0:
        inside = np.asarray(region, bool)
        # mean over the region of a trial's aperture sum = sum over its apertures of K(c) / |region|
        kernel = aperture_sum((height, width), np.argwhere(inside), sigma_px) / inside.sum()
        mass = np.bincount(trial_of, weights=kernel[flat // width, flat % width], minlength=n_trials)
        p = p + gain * (mass - mass.mean())
    correct = (rng.random(n_trials) < np.clip(p, 0.02, 0.98)).astype(np.float64)
    return BubbleTrials((height, width), centres, trial_of, correct, np.full(n_trials, float(sigma_px)),
                        where="simulated guided observer",
                        stratum=np.asarray([f"face{s}" for s in faces]))


def trial_rows(bt, stimulus_ids, *, condition="guided", seed=0):
    """Rows (dicts of TRIAL_COLUMNS) of parsed trials ``bt`` shown on faces ``stimulus_ids`` (N,)."""
    rows = []
    for t in range(bt.n_trials):
        centres = bt.centres[bt.trial_of == t]
        correct = int(bt.correct[t])
        truth = CLASSES[t % 2]
        rows.append({
            "trial": t + 1, "block": 1, "phase": "main", "condition": condition,
            "stimulus_id": str(stimulus_ids[t]), "truth": truth,
            "response": truth if correct else CLASSES[1 - t % 2], "correct": correct, "rt_s": 0.8,
            "n_bubbles": len(centres), "sigma_px": float(bt.sigma_px[t]), "bubbles": format_centres(centres),
            "mask_seed": seed * 100000 + t, "onset_s": 1.5 * (t + 1), "dropped_frames": 0,
        })
    return rows
