"""The session engine: columns and sidecar, refusal to overwrite, crash, resume and the session lock."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from experiments.__main__ import main
from experiments.engine import load_task, run_session
from experiments.observers import make_observer
from experiments.session import SessionFiles, read_session_rows
from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import file_sha256
from stimuli.contracts.trials import (
    TRIAL_COLUMNS,
    find_trial_files,
    read_session_provenance,
    read_trials,
)

REPO = Path(__file__).resolve().parents[2]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_trial_file_columns_sidecar_provenance_and_participants(make_config, results, tmp_path):
    root = tmp_path / "sim"
    root.mkdir()
    (root / "participants.tsv").write_text("participant_id\tage\tsex\thandedness\nsub-old\t30\tF\tR\n")
    path = make_config()
    result = run_session(path, "t1", 1, observer="template", data_root=root, results=results, seed=9,
                         progress=False)
    assert result.status == "complete" and result.trials_done == result.trials_planned == 15
    assert result.path == root / "sub-t1" / "ses-1" / "beh" / "sub-t1_ses-1_task-gender_beh.tsv"
    header = result.path.read_text().splitlines()[0].split("\t")
    assert header[: len(TRIAL_COLUMNS)] == list(TRIAL_COLUMNS)
    assert header[len(TRIAL_COLUMNS):] == ["staircase", "intensity", "response_key", "revealed_px",
                                           "revealed_fraction"]
    table = read_trials(result.path)
    assert list(table.trial) == list(range(1, 16)) and set(table.phase) == {"practice", "main"}
    assert ((table.response == table.truth).astype(int) == table.correct).all()
    assert table.rt_s.isna().all() and table.sigma_px.eq(2.0).all()
    assert [f.path for f in find_trial_files(root, "gender")] == [result.path]

    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    for column in header:
        assert sidecar[column]["Description"]
    assert sidecar["Seed"] == 9 and sidecar["TaskName"] == "gender" and sidecar["MaskMergeRule"] == "sum"
    assert sidecar["Observer"]["kind"] == "template" and sidecar["Observer"]["region"] == "eyes"
    assert sidecar["Observer"]["noise_sd"] > 0
    assert sidecar["ExperimentConfig"]["bubbles"]["sigma_px"] == 2.0
    stim = sidecar["StimulusSet"]
    assert stim["name"] == "orl32" and stim["manifest_sha256"] == file_sha256(results / "stimuli/orl32/manifest.csv")
    assert sidecar["Software"]["numpy"] and sidecar["Session"]["status"] == "complete"
    assert sidecar["Staircase"]["gamma_used"] == 0.5 and sidecar["rt_s"]["Units"] == "s"
    provenance = read_session_provenance(result.path)
    assert provenance["seeds"] == {"session": 9} and str(path) in provenance["inputs"]
    assert provenance == sidecar["Provenance"] and provenance["session_status"] == "complete"
    assert sorted(p.name for p in result.path.parent.iterdir()) == [result.path.with_suffix(".json").name,
                                                                    result.path.name]  # only what BIDS names
    assert sidecar["Instructions"].startswith("Each face is seen") and "F = female, J = male" in sidecar["Instructions"]
    assert "Bubbles" in sidecar["TaskDescription"] and "gender (female, male)" in sidecar["TaskDescription"]

    run_session(path, "t1", 2, observer="template", data_root=root, results=results, seed=10, progress=False)
    run_session(path, "t2", 1, observer="template", data_root=root, results=results, seed=11, progress=False)
    lines = (root / "participants.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["participant_id", "age", "sex", "handedness", "observer"]
    assert lines[1:] == ["sub-old\t30\tF\tR\tn/a", "sub-t1\tn/a\tn/a\tn/a\ttemplate", "sub-t2\tn/a\tn/a\tn/a\ttemplate"]


def test_same_seed_same_session(make_config, results, tmp_path):
    path = make_config()
    a = run_session(path, "a", 1, observer="template", data_root=tmp_path, results=results, seed=3, progress=False)
    b = run_session(path, "b", 1, observer="template", data_root=tmp_path, results=results, seed=3, progress=False)
    assert a.path.read_text() == b.path.read_text()


def test_existing_session_is_refused_and_nothing_changes(make_config, results, tmp_path, capsys):
    path = make_config()
    root = tmp_path / "sim"
    run_session(path, "t1", 1, observer="template", data_root=root, results=results, seed=1, progress=False)
    before = snapshot(root)
    time.sleep(0.01)
    args = ["run", str(path), "--participant", "t1", "--session", "1", "--observer", "template",
            "--results", str(results), "--data-root", str(root), "--no-progress"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.count("\n") == 0
    assert "this session exists already; add --resume" in err and "nothing was changed" in err
    with pytest.raises(SystemExit):
        main([*args, "--seed", "5"])
    with pytest.raises(SystemExit):  # complete: nothing to resume
        main([*args, "--resume"])
    assert "this session is complete (15 trials); nothing to resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args[:5], "9", *args[6:], "--resume"])
    assert "no such session to resume" in capsys.readouterr().err
    assert snapshot(root) == before


def test_resume_refuses_a_changed_config_observer_or_seed(make_config, results, tmp_path):
    path = make_config()
    root = tmp_path / "sim"
    files = _partial_session(path, results, root, keep=5)
    before = snapshot(root)
    changed = make_config({"design": {"trials_per_block": 13}})
    with pytest.raises(InputError, match="differs from the config this session started with .key 'design'"):
        run_session(changed, "t1", 1, observer="template", data_root=root, results=results, resume=True)
    with pytest.raises(InputError, match="run by observer 'template', not 'template:mouth'"):
        run_session(path, "t1", 1, observer="template:mouth", data_root=root, results=results, resume=True)
    with pytest.raises(InputError, match="this session's seed is 21"):
        run_session(path, "t1", 1, observer="template", data_root=root, results=results, resume=True, seed=22)
    assert snapshot(root) == before and files.exists()


def _partial_session(path, results, root, keep):
    """A finished session cut back to its first ``keep`` trials, as if it had stopped there."""
    result = run_session(path, "t1", 1, observer="template", data_root=root, results=results, seed=21,
                         progress=False)
    lines = result.path.read_text().splitlines(keepends=True)
    result.path.write_text("".join(lines[: keep + 1]))
    return SessionFiles(root, "t1", 1, "gender")


def test_resume_after_a_torn_line_continues_the_same_sequence_and_staircase(make_config, results, tmp_path):
    path = make_config({"design": {"trials_per_block": 30}})
    reference = run_session(path, "ref", 1, observer="template", data_root=tmp_path / "ref", results=results,
                            seed=21, progress=False)
    root = tmp_path / "sim"
    files = _partial_session(path, results, root, keep=12)
    with open(files.path, "ab") as handle:  # a row cut off inside its write
        handle.write(b"13\t1\tmain\trandom\ts1")
    with pytest.raises(InputError, match="this session exists already"):
        run_session(path, "t1", 1, observer="template", data_root=root, results=results)
    result = run_session(path, "t1", 1, observer="template", data_root=root, results=results, resume=True,
                         progress=False)
    assert result.status == "complete" and result.trials_done == 33
    # identical to a session that never stopped: same sequence, staircase continued, same answers
    assert result.path.read_text() == reference.path.read_text().replace("sub-ref", "sub-t1")
    sidecar = json.loads(files.sidecar_path.read_text())
    resumes = sidecar["Session"]["resumes"]
    assert len(resumes) == 1 and resumes[0]["at_trial"] == 13
    assert resumes[0]["torn_line_dropped"] == "13\t1\tmain\trandom\ts1"


SLOW_TEMPLATE = textwrap.dedent("""
    import sys, time
    from experiments.observers import make_observer
    from experiments.engine import load_task, run_session
    config, results, root = sys.argv[1:4]
    task = load_task(config, results)
    observer = make_observer("template", task, seed=5, results=results)
    answer = observer.respond
    def slow(trials):
        time.sleep(0.03)
        return answer(trials)
    observer.respond = slow
    run_session(config, "k1", 1, observer=observer, data_root=root, results=results, seed=5, progress=False)
