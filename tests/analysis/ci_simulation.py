"""A small seeded simulated Bubbles observer that writes proper trial files (tests only).

Probability correct rises with the mask mass inside a known diagnostic region:
``p = 0.5 + 0.5 * (1 - exp(-gain * mean(mask[region])))``; with ``gain=0`` the observer
answers at a fixed accuracy whatever the mask shows (the null).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stimuli.bubbles import bubbles_mask, format_centres, sample_centres
from stimuli.regions import region_mask
from stimuli.trials import TRIAL_COLUMNS, sidecar_path, trial_file_path

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
