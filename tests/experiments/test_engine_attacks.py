"""Issue 13: a hostile user's attacks on the session path, each answered by one line (exit 2)
before anything is written, and two ``--resume`` at once that cannot corrupt a session.

Every refusal is checked three ways: the exit status is 2, stderr is one ``error:`` line
naming what to fix, and every file under the data root has the same bytes before and after.
The command is ``python -m experiments``'s own ``main`` (the CLI entry point, in process:
the same code as the subprocess, much faster); two cases also run it as a real subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from experiments.__main__ import main
from experiments.engine import run_session
from stimuli.contracts.trials import read_trials

REPO = Path(__file__).resolve().parents[2]


def hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (empty when it does not exist)."""
    if not root.exists():
        return {}
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def refused(argv: list[str], root: Path, capsys, expected: str) -> str:
    """Run the CLI, expecting exit 2 with one error line holding ``expected``; nothing under root changes."""
    before = hashes(root)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0], err[0]
    assert hashes(root) == before
    return err[0]


def run_args(config: Path, results: Path, root: Path, *extra: str, participant: str = "a1") -> list[str]:
    return ["run", str(config), "--participant", participant, "--session", "1", "--observer", "template",
            "--data-root", str(root), "--results", str(results), "--no-progress", *extra]


@pytest.fixture
def session(make_config, results, tmp_path):
    """A finished 15-trial session cut back to 8 trials: (config, data root, trial file)."""
    config = make_config()
    root = tmp_path / "data"
    result = run_session(config, "a1", 1, observer="template", data_root=root, results=results, seed=3,
                         progress=False)
    lines = result.path.read_bytes().splitlines(keepends=True)
    result.path.write_bytes(b"".join(lines[:9]))
    return config, root, result.path


# ----------------------------------------------------------------------------- resume refuses damage
def _edit_row(path: Path, line: int, column: str, value: str) -> None:
    lines = path.read_text().split("\n")
    header = lines[0].split("\t")
    cells = lines[line - 1].split("\t")
    cells[header.index(column)] = value
    lines[line - 1] = "\t".join(cells)
    path.write_text("\n".join(lines))


def _malformed_middle_row(path: Path) -> str:
    lines = path.read_text().split("\n")
    lines[4] = lines[4].rsplit("\t", 2)[0]  # line 5 loses two fields
    path.write_text("\n".join(lines))
    width = lines[0].count("\t") + 1
    return f"line 5: {width - 2} fields where the header has {width}"


def _duplicated_rows(path: Path) -> None:
    lines = path.read_text().split("\n")
    path.write_text("\n".join(lines[:6] + lines[4:6] + lines[6:]))


def _contradicting_response(path: Path) -> None:
    table = read_trials(path)
    row = int(table.index[table.correct == 1][0])
    truth = table.truth[row]
    _edit_row(path, row + 2, "response", "male" if truth == "female" else "female")


def _latin1_byte(path: Path) -> None:
    data = path.read_bytes().split(b"\n")
    data[3] = data[3].replace(b"\tn/a", b"\tn/a\xe9", 1)
    path.write_bytes(b"\n".join(data))


RESUME_DAMAGE = {
    "malformed middle row": (_malformed_middle_row, None),  # the message counts the header's fields
    "duplicated rows": (_duplicated_rows, "line 7: trial number 4 is a duplicate"),
    "response contradicts correct": (_contradicting_response, "'correct' is 1 but response"),
    "Latin-1 byte": (_latin1_byte, "line 4: not UTF-8 text (byte 0xe9)"),
}


@pytest.mark.parametrize("attack", RESUME_DAMAGE)
def test_resume_refuses_a_damaged_trial_file(attack, session, results, capsys):
    config, root, path = session
    damage, expected = RESUME_DAMAGE[attack]
    expected = damage(path) or expected
    refused(run_args(config, results, root, "--resume"), root, capsys, expected)


def _sidecar_edit(change):
    def edit(path: Path) -> None:
        side = path.with_suffix(".json")
        side.write_text(json.dumps(change(json.loads(side.read_text()))))
    return edit