""")


@pytest.mark.slow
def test_sigkill_mid_session_loses_nothing_answered_and_resume_completes(make_config, results, tmp_path):
    path = make_config({"design": {"trials_per_block": 150}})
    root = tmp_path / "sim"
    trial_file = root / "sub-k1" / "ses-1" / "beh" / "sub-k1_ses-1_task-gender_beh.tsv"
    process = subprocess.Popen([sys.executable, "-c", SLOW_TEMPLATE, str(path), str(results), str(root)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if trial_file.exists() and trial_file.read_text().count("\n") > 40:
            break
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    header, rows, torn = read_session_rows(trial_file)
    answered = len(rows)
    assert 40 <= answered < 153 and list(rows.trial) == [str(i) for i in range(1, answered + 1)]
    assert len(read_trials(trial_file)) == answered  # every answered trial parses
    sidecar = json.loads(trial_file.with_suffix(".json").read_text())
    assert sidecar["Session"]["status"] == "running"  # killed: no chance to say otherwise

    result = run_session(path, "k1", 1, observer="template", data_root=root, results=results, resume=True,
                         progress=False)
    table = read_trials(result.path)
    assert list(table.trial) == list(range(1, 154)) and result.status == "complete"
    reference = run_session(path, "ref", 1, observer="template", data_root=tmp_path / "ref", results=results,
                            seed=5, progress=False)
    assert result.path.read_text() == reference.path.read_text()


def test_a_crash_keeps_every_finished_trial_and_is_recorded(make_config, results, tmp_path):
    path = make_config()
    observer = make_observer("template", load_task(path, results), seed=8)
    answer, calls = observer.respond, []

    def failing(trials):
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("the eye tracker fell over")
        return answer(trials)

    observer.respond = failing
    with pytest.raises(RuntimeError, match="eye tracker"):
        run_session(path, "c1", 1, observer=observer, data_root=tmp_path, results=results, seed=8, progress=False)
    files = SessionFiles(tmp_path, "c1", 1, "gender")
    assert list(read_trials(files.path).trial) == [1, 2, 3, 4, 5]
    session = json.loads(files.sidecar_path.read_text())["Session"]
    assert session["status"] == "crashed" and "eye tracker" in session["error"] and session["trials_done"] == 5
    result = run_session(path, "c1", 1, observer="template", data_root=tmp_path, results=results, resume=True,
                         progress=False)
    assert list(read_trials(result.path).trial) == list(range(1, 16))


def test_resume_takes_the_lock_before_it_reads_or_cuts_anything(make_config, results, tmp_path):
    """Lock, then look: while another process holds the session, a resume changes no byte."""
    path = make_config()
    root = tmp_path / "sim"
    files = _partial_session(path, results, root, keep=6)
    with open(files.path, "ab") as handle:
        handle.write(b"7\t1\tmain\tran")  # a torn tail that an unlocked resume would cut
    before = snapshot(root)
    holder = os.open(files.path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process running this session
    try:
        with pytest.raises(InputError, match="running in another process .nothing was changed."):
            run_session(path, "t1", 1, observer="template", data_root=root, results=results, resume=True)
        assert snapshot(root) == before
    finally:
        os.close(holder)
    result = run_session(path, "t1", 1, observer="template", data_root=root, results=results, resume=True,
                         progress=False)
    assert result.status == "complete" and list(read_trials(result.path).trial) == list(range(1, 16))

