"""Two ``--resume`` at once on a torn session, N times: how often is the file not the uninterrupted run's?

Issue 13 found that the losing run cut the winner's newest row (it truncated before taking the
lock). This measurement races two long-lived processes (imports done, both released by one
file) on N copies of a torn session and counts the trial files that differ, byte for byte,
from a session that never stopped; it prints the count with its Clopper-Pearson 95% interval.

Usage::

    python benchmarks/resume_race.py --races 200 [--work /tmp/race]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from analysis.error_rates import clopper_pearson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONFIG = {
    "paradigm": "bubbles", "task": "gender", "stimuli": "orl32", "seed": None,
    "responses": {"female": "f", "male": "j"}, "stimulus_deg": 4.0,
    "bubbles": {"sigma_px": 2.0, "region": "aperture"}, "conditions": {"random": {}},
    "design": {"blocks": ["random"], "trials_per_block": 40, "practice_trials": 3, "practice_bubbles": 20},
    "staircase": {"start_bubbles": 10}, "template_observer": {"region": "eyes", "full_view_accuracy": 0.95},
}

RACER = textwrap.dedent("""
    import contextlib, io, json, os, sys, time
    from experiments.__main__ import main
    folder, races, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    for race in range(races):
        while not os.path.exists(os.path.join(folder, f"go-{race}")):
            time.sleep(0.0005)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main([a.replace("RACE", str(race)) for a in argv])
            except SystemExit as stop:
                code = stop.code
        partial = os.path.join(folder, f".partial-{race}-{os.getpid()}")
        with open(partial, "w") as handle:
            json.dump({"code": code}, handle)
        os.replace(partial, os.path.join(folder, f"result-{race}-{os.getpid()}"))
""")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--races", type=int, default=20, help="number of races (default 20)")
    parser.add_argument("--work", help="scratch folder (default: a new temporary one)")
    args = parser.parse_args()
    from experiments.engine import run_session
    from stimuli.prepare import prepare_set

    work = Path(args.work or tempfile.mkdtemp(prefix="resume-race-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = work / "results"
    prepare_set("orl", 32, "orl32", results=results, aperture=True, progress=False)
    config = work / "race.yaml"
    config.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    reference = run_session(config, "r1", 1, observer="template", data_root=work / "ref", results=results,
                            seed=4, progress=False)
    expected = reference.path.read_bytes()
    lines = expected.splitlines(keepends=True)
    torn = run_session(config, "r1", 1, observer="template", data_root=work / "torn", results=results, seed=4,
                       progress=False)
    torn.path.write_bytes(b"".join(lines[:11]) + lines[11][:25])  # 10 trials and a row cut off mid-write
    for race in range(args.races):
        shutil.copytree(work / "torn", work / f"race{race}")
    signals = work / "signals"
    signals.mkdir()
    argv = ["run", str(config), "--participant", "r1", "--session", "1", "--observer", "template",
            "--data-root", str(work / "raceRACE"), "--results", str(results), "--resume", "--no-progress"]
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(signals), str(args.races), *argv], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)}) for _ in range(2)]
    differ, both_ok = 0, 0
    try:
        for race in range(args.races):
            (signals / f"go-{race}").touch()
            while len(found := sorted(signals.glob(f"result-{race}-*"))) < 2:
                time.sleep(0.01)
            codes = sorted(json.loads(p.read_text())["code"] for p in found)
            both_ok += codes == [0, 0]
            path = work / f"race{race}" / torn.path.relative_to(work / "torn")
            differ += path.read_bytes() != expected
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
            racer.wait()
    low, high = clopper_pearson(differ, args.races)
    print(f"{differ} of {args.races} races left a trial file that differs from the uninterrupted run "
          f"(rate {differ / args.races:.3f}, Clopper-Pearson 95% [{low:.4f}, {high:.4f}]); "
          f"{both_ok} races where both runs claimed success")


if __name__ == "__main__":
    main()
