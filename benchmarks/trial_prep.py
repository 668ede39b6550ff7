"""Preparing one Bubbles trial: the session engine's path next to the same trial made with ``bubblemask``.

One trial is what the engine does between two trials (during the inter-trial interval): ask
the QUEST staircase for the number of bubbles, draw the centres from the trial's mask seed
inside the face aperture, build the mask (:func:`stimuli.bubbles_mask`) and compose it with the
face and the background (:meth:`experiments.bubbles.BubblesTask.prepare`). The reference makes the
same stimulus from the same centres with bubblemask 1.0.1 (``build.build_mask`` with
``sum_merge=True`` + ``apply.apply_mask``), the package the lab used before.

Prints the median and best time per trial over ``--trials`` trials of a 256x256 set with 60
bubbles, the ratio, the largest pixel difference between the two stimuli, and the machine's load
(other processes slow both sides alike). The issue asks for a median under 5 ms.

Usage::

    python benchmarks/trial_prep.py [--size 256] [--bubbles 60] [--sigma 10] [--trials 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from experiments.engine import load_task
from experiments.task import Response, one_blas_thread
from stimuli.contracts.centres import parse_centres
from stimuli.prepare import prepare_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--bubbles", type=int, default=60)
    parser.add_argument("--sigma", type=float, default=10.0)
    parser.add_argument("--trials", type=int, default=300)
    args = parser.parse_args()

    from bubblemask import apply, build

    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        name = f"orl{args.size}"
        prepare_set("orl", args.size, name, results=results, aperture=True, progress=False)
        config = yaml.safe_load((Path(__file__).parents[1] / "experiments" / "bubbles_gender.yaml").read_text())
        config.update(stimuli=name, conditions={"random": {}})
        config["bubbles"]["sigma_px"] = args.sigma
        config["design"].update(blocks=["random"], repeats=1, trials_per_block=args.trials, practice_trials=0)
        # a staircase pinned at the asked number of bubbles: QUEST still runs, its answer is fixed
        config["staircase"].update(start_bubbles=args.bubbles, start_sd=1e-3)
        path = results / "bench.yaml"
        path.write_text(yaml.safe_dump(config))
        task = load_task(path, results)
        plan = task.plan(seed=1)

        task.set.images  # noqa: B018  (load the faces once, as a session does before its first trial)
        ours, shown = [], []
        for planned in plan:
            start = time.perf_counter()
            with one_blas_thread():  # as the engine prepares trials
                trial = task.prepare(planned)
            ours.append(time.perf_counter() - start)
            # keep what the reference needs; the trial itself is dropped, as in a session
            shown.append((trial.row["bubbles"], trial.payload["stimulus_index"], trial.images[0]))
            task.record(trial, Response(planned["truth"]))
        n = {len(parse_centres(bubbles)) for bubbles, _, _ in shown}

        theirs, worst = [], 0.0
        for bubbles, index, ours_image in shown:
            centres = parse_centres(bubbles)
            face = task.set.images[index]
            start = time.perf_counter()
            mask = build.build_mask(mu_y=centres[:, 0], mu_x=centres[:, 1], sigma=np.full(len(centres), args.sigma),
                                    sh=face.shape, scale=True, sum_merge=True)
            image = apply.apply_mask(im=face, mask=mask, bg=task.background)
            theirs.append(time.perf_counter() - start)
            worst = max(worst, float(np.abs(image - ours_image).max()))

    ours_ms, theirs_ms = np.median(ours) * 1e3, np.median(theirs) * 1e3
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"one trial {args.size}x{args.size}, {sorted(n)} bubbles, sigma {args.sigma:g} px, {len(plan)} trials")
    print(f"{'':28}{'median ms':>10}{'best ms':>10}")
    print(f"{'experiments (this platform)':28}{ours_ms:>10.3f}{min(ours) * 1e3:>10.3f}")
    print(f"{'bubblemask 1.0.1':28}{theirs_ms:>10.3f}{min(theirs) * 1e3:>10.3f}")
    print(f"ratio (bubblemask / ours, medians): {theirs_ms / ours_ms:.1f}x; "
          f"largest stimulus difference {worst:.1e}; target: median < 5 ms -> "
          f"{'met' if ours_ms < 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
