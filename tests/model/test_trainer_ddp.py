"""Data-parallel training: 2 gloo processes under torchrun follow the same loss curve and end
with the same weights as 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(write_grid, results, tmp_path, variant_configs, state_of):
    # no dropout (each process draws its own masks); augmentation and class-balanced sampling
    # are drawn for the whole global batch, so they are shared
    path = write_grid(grid={"task": ["gender"]},
                      train={"trainable": "all", "epochs": 3, "batch_size": 8, "dropout": 0.0,
                             "optimizer": "sgd", "lr": 0.05, "augment": {"hflip": True, "max_shift": 0.1},
                             "balance": "weights"})
    single_root = tmp_path / "single"
    shutil.copytree(results / "stimuli", single_root / "stimuli")
    repo = os.getcwd()
    run(["-m", "model", "train", str(path), "--out", str(single_root), "--device", "cpu"], repo)
    run(["-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
         "-m", "model", "train", str(path), "--out", str(results), "--device", "cpu"], repo)
    name = "vgg16-w0.0625-none-gender-s0"
    one, two = single_root / "models" / name, results / "models" / name
    metrics_one = json.loads((one / "metrics.json").read_text())
    metrics_two = json.loads((two / "metrics.json").read_text())
    assert metrics_one["world_size"] == 1 and metrics_two["world_size"] == 2
    losses_one = [e["train_loss"] for e in metrics_one["epochs"]]
    losses_two = [e["train_loss"] for e in metrics_two["epochs"]]
    assert losses_one == pytest.approx(losses_two, rel=1e-4)
    assert [e["train_accuracy"] for e in metrics_one["epochs"]] == [e["train_accuracy"] for e in metrics_two["epochs"]]
    a, b = state_of(one), state_of(two)
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-3, atol=1e-6), key
    # training moved the weights: the agreement is not that of two untouched nets
    from model.trainer import initial_network

    start = initial_network(variant_configs(path)[0], 2, results)[0].state_dict()
    assert (a["features.0.weight"] - start["features.0.weight"]).abs().max() > 100 * (
        a["features.0.weight"] - b["features.0.weight"]).abs().max()
