"""Training throughput: the project's training loop next to a bare forward+backward loop.

Both loops train the same VGG-16 (same init, all layers trainable, same optimizer, batch and
images) for whole epochs; the bare loop feeds pre-normalised tensors straight to the network,
the project's loop (``model.train.Trainer.train_epoch``) does everything a real run does per
batch (epoch plan, augmentation hooks, normalisation, class weights, metric bookkeeping).
Epochs alternate between the loops and the median is reported, so load from other processes
hits both alike. The ratio should stay >= 0.9 (data handling is not the bottleneck).

    python benchmarks/train_throughput.py                 # CPU-sized defaults
    python benchmarks/train_throughput.py --device cuda   # GPU: width 1, 224 px
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F


def synthetic_set(root: Path, n: int, size: int) -> None:
    from stimuli.contracts.prepared import write_prepared_set

    rng = np.random.default_rng(0)
    images = rng.random((n, size, size), dtype=np.float32)
    people = [f"p{i % 16}" for i in range(n)]
    manifest = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "identity": people,
                             "gender": ["female" if int(p[1:]) % 4 == 0 else "male" for p in people],
                             "source": "synthetic"})
    write_prepared_set(root / "stimuli" / "bench", images, manifest, background=0.5)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--width", type=float, default=None, help="width multiplier (default 0.25 CPU, 1 GPU)")
    parser.add_argument("--input-size", type=int, default=None, help="model input side (default 64 CPU, 224 GPU)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=None, help="images per epoch (default 192 CPU, 2048 GPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loop (after one warm-up each)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    from model import build_vgg16, select_device
    from model.config import TrainConfig
    from model.data import load_train_data
    from model.preprocess import to_model_input
    from model.trainer import Trainer

    device = select_device(args.device)
    gpu = device.type != "cpu"
    width = args.width or (1.0 if gpu else 0.25)
    size = args.input_size or (224 if gpu else 64)
    n_train = args.images or (2048 if gpu else 192)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = int(np.ceil(n_train / 0.6)) + 16  # the 60 % train share holds about n_train images
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_set(Path(tmp), n, size)
        data = load_train_data("bench", tmp, "identity", kind="image", fractions=[0.6, 0.2, 0.2], seed=0)
        assert len(data.images) == n  # reads the PNGs before the folder goes
    config = TrainConfig(trainable="all", optimizer="sgd", lr=0.001, batch_size=args.batch_size,
                         epochs=100, dropout=0.5, balance="weights", cache_features="off")
    classes = len(data.classes)

    torch.manual_seed(0)
    ours_net = build_vgg16(classes, width=width, dropout=config.dropout)
    torch.manual_seed(0)
    bare_net = build_vgg16(classes, width=width, dropout=config.dropout).to(device).train()
    trainer = Trainer(ours_net, config, data, seed=0, input_size=size, task="identity", device=device,
                      name="bench", progress=False)
    train_rows = data.index["train"]
    inputs = to_model_input(data.images[train_rows], size, device=device)
    labels = torch.as_tensor(data.labels[train_rows], device=device)
    optimizer = torch.optim.SGD(bare_net.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)

    def bare_epoch(epoch: int) -> float:
        order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(epoch)).to(device)
        sync(device)
        started = time.perf_counter()
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            loss = F.cross_entropy(bare_net(inputs[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(device)
        return len(order) / (time.perf_counter() - started)

    def our_epoch(epoch: int) -> float:
        sync(device)
        started = time.perf_counter()
        stats = trainer.train_epoch(epoch)
        sync(device)
        return stats["images"] / (time.perf_counter() - started)

    bare_epoch(10_000)  # warm-up (epoch numbers not timed below)
    our_epoch(10_000)
    bare, ours = [], []
    for epoch in range(args.repeats):
        bare.append(bare_epoch(epoch))
        ours.append(our_epoch(epoch))
    bare_rate, our_rate = statistics.median(bare), statistics.median(ours)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"train throughput on {name}: vgg16 width {width:g}, input {size} px, batch {args.batch_size}, "
          f"{len(train_rows)} images/epoch, median of {args.repeats} epochs")
    print(f"  bare forward+backward loop : {bare_rate:9.1f} images/s")
    print(f"  project loop (train_epoch) : {our_rate:9.1f} images/s")
    print(f"  ratio project / bare       : {our_rate / bare_rate:9.3f}   (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
