"""Seed-study scale on one device: training and LRP images/s next to bare loops, and peak GPU memory.

Training: the project's loop (``model.trainer.Trainer.train_epoch``: epoch plan, class weights,
normalisation, pinned batches, AMP, channels_last, metric bookkeeping) next to a bare PyTorch
loop over the same network (same init, same frozen prefix and trainable part, same optimizer,
batch, precision and memory format) fed pre-normalised tensors already on the device. Both
recompute the frozen prefix every step (the feature cache is off), as a set too large to cache
would. The ratio project / bare should be >= 0.9.

LRP (always float32): the project's ``explain_images`` (preprocessing, the exact fast LRP
sweep, resampling to the stimulus grid, conservation check, maps to host memory) next to the
same LRP sweep called bare on pre-made input tensors (ratio: target >= 0.9), and a plain input
gradient (one forward, one backward: the floor of any relevance pass; printed for scale).

The loops of a phase alternate within each timed round (median over rounds, after a warm-up
round), so load from other processes hits them alike. Peak GPU memory is
``torch.cuda.max_memory_allocated`` of one more run of each loop; on the CPU the process's peak
resident set so far is printed instead.

Usage::

    python benchmarks/gpu_scale.py --device cuda                        # 224 px, batch 32, width 1
    python benchmarks/gpu_scale.py --device cpu --size 64 --batch 8 --steps 3 --width 0.25
    python benchmarks/gpu_scale.py --device cuda --no-amp                # float32 training
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

# the same synthetic set and device sync as the training-throughput benchmark (this folder is on the path)
from train_throughput import sync, synthetic_set


def peak(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:6.2f} GiB GPU"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:6.2f} GiB RSS (process)"


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def seconds(run, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - start


def alternating(runs: dict, device: torch.device, repeats: int) -> dict[str, float]:
    """Median seconds of each ``run()`` over ``repeats`` rounds after one warm-up round; the runs
    alternate within every round, so load from other processes hits them alike."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(seconds(run, device))
    return {name: statistics.median(values) for name, values in times.items()}