SIDECAR_SHAPES = {
    "a list": (lambda s: [s], "the sidecar must be a JSON object (it is a list)"),
    "Observer a list": (lambda s: {**s, "Observer": ["template"]}, "key 'Observer' must be a mapping"),
    "Session a string": (lambda s: {**s, "Session": "running"}, "key 'Session' must be a mapping"),
    "Seed a string": (lambda s: {**s, "Seed": "3"}, "key 'Seed' must be an integer"),
    "resumes a mapping": (lambda s: {**s, "Session": {**s["Session"], "resumes": {}}},
                          "key 'Session.resumes' must be a list"),
}


@pytest.mark.parametrize("attack", SIDECAR_SHAPES)
def test_resume_refuses_a_sidecar_of_the_wrong_shape(attack, session, results, capsys):
    config, root, path = session
    change, expected = SIDECAR_SHAPES[attack]
    _sidecar_edit(change)(path)
    refused(run_args(config, results, root, "--resume"), root, capsys, expected)


# ----------------------------------------------------------------------------- new sessions refuse bad input
def _latin1_yaml(config: Path) -> None:
    config.write_bytes(config.read_bytes().replace(b"task: gender", b"task: gender # \xe9t\xe9"))


def test_non_utf8_yaml_is_one_line(make_config, results, tmp_path, capsys):
    config = make_config()
    _latin1_yaml(config)
    root = tmp_path / "data"
    refused(run_args(config, results, root), root, capsys, "not UTF-8 text (byte 0xe9)")
    assert not root.exists()


def test_every_yaml_loader_says_one_line_for_non_utf8(make_config, tmp_path):
    from stimuli.contracts.config import load_yaml
    from stimuli.contracts.errors import InputError

    config = make_config()
    _latin1_yaml(config)
    with pytest.raises(InputError, match="line 2: not UTF-8 text"):
        load_yaml(config)  # experiments, model train/evaluate and analysis run all load through it


CONFIG_ATTACKS = {
    "condition 'random A'": ({"conditions": {"random A": {"mode": "random"}},
                              "design": {"blocks": ["random A"], "practice_condition": "random A"}},
                             "key 'conditions.random A' is not a valid condition name"),
    "answer label with a space": ({"responses": {"fe male": "k"}},
                                  "key 'responses.fe male' is not a valid class label"),
    "trials_per_block 1e9": ({"design": {"trials_per_block": 1_000_000_000}},
                             "key 'design.trials_per_block' must be from 1 to 10000"),
    "practice_bubbles 1e8": ({"design": {"practice_bubbles": 100_000_000}},
                             "key 'design.practice_bubbles' must be from 1 to 10000"),
    "practice_bubbles over what hides the face": ({"design": {"practice_bubbles": 5000}},
                                                  "'design.practice_bubbles' (5000) exceeds the most bubbles"),
    "practice_trials 1e6": ({"design": {"practice_trials": 1_000_000}},
                            "key 'design.practice_trials' must be from 0 to 1000"),
    "blocks x repeats": ({"design": {"repeats": 2000}}, "at most 1000 (blocks x repeats)"),
    "session too long": ({"design": {"trials_per_block": 10_000, "repeats": 11}},
                         "makes 110003 trials in a session; at most 100000"),
    "start_bubbles 1e8": ({"staircase": {"start_bubbles": 1e8}}, "key 'staircase.start_bubbles' must be from 1"),
    "seed -1 in the YAML": ({"seed": -1}, "key 'seed' must be an integer from 0"),
}


@pytest.mark.parametrize("attack", CONFIG_ATTACKS)
def test_config_attacks_are_one_line_before_anything_is_written(attack, make_config, results, tmp_path, capsys):
    changes, expected = CONFIG_ATTACKS[attack]
    config = make_config(changes)
    root = tmp_path / "data"
    refused(run_args(config, results, root), root, capsys, expected)
    assert not root.exists()


