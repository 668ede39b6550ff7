"""Measurement: peak memory and time per image of explaining and reading a large set's relevance maps.

Design (issue #15, item 5): a prepared set of ``--images`` faces at ``--size`` px is made from
the 400 ORL faces (prepared through :func:`stimuli.prepare.prepare_faces` with the face
aperture), repeated with small seeded variations (a luminance shift and pixel noise, per
copy), and written through :func:`stimuli.contracts.prepared.write_prepared_set` one image at a time.
Then, each in a fresh subprocess so that its peak resident set size is its own:

* ``explain``: a randomly initialised width-reduced VGG-16 (``--width``, 2 classes, seed 0) on
  the CPU explains every image (``epsilon_plus_flat``, the fast LRP path, ``--batch-size``),
  written batch by batch to the contract file (:func:`model.explain_stream.explain_to_file`,
  what ``python -m model explain`` runs);
* ``read``: the file is read as the readers do: the set-mean map (guided ``maps: mean``,
  masking baseline), the finite check, every map by stimulus id (guided per-image sampling)
  and every map in batches of 64 rows (evaluate's masking curves), and its SHA-256 (a session's
  ``relevance_sha256``).

Printed per phase: peak RSS (``VmHWM`` of the subprocess; the launcher imports nothing heavy) and seconds per image (the
phase's own work, not Python's start-up or the set's content hash), as CPU time (one thread:
what the work costs, steady on a machine shared with other jobs) and as wall time. With ``--old DIR`` (a copy
of the code before issue #15, e.g. ``git archive main``) the same two phases run through the
old code too: all images and maps in memory, a compressed npz.

Run:  python benchmarks/relevance_memory.py --images 2000 --size 224 --width 0.0625
      [--old /tmp/old_code] [--work /tmp/relevance_memory] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SET = "bench"
VARIANT = "vgg16-w{width}-none-gender-s0"


class VariedFaces:
    """``n`` images made lazily from ``base`` (k, H, W): copy ``i // k`` of face ``i % k`` with a
    seeded luminance shift (sd 0.02) and pixel noise (sd 0.01), clipped to [0, 1]."""

    def __init__(self, base: np.ndarray, n: int, seed: int = 0) -> None:
        self.base, self.n, self.seed = base, n, seed
        self.shape = (n, *base.shape[1:])

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        k = len(self.base)
        for i in range(self.n):
            copy, face = divmod(i, k)
            image = self.base[face]
            if copy:
                rng = np.random.default_rng([self.seed, i])
                image = image + rng.normal(0, 0.02) + rng.normal(0, 0.01, image.shape)
            yield np.clip(image, 0, 1).astype(np.float32)


def make_set(results: Path, n: int, size: int) -> None:
    import pandas as pd

    from stimuli.contracts.prepared import write_prepared_set
    from stimuli.faces import load_face_set
    from stimuli.prepare import prepare_faces

    faces = load_face_set("orl")
    base, manifest, info = prepare_faces(faces, size, aperture=True)
    k = len(base)
    rows = [i % k for i in range(n)]
    big = manifest.iloc[rows].reset_index(drop=True)
    big["stimulus_id"] = [f"{sid}-c{i // k:03d}" for i, sid in zip(range(n), big.stimulus_id)]
    big["source"] = big["source"].astype(str)
    write_prepared_set(results / "stimuli" / SET, VariedFaces(base, n), pd.DataFrame(big),
                       background=info.pop("background"), aperture=info.pop("aperture"),
                       info={"bench": "relevance_memory", "seed": 0, **info})


def run_explain(results: Path, width: float, batch_size: int, old: bool) -> dict:
    import torch

    from model.architecture import build_vgg16
    from model.preprocess import to_model_input
    from stimuli.contracts.prepared import load_prepared_set
    from stimuli.contracts.relevance import relevance_path

    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = build_vgg16(2, width=width).eval()
    stim = load_prepared_set(SET, results)
    set_hash = stim.content_hash  # what `model explain` records; not timed
    path = relevance_path(VARIANT.format(width=width), SET, results)
    ids = list(stim.manifest.stimulus_id)
    size = stim.shape[0]

    def to_input(images):
        return to_model_input(images, size)

    started, cpu = time.perf_counter(), time.process_time()
    if old:  # the code before issue #15: every image and map in memory, then one compressed write
        from model.explain_stream import write_maps
        from model.lrp import explain_images

        maps = explain_images(net, stim.images, to_input, batch_size=batch_size)
        write_maps(maps, path, variant=VARIANT.format(width=width), stimuli=SET, target_rule="pred",
                   stimulus_id=ids, set_hash=set_hash)
    else:
        from model.explain_stream import explain_to_file

        explain_to_file(net, lambda a, b: stim.read_images(range(a, b)), len(ids), stim.shape, to_input, path,
                        stimulus_id=ids, meta={"variant": VARIANT.format(width=width), "stimuli": SET,
                                               "target_rule": "pred", "set_hash": set_hash},
                        batch_size=batch_size)
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "n": len(ids),
            "bytes": path.stat().st_size}


def run_read(results: Path, width: float, old: bool) -> dict:
    from stimuli.contracts.provenance import file_sha256
    from stimuli.contracts.relevance import load_relevance, relevance_path

    path = relevance_path(VARIANT.format(width=width), SET, results)
    started, cpu = time.perf_counter(), time.process_time()
    maps = load_relevance(path)
    mean = maps.mean_map()
    finite = int(maps.finite().sum())
    total = 0.0
    for sid in maps.stimulus_id:  # guided per-image sampling: one map per trial
        total += float(maps.by_id(sid)[0, 0])
    for start in range(0, len(maps), 64):  # evaluate: the held-out rows a batch at a time
        rows = np.arange(start, min(start + 64, len(maps)))
        block = maps.take(rows) if hasattr(maps, "take") else maps.relevance[rows]
        total += float(block[:, 0, 0].sum())
    digest = file_sha256(path)
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "n": len(maps),
            "finite": finite,
            "mean_sum": float(mean.sum()), "sha256": digest[:12]}


def child(args: argparse.Namespace) -> None:
    results = Path(args.work) / "results"
    out = run_explain(results, args.width, args.batch_size, args.old_code) if args.phase == "explain" \
        else run_read(results, args.width, args.old_code)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out))


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB: ``VmHWM`` (its own address space since exec), else
    ``ru_maxrss``, which on Linux also counts the parent's resident size at fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_subprocess(phase: str, args: argparse.Namespace, code: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--images", str(args.images),
           "--size", str(args.size), "--width", str(args.width), "--batch-size", str(args.batch_size),
           "--work", str(args.work)] + (["--old-code"] if code != ROOT else [])
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code)
    if done.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{done.stderr[-3000:]}")
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--width", type=float, default=0.0625)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--work", default="/tmp/relevance_memory")
    parser.add_argument("--old", default=None, help="a copy of the code before issue #15: measure it too")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (the set and the maps)")
    parser.add_argument("--phase", choices=("set", "explain", "read"), help=argparse.SUPPRESS)
    parser.add_argument("--old-code", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "set":
        make_set(Path(args.work) / "results", args.images, args.size)
        return
    if args.phase:
        child(args)
        return
    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    (work / "results").mkdir(parents=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--phase", "set", "--images", str(args.images),
                    "--size", str(args.size), "--work", str(work)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                   check=True)
    print(f"set: {args.images} images at {args.size} px, made in {time.perf_counter() - started:.0f} s "
          f"(width {args.width}, batch {args.batch_size}, 1 thread)")
    codes = [("new", ROOT)] + ([("old", Path(args.old).resolve())] if args.old else [])
    for label, code in codes:
        for phase in ("explain", "read"):
            r = in_subprocess(phase, args, code)
            extra = f", file {r['bytes'] / 1e6:.0f} MB" if phase == "explain" else f", sha256 {r['sha256']}"
            print(f"{label} {phase:7s} N={r['n']:6d}: peak RSS {r['peak_rss_mb']:7.0f} MB, "
                  f"{1000 * r['cpu'] / r['n']:7.2f} ms CPU/image, {1000 * r['seconds'] / r['n']:7.2f} ms wall/image "
                  f"({r['seconds']:.0f} s){extra}", flush=True)
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
