"""Jobs through submitit: the local executor for real, what SLURM would get by inspection."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import yaml

from model import jobs as jobs_module
from model import launch
from model.jobs import LaunchOptions, Stage, dependency, executor_parameters
from model.launch import parse_time
from stimuli.contracts.errors import InputError

submitit = pytest.importorskip("submitit")


# ---------------------------------------------------------------------------- options and SLURM

def test_time_limits_parse_like_slurm_and_bad_ones_are_one_line():
    assert parse_time("4:00:00") == 240 and parse_time("1-02:00:00") == 1560
    assert parse_time("0:30") == 1 and parse_time("45") == 45 and parse_time("2-0") == 2880
    for bad in ("soon", "0", "1:2:3:4"):
        with pytest.raises(InputError, match="--time"):
            parse_time(bad)


def test_slurm_needs_a_partition(tmp_path):
    from model.train import build_parser

    args = build_parser().parse_args(["grid.yaml", "--launcher", "slurm"])
    with pytest.raises(InputError, match="--partition"):
        launch.options_from_args(args)


class _FakeJob:
    def __init__(self, job_id: str, state: str = "COMPLETED"):
        self.job_id, self.state = job_id, state
        self.paths = type("P", (), {"stdout": Path(f"/x/{job_id}.out"), "stderr": Path(f"/x/{job_id}.err")})()

    def done(self) -> bool:
        return True

    def exception(self):
        return None

    def cancel(self, check: bool = True) -> None:
        self.state = "CANCELLED"


def test_slurm_without_sbatch_is_one_line_and_writes_nothing(tmp_path, capsys):
    from model.train import main

    if jobs_module.shutil.which("sbatch"):
        pytest.skip("this machine has sbatch")
    out = tmp_path / "out"
    grid = Path(__file__).resolve().parents[2] / "model" / "configs" / "demo.yaml"
    with pytest.raises(SystemExit) as code:
        main([str(grid), "--launcher", "slurm", "--partition", "gpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert code.value.code == 2 and err.count("\n") == 1 and "sbatch" in err
    assert not out.exists()


def test_dependency_names_each_array_once():
    jobs = [_FakeJob("1234_0"), _FakeJob("1234_1"), _FakeJob("987")]
    assert dependency(jobs) == "afterok:987:1234"


def test_slurm_sbatch_script_holds_partition_gpus_time_and_dependency(tmp_path, monkeypatch):
    """What would be submitted, read from submitit's own sbatch writer; no cluster runs."""
    from submitit.slurm import slurm

    monkeypatch.setattr(slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # pretend srun exists
    monkeypatch.setattr(jobs_module.shutil, "which", lambda name: f"/usr/bin/{name}")  # and sbatch
    options = LaunchOptions(launcher="slurm", partition="gpu", gpus_per_job=1, cpus_per_job=6, mem_gb=48,
                            time_min=parse_time("4:00:00"), max_requeue=5, slurm={"account": "lab"})
    params = executor_parameters(options, name="model-explain", after="afterok:1234", array_size=20)
    executor = jobs_module.make_executor(options, tmp_path / "jobs", **params)
    text = executor._executor._make_submission_file_text("python -u -m submitit.core._submit x", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --time=240",
                 "#SBATCH --cpus-per-task=6", "#SBATCH --mem=48GB", "#SBATCH --dependency=afterok:1234",
                 "#SBATCH --kill-on-invalid-dep=yes", "#SBATCH --account=lab", "#SBATCH --job-name=model-explain",
                 "#SBATCH --signal=USR2@"):
        assert line in text, line
    assert executor._executor.max_num_timeout == 5  # preemptions/timeouts requeued from the checkpoint


def test_slurm_stages_chain_by_afterok_and_a_failure_cancels_the_rest(tmp_path, monkeypatch, capsys):
    calls, submitted = [], []
    counter = iter(range(100, 200))

    def fake_submit(stage, options, folder, *, after=None):
        calls.append((stage.label, after))
        state = "FAILED" if stage.label == "explain" else "COMPLETED"
        array = next(counter)  # one array per stage: tasks <array>_<i>
        submitted.append([_FakeJob(f"{array}_{i}", state) for i, _ in enumerate(stage.jobs)])
        return submitted[-1]

    monkeypatch.setattr(jobs_module, "submit_stage", fake_submit)
    spec = jobs_module.JobSpec("v", "train", ())
    stages = [Stage("train face sources", [spec]), Stage("train", [spec, spec]), Stage("explain", [spec]),
              Stage("evaluate", [spec])]
    options = LaunchOptions(launcher="slurm", partition="gpu", poll_s=0.01)
    assert jobs_module.run_stages(stages, options, tmp_path, progress=False) == 1
    assert calls == [("train face sources", None), ("train", "afterok:100"), ("explain", "afterok:101"),
                     ("evaluate", "afterok:102")]
    err = capsys.readouterr().err
    assert "explain: 1 of 1 job(s) failed; not run: evaluate" in err and "v.err" in err
    assert submitted[-1][0].state == "CANCELLED"  # the evaluate job would wait forever otherwise


def test_job_arguments_drop_the_launch_options():
    argv = ["g.yaml", "--launcher", "slurm", "--partition=gpu", "--time", "1:00:00", "--out", "r",
            "--slurm-option", "qos=high"]
    assert launch._job_argv(argv, "--launcher", "none") == ("g.yaml", "--out", "r", "--launcher", "none")


# ---------------------------------------------------------------------------- the local executor

def _grid(write_grid, **train):
    return write_grid(grid={"task": ["identity"], "seed": [0, 1]},
                      train={"epochs": 15, "checkpoint_every": 1, **train})


def _preempt(job) -> int:
    """Send submitit's preemption signal to a local job's task process, as SLURM signals a task.

    (``LocalJob._interrupt`` signals the local controller, which does not forward USR2.)
    Returns the number of processes signalled.
    """
    import os
    import signal

    controller = job._process.pid
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == controller:
                children.append(int(entry.name))
    for pid in children:
        os.kill(pid, getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")))
    return len(children)


def _tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_local_launcher_interrupted_job_resumes_to_the_uninterrupted_weights(write_grid, results, tmp_path,
                                                                               synth_results, monkeypatch,
                                                                               state_of):
    """Two variants as local submitit jobs; one is preempted after its first checkpoint, requeued,
    resumed from the checkpoint, and both end with exactly the weights of an in-process run."""
    import shutil

    from model.train import train_grid
    from model.variants import resume_dir

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the jobs compute like this process (one thread)
    grid = _grid(write_grid)
    reference = tmp_path / "reference"
    shutil.copytree(synth_results / "stimuli", reference / "stimuli")
    expected = train_grid(grid, reference, device="cpu", progress=False)

    stages = launch.train_stages(str(grid), results, None, [str(grid), "--out", str(results), "--device", "cpu"])
    stage = stages[1]
    assert not stages[0].jobs and [s.name for s in stage.jobs] == [p.name for p in expected]
    options = LaunchOptions(launcher="local", time_min=20)
    folder = jobs_module.stage_folder(results / "jobs", stage)
    jobs = jobs_module.submit_stage(stage, options, folder)
    checkpoint = resume_dir(stage.jobs[0].name, results) / "checkpoint.pt"
    deadline = time.time() + 240
    while not checkpoint.is_file() and time.time() < deadline and not jobs[0].done():
        time.sleep(0.02)
    assert checkpoint.is_file(), "the first checkpoint never appeared"
    assert _preempt(jobs[0]) == 1  # submitit's preemption signal: checkpoint() and requeue
    states = jobs_module.watch(jobs, [s.name for s in stage.jobs], folder, poll_s=0.2, progress=False)
    assert states == ["COMPLETED", "COMPLETED"], states
    log = (folder / f"{stage.jobs[0].name}.out").read_text()
    err = (folder / f"{stage.jobs[0].name}.err").read_text()
    assert "resuming after epoch" in log, (log[-2000:], err[-2000:])  # it was requeued and resumed
    assert "preempted" in err  # submitit caught the signal
    for path in expected:
        assert _tensors_equal(state_of(results / "models" / path.name), state_of(path)), path.name
    table = (folder / "jobs.tsv").read_text()
    assert table.count("COMPLETED") == 2


@pytest.mark.slow
def test_local_launcher_failed_job_exits_nonzero_and_names_its_log(write_grid, tmp_path, capsys):
    from model.train import main

    grid = write_grid(stimuli="missing_set")
    out = tmp_path / "out"
    assert main([str(grid), "--out", str(out), "--device", "cpu", "--launcher", "local"]) == 1
    err = capsys.readouterr().err
    assert "vgg16-w0.0625-none-identity-s0: job" in err and "FAILED" in err and "missing_set" in err
    assert (out / "jobs" / "train" / "vgg16-w0.0625-none-identity-s0.err").is_file()


@pytest.mark.slow
def test_pipeline_through_the_local_launcher(write_grid, results, tmp_path, monkeypatch):
    """train -> explain -> evaluate of a two-variant grid, each stage as local jobs."""
    from model.pipeline import main

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    grid = write_grid(grid={"task": ["gender", "identity"], "seed": [0]}, train={"epochs": 2})
    evaluate = tmp_path / "tiny_evaluate.yaml"
    evaluate.write_text(yaml.safe_dump({
        "name": "tiny", "grid": str(grid), "batch_size": 16,
        "masking": {"fractions": [0.5], "modes": ["remove"], "bootstrap": 100, "random_repeats": 1,
                    "set_mean": "none", "fill": "background"}}))
    code = main([str(grid), "--stimuli", "synth", "--evaluate", str(evaluate), "--out", str(results),
                 "--device", "cpu", "--launcher", "local", "--parallel", "2"])
    assert code == 0
    variants = ["vgg16-w0.0625-none-gender-s0", "vgg16-w0.0625-none-identity-s0"]
    for name in variants:
        assert (results / "models" / name / "model.pt").is_file()
        assert (results / "relevance" / name / "synth.npz").is_file()
        assert "COMPLETED" in (results / "jobs" / "explain" / "jobs.tsv").read_text()
    summary = yaml.safe_load((results / "evaluate" / "tiny" / "summary.json").read_text())
    assert summary["variants"] == variants
    # evaluate reused the explain stage's maps: the relevance files were written once, by explain
    assert (results / "jobs" / "evaluate" / "tiny_evaluate.out").exists()


def test_pipeline_stages_chain_train_explain_evaluate_and_write_the_evaluate_config(write_grid, results):
    from model.pipeline import build_parser, pipeline_stages

    grid = write_grid(grid={"task": ["gender", "identity"], "seed": [0]})
    argv = [str(grid), "--stimuli", "synth", "--out", str(results), "--composite", "epsilon_gamma_box",
            "--target", "pred", "--device", "cpu", "--no-amp"]
    stages = pipeline_stages(build_parser().parse_args(argv), argv)
    assert [s.label for s in stages] == ["train face sources", "train", "explain", "evaluate"]
    names = ["vgg16-w0.0625-none-gender-s0", "vgg16-w0.0625-none-identity-s0"]
    assert [j.name for j in stages[1].jobs] == names == [j.name for j in stages[2].jobs]
    train = stages[1].jobs[0].argv
    assert train[-4:] == ("--only", names[0], "--launcher", "none") and "--no-amp" in train
    explain = stages[2].jobs[1].argv
    assert explain[:4] == ("--variant", names[1], "--stimuli", "synth")
    assert ("--composite", "epsilon_gamma_box") == explain[4:6] and ("--target", "pred") == explain[6:8]
    config_file = Path(stages[3].jobs[0].argv[0])
    assert config_file == results / "jobs" / "pipeline" / f"{grid.stem}-synth.yaml"
    written = yaml.safe_load(config_file.read_text())
    assert written == {"name": f"{grid.stem}-synth", "grid": str(grid.resolve()), "stimuli": "synth",
                       "composite": "epsilon_gamma_box", "target": "pred"}


def test_pipeline_refuses_a_missing_set_with_the_prepare_command(write_grid, results, capsys):
    from model.pipeline import main

    grid = write_grid()
    with pytest.raises(SystemExit) as code:
        main([str(grid), "--stimuli", "nope", "--out", str(results)])
    assert code.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python -m stimuli prepare" in err and "--name nope" in err
    assert not (results / "models").exists()