def test_practice_bubbles_1e8_written_as_yaml_text_is_refused(make_config, results, tmp_path, capsys):
    config = make_config()
    text = config.read_text().replace("practice_bubbles: 20", "practice_bubbles: 1e8")
    config.write_text(text)
    root = tmp_path / "data"
    refused(run_args(config, results, root), root, capsys, "'design.practice_bubbles' should be int or null, got '1e8'")
    config.write_text(text.replace("1e8", "1.0e+8"))  # YAML's float: still refused, never clamped
    refused(run_args(config, results, root), root, capsys, "must be from 1 to 10000")


def test_condition_names_that_differ_only_by_a_space_cannot_collide(make_config, results, tmp_path):
    config = make_config({"conditions": {"random-A": {"mode": "random"}, "random_A": {"mode": "random"}},
                          "design": {"blocks": ["random-A", "random_A"], "practice_condition": "random-A",
                                     "trials_per_block": 4}})
    result = run_session(config, "n1", 1, observer="template", data_root=tmp_path / "d", results=results,
                         seed=1, progress=False)
    assert set(read_trials(result.path).condition) == {"random-A", "random_A"}


def _participants(text: bytes):
    def write(root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "participants.tsv").write_bytes(text)
    return write


CLI_ATTACKS = {
    "Latin-1 participants.tsv": (_participants(b"participant_id\tage\nsub-x\t3\xe9\n"), [],
                                 "participants.tsv, line 2: not UTF-8 text (byte 0xe9)"),
    "comma-separated participants.tsv": (_participants(b"participant_id,age,sex\nsub-x,30,F\n"), [],
                                         "header lacks 'participant_id' (it is comma-separated; BIDS needs tabs)"),
    "ragged participants.tsv": (_participants(b"participant_id\tage\nsub-x\t30\tF\n"), [],
                                "participants.tsv, line 2: 3 fields where the header has 2"),
    "300-character participant": (None, ["--participant", "p" * 300], "is 300 characters long; at most 64"),
    "participant with a space": (None, ["--participant", "a 1"], "must be letters and digits only"),
    "--seed -1": (None, ["--seed", "-1"], "--seed -1: must be an integer from 0 to 9223372036854775807"),
    "--seed 2**63": (None, ["--seed", str(2**63)], "must be an integer from 0 to"),
    "--age with a tab": (None, ["--age", "3\t0"], "age '3\\t0': must be a number of years"),
}


@pytest.mark.parametrize("attack", CLI_ATTACKS)
def test_cli_attacks_are_one_line_and_change_nothing(attack, make_config, results, tmp_path, capsys):
    prepare, extra, expected = CLI_ATTACKS[attack]
    root = tmp_path / "data"
    if prepare:
        prepare(root)
    config = make_config()
    argv = run_args(config, results, root)
    for i in range(0, len(extra), 2):  # later options win in argparse: replace, never duplicate
        if extra[i] in argv:
            argv[argv.index(extra[i]) + 1] = extra[i + 1]
        else:
            argv += extra[i:i + 2]
    refused(argv, root, capsys, expected)
    assert not list(root.glob("sub-*"))  # no session was created: nothing is left 'running'


def test_a_fixed_participants_tsv_lets_the_same_session_run(make_config, results, tmp_path, capsys):
    root = tmp_path / "data"
    _participants(b"participant_id,age\nsub-x,30\n")(root)
    config = make_config()
    refused(run_args(config, results, root), root, capsys, "comma-separated")
    (root / "participants.tsv").write_text("participant_id\tage\nsub-x\t30\n")
    assert main(run_args(config, results, root)) == 0  # not stuck: nothing was started before
    assert "sub-a1" in (root / "participants.tsv").read_text()


def test_data_root_that_is_a_file_is_one_line(make_config, results, tmp_path, capsys):
    config = make_config()
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    refused(run_args(config, results, blocker), blocker, capsys, "is a file, not a folder")
    inside = blocker / "sub"
    refused(run_args(config, results, inside), blocker, capsys, f"{blocker} is a file, not a folder")


