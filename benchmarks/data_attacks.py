"""Issue #13's attacks on data (outputs over data, stale stimulus sets, edited models, huge
images, file modes) run against one code tree; prints one Markdown row per attack.

Run it on an old checkout and on this one to compare::

    python benchmarks/data_attacks.py . /tmp/attacks_after
    git archive OLD | tar -x -C /tmp/old && python benchmarks/data_attacks.py /tmp/old /tmp/attacks_before

It prepares ORL at 32 and 48 px, runs two 60-trial template sessions and trains one tiny
variant (about a minute on 2 cores). WORK_DIR is emptied first.
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

code, work = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
shutil.rmtree(work, ignore_errors=True)
work.mkdir(parents=True)
PY = sys.executable
env = {**os.environ, "PYTHONPATH": str(code)}


def run(*args, umask=None):
    pre = (lambda: os.umask(umask)) if umask is not None else None
    r = subprocess.run([PY, "-m", *map(str, args)], capture_output=True, text=True, cwd=work, env=env,
                       preexec_fn=pre, timeout=600)
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    return r.returncode, (lines[-1] if lines else "")[:230], len(lines)


def snap(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def row(name, rc, last, n, changed):
    print(f"| {name} | exit {rc}; {n} stderr line(s); last: {last} | data changed: {changed} |", flush=True)


R = work / "results"
print(*run("stimuli", "prepare", "--faces", "orl", "--size", "32", "--name", "orl32", "--out", R, "--aperture")[:2])
print(*run("stimuli", "prepare", "--faces", "orl", "--size", "48", "--name", "orl48", "--out", R, "--aperture")[:2])
exp = {"paradigm": "bubbles", "task": "gender", "stimuli": "orl32", "responses": {"female": "f", "male": "j"},
       "stimulus_deg": 4.0, "screen": {"resolution": [640, 480], "fullscreen": False, "width_cm": 30.0, "distance_cm": 57.0},
       "timing": {"fixation_frames": 1, "stimulus_frames": 1, "iti_frames": 1, "feedback_frames": 1},
       "bubbles": {"sigma_px": 2.0, "region": "aperture"}, "conditions": {"random": {}},
       "design": {"blocks": ["random"], "repeats": 1, "trials_per_block": 60, "practice_trials": 0},
       "staircase": {"start_bubbles": 10}, "template_observer": {"region": "eyes", "full_view_accuracy": 0.95}}
(work / "exp.yaml").write_text(yaml.safe_dump(exp))
D = work / "participants"


def make_data_root():
    """Two simulated sessions in a BIDS-like data root; its snapshot."""
    shutil.rmtree(D, ignore_errors=True)
    for p in ("01", "02"):
        print(*run("experiments", "run", "exp.yaml", "--participant", p, "--session", "1", "--observer", "template",
                   "--data-root", D, "--results", R, "--seed", "1")[:2])
    (D / "dataset_description.json").write_text('{"Name": "lab", "BIDSVersion": "1.9.0"}\n')
    return snap(D)


data0 = make_data_root()
res0 = snap(R)
ci = ["analysis", "ci", "--data-root", D, "--task", "gender", "--results", R, "--min-trials", "20"]

rc, last, n = run(*ci, "--stimuli", "orl32", "--out", D, "--force")
row("analysis ci --out participants --force", rc, last, n, snap(D) != data0 if D.exists() else "DELETED")
if snap(D) != data0:  # restore the data root for the next attacks
    print("(re-making the data root)")
    data0 = make_data_root()

R2 = work / "results_copy"
shutil.copytree(R, R2)
n_before = len(snap(R2))
rc, last, n = run("analysis", "ci", "--data-root", D, "--task", "gender", "--results", R2, "--min-trials", "20",
                  "--stimuli", "orl32", "--out", R2, "--force")
row("analysis ci --out <results root> --force", rc, last, n,
    f"{n_before} files before, {len(snap(R2)) if R2.exists() else 0} of them after" if snap(R2) != snap(R) else False)

rc, last, n = run("stimuli", "render", "--stimuli", "orl32", "--mode", "random", "--n-bubbles", "5", "--sigma", "2",
                  "--count", "4", "--results", R, "--out", D, "--force")
row("stimuli render --out participants --force", rc, last, n, snap(D) != data0 if D.exists() else "DELETED")
if snap(D) != data0:
    data0 = make_data_root()

rc, last, n = run(*ci, "--stimuli", "orl48", "--out", work / "ci48")
row("analysis ci --stimuli orl48 on orl32 sessions", rc, last, n, snap(D) != data0)

out = work / "ci_own"
run(*ci, "--stimuli", "orl32", "--out", out)
first = snap(out)
rc, last, n = run(*ci, "--stimuli", "orl32", "--out", out, "--force")
aside = [p for p in work.iterdir() if p.name.startswith("ci_own.old-")]
row("analysis ci --force of its own earlier output", rc, last, n,
    f"old output kept aside: {bool(aside) and snap(aside[0]) == first}")

# resume on a re-prepared set
tf = D / "sub-01" / "ses-1" / "beh" / "sub-01_ses-1_task-gender_beh.tsv"
lines = tf.read_text().splitlines(keepends=True)
tf.write_text("".join(lines[:21]))
side = json.loads(tf.with_suffix(".json").read_text())
side["Session"]["status"] = "stopped"
tf.with_suffix(".json").write_text(json.dumps(side))
run("stimuli", "prepare", "--faces", "orl", "--size", "32", "--name", "orl32", "--out", R, "--aperture",
    "--contrast", "0.05", "--force")
before = snap(D)
rc, last, n = run("experiments", "run", "exp.yaml", "--participant", "01", "--session", "1", "--observer", "template",
                  "--data-root", D, "--results", R, "--resume")
row("--resume after re-preparing the set at another contrast", rc, last, n,
    f"{len(tf.read_text().splitlines()) - 21} trials appended on the new set" if snap(D) != before else False)

# models
grid = {"stimuli": "orl32", "input_size": 32, "split": {"seed": 0, "fractions": [0.6, 0.2, 0.2]},
        "grid": {"width": [0.0625], "pretrain": ["none"], "task": ["gender"], "seed": [0]},
        "train": {"trainable": "all", "epochs": 1, "batch_size": 32, "lr": 0.05, "dropout": 0.0,
                  "optimizer": "sgd", "schedule": "cosine"}}
(work / "grid.yaml").write_text(yaml.safe_dump(grid))
print(*run("model", "train", "grid.yaml", "--out", R, "--device", "cpu")[:2])
V = "vgg16-w0.0625-none-gender-s0"
cfg = R / "models" / V / "config.yaml"
c = yaml.safe_load(cfg.read_text())
c["classes"] = c["classes"][::-1]
cfg.write_text(yaml.safe_dump(c, sort_keys=False))
rc, last, n = run("model", "explain", "--variant", V, "--stimuli", "orl32", "--out", R, "--device", "cpu")
row("model explain on a variant whose config.yaml classes were swapped", rc, last, n, "-")
(work / "w.txt").write_text("these are my weights\n" * 10)
grid2 = {**grid, "grid": {**grid["grid"], "pretrain": [f"file:{work / 'w.txt'}"]}}
(work / "grid2.yaml").write_text(yaml.safe_dump(grid2))
rc, last, n = run("model", "train", "grid2.yaml", "--out", R, "--device", "cpu")
row("a text file given as weights (pretrain file:w.txt)", rc, last, n, "-")

# prepare limits
F = work / "faces"
F.mkdir()


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


(F / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
                            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
Image.fromarray(np.zeros((20, 16), np.uint8)).save(F / "a.png")
(F / "faces.csv").write_text("image,identity,gender\nbig.png,p0,male\na.png,p1,female\n")
rc, last, n = run("stimuli", "prepare", "--faces", F, "--size", "32", "--name", "big", "--out", work / "r3")
row("prepare with a 20000x20000 image", rc, last, n, (work / "r3").exists())
rc, last, n = run("stimuli", "prepare", "--faces", "orl", "--size", "100000", "--name", "huge", "--out", work / "r4")
row("prepare --size 100000", rc, last, n, (work / "r4").exists())

# umask
for mask in (0o002, 0o077):
    run("stimuli", "render", "--stimuli", "orl32", "--mode", "random", "--n-bubbles", "5", "--sigma", "2",
        "--count", "2", "--results", R, "--out", work / f"um{mask:o}", umask=mask)
    folder = work / f"um{mask:o}"
    print(f"| umask {mask:04o}: render output | folder {oct(folder.stat().st_mode & 0o777)}, manifest.csv "
          f"{oct((folder / 'manifest.csv').stat().st_mode & 0o777)}, provenance.json "
          f"{oct((folder / 'provenance.json').stat().st_mode & 0o777)} | - |", flush=True)