def peak_of(run, device: torch.device) -> str:
    """Peak memory of one more ``run()`` (GPU: its own peak; CPU: the process's so far)."""
    reset_peak(device)
    run()
    sync(device)
    return peak(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--size", type=int, default=224, help="model input side in px (default 224)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--steps", type=int, default=8, help="batches per timed epoch / LRP run (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per loop, median (default 3)")
    parser.add_argument("--width", type=float, default=1.0, help="VGG width multiplier (default 1)")
    parser.add_argument("--trainable", default="block5", help="trainable part (default block5, as the seed study)")
    parser.add_argument("--no-amp", action="store_true", help="float32 training on CUDA")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    from model import build_vgg16, select_device
    from model.architecture import freeze_prefix
    from model.config import TrainConfig
    from model.data import load_train_data
    from model.device import autocast, grad_scaler, optimizer_step, precision_name, set_amp
    from model.lrp import Explainer, explain_images
    from model.preprocess import normalise_grey, resize_grey, to_model_input
    from model.trainer import Trainer

    if args.no_amp:
        set_amp(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    gpu = device.type == "cuda"
    n_train = args.batch * args.steps
    n = int(np.ceil(n_train / 0.6)) + 16  # the 60 % train share holds about n_train images
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_set(Path(tmp), n, args.size)
        data = load_train_data("bench", tmp, "identity", kind="image", fractions=[0.6, 0.2, 0.2], seed=0)
        assert len(data.images) == n
    classes = len(data.classes)
    config = TrainConfig(trainable=args.trainable, optimizer="sgd", lr=0.001, batch_size=args.batch, epochs=100,
                         balance="weights", cache_features="off")
    name = torch.cuda.get_device_name(device) if gpu else f"cpu ({torch.get_num_threads()} threads)"
    print(f"gpu_scale on {name}: vgg16 width {args.width:g}, {args.size} px, batch {args.batch}, "
          f"trainable {args.trainable}, training precision {precision_name(device)}, "
          f"median of {args.repeats} after a warm-up")

    # ---- training
    torch.manual_seed(0)
    trainer = Trainer(build_vgg16(classes, width=args.width), config, data, seed=0, input_size=args.size,
                      task="identity", device=device, name="bench", progress=False)
    epochs = iter(range(10_000))
    n_epoch = len(data.index["train"])
    torch.manual_seed(0)
    net = build_vgg16(classes, width=args.width).to(device)
    if gpu:
        net.to(memory_format=torch.channels_last)
    prefix, suffix = freeze_prefix(net, args.trainable)
    suffix.train()
    rows = data.index["train"]
    inputs = normalise_grey(resize_grey(data.images[rows], args.size, device=device))
    if gpu:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    labels = torch.as_tensor(data.labels[rows], device=device)
    optimizer = torch.optim.SGD([p for p in suffix.parameters() if p.requires_grad], lr=config.lr,
                                momentum=config.momentum, weight_decay=config.weight_decay)
    scaler = grad_scaler(device)

    def bare_epoch() -> None:
        order = torch.randperm(len(inputs), device=device)
        for start in range(0, len(order), args.batch):
            batch = order[start:start + args.batch]
            with autocast(device):
                with torch.no_grad():
                    x = prefix(inputs[batch])
                loss = F.cross_entropy(suffix(x).float(), labels[batch])
            optimizer_step(loss, optimizer, scaler)

    def our_epoch() -> None:
        trainer.train_epoch(next(epochs))

    took = alternating({"bare": bare_epoch, "ours": our_epoch}, device, args.repeats)
    bare, ours = took["bare"], took["ours"]
    bare_peak, ours_peak = peak_of(bare_epoch, device), peak_of(our_epoch, device)
    print(f"  train  bare loop          : {n_epoch / bare:9.1f} images/s   peak {bare_peak}")
    print(f"  train  project loop       : {n_epoch / ours:9.1f} images/s   peak {ours_peak}")
    print(f"  train  ratio project/bare : {bare / ours:9.3f}   (target >= 0.9)")

    # ---- LRP (float32 whatever the training precision)
    net.eval()
    images = data.images[: args.batch * args.steps]
    target = np.arange(len(images)) % classes

    def to_input(grey):
        return to_model_input(grey, args.size, device=device)

    x_all = to_input(images)
    t_all = torch.as_tensor(target, device=device)
    explainer = Explainer(net)

    def bare_lrp() -> None:
        for start in range(0, len(x_all), args.batch):
            explainer(x_all[start:start + args.batch], t_all[start:start + args.batch])

    def our_lrp() -> None:
        explain_images(net, images, to_input, target=target, batch_size=args.batch, device=device)

    def gradient() -> None:
        for start in range(0, len(x_all), args.batch):
            x = x_all[start:start + args.batch].detach().requires_grad_(True)
            logits = net(x)
            torch.autograd.grad(logits.gather(1, t_all[start:start + args.batch, None]).sum(), x)

    took = alternating({"bare": bare_lrp, "ours": our_lrp, "gradient": gradient}, device, args.repeats)
    lrp_bare, lrp_ours, grad_s = took["bare"], took["ours"], took["gradient"]
    lrp_bare_peak, lrp_ours_peak, grad_peak = (peak_of(bare_lrp, device), peak_of(our_lrp, device),
                                               peak_of(gradient, device))
    m = len(images)
    print(f"  lrp    input gradient     : {m / grad_s:9.1f} images/s   peak {grad_peak}  (forward+backward floor)")
    print(f"  lrp    bare LRP sweep     : {m / lrp_bare:9.1f} images/s   peak {lrp_bare_peak}  "
          f"({explainer.backend}, epsilon_plus_flat, float32)")
    print(f"  lrp    project explain    : {m / lrp_ours:9.1f} images/s   peak {lrp_ours_peak}")
    print(f"  lrp    ratio project/bare : {lrp_bare / lrp_ours:9.3f}   (target >= 0.9; "
          f"LRP / gradient time {lrp_bare / grad_s:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