@pytest.mark.parametrize("attack", ["Latin-1 participants.tsv", "--seed -1"])
def test_attacks_through_the_real_command_line(attack, make_config, results, tmp_path):
    prepare, extra, expected = CLI_ATTACKS[attack]
    root = tmp_path / "data"
    if prepare:
        prepare(root)
    config = make_config()
    before = hashes(root)
    done = subprocess.run([sys.executable, "-m", "experiments", *run_args(config, results, root), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and expected in done.stderr
    assert hashes(root) == before


# ----------------------------------------------------------------------------- two resumes at once
# One racer process runs every race (imports once): for race i it waits for go-i, runs the CLI
# on race i's data root, and writes its exit status and stderr to result-i.
RACER = textwrap.dedent("""
    import contextlib, io, json, os, sys, time
    from experiments.__main__ import main
    folder, races, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    for race in range(races):
        while not os.path.exists(os.path.join(folder, f"go-{race}")):
            time.sleep(0.0005)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main([a.replace("RACE", str(race)) for a in argv])
            except SystemExit as stop:
                code = stop.code
        partial = os.path.join(folder, f".partial-{race}-{os.getpid()}")  # not matched by result-*
        with open(partial, "w") as handle:
            json.dump({"code": code, "err": err.getvalue().strip()}, handle)
        os.replace(partial, os.path.join(folder, f"result-{race}-{os.getpid()}"))
""")


def _race_results(folder: Path, race: int, timeout: float = 300) -> list[dict]:
    deadline = time.time() + timeout
    while len(found := sorted(folder.glob(f"result-{race}-*"))) < 2:
        assert time.time() < deadline, f"race {race}: the racers did not finish"
        time.sleep(0.01)
    return [json.loads(path.read_text()) for path in found]


@pytest.mark.slow
def test_two_resumes_at_once_never_corrupt_a_session(make_config, results, tmp_path):
    """20 races of two ``--resume`` on a torn session: the file is always the uninterrupted run's."""
    races = 20
    config = make_config({"design": {"trials_per_block": 40}})
    reference = run_session(config, "r1", 1, observer="template", data_root=tmp_path / "ref", results=results,
                            seed=4, progress=False)
    expected = reference.path.read_bytes()
    torn_root = tmp_path / "torn"
    torn = run_session(config, "r1", 1, observer="template", data_root=torn_root, results=results, seed=4,
                       progress=False)
    lines = expected.splitlines(keepends=True)
    torn.path.write_bytes(b"".join(lines[:11]) + lines[11][:25])  # 10 trials and a row cut off mid-write
    side = json.loads(torn.path.with_suffix(".json").read_text())
    side["Session"]["status"] = "running"
    torn.path.with_suffix(".json").write_text(json.dumps(side))
    for race in range(races):
        shutil.copytree(torn_root, tmp_path / f"race{race}")
    signals = tmp_path / "signals"
    signals.mkdir()
    argv = ["run", str(config), "--participant", "r1", "--session", "1", "--observer", "template",
            "--data-root", str(tmp_path / "raceRACE"), "--results", str(results), "--resume", "--no-progress"]
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(signals), str(races), *argv], cwd=REPO,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
              for _ in range(2)]
    outcomes = []
    try:
        for race in range(races):
            (signals / f"go-{race}").touch()  # both racers are waiting: they start together
            answers = _race_results(signals, race)
            codes = sorted(a["code"] for a in answers)
            path = tmp_path / f"race{race}" / torn.path.relative_to(torn_root)
            assert path.read_bytes() == expected, (race, answers)
            assert codes == [0, 2], answers
            loser = next(a["err"] for a in answers if a["code"] == 2)
            assert loser.count("\n") == 0 and ("running in another process" in loser or "is complete" in loser)
            sidecar = json.loads(path.with_suffix(".json").read_text())
            assert sidecar["Session"]["status"] == "complete" and len(sidecar["Session"]["resumes"]) == 1
            assert len(read_trials(path)) == 43
            outcomes.append("locked out" if "running in another process" in loser else "came after")
    finally:
        for racer in racers:
            if racer.poll() is None:  # a failed race leaves them waiting for the next go
                racer.kill()
            racer.wait()
    print(f"{races} races: {outcomes.count('locked out')} losers locked out, "
          f"{outcomes.count('came after')} came after the winner; every file identical to the uninterrupted run")
