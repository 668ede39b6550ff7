"""Images per second of explain (fast exact path, and zennit's hooks) next to a plain input gradient.

Every method runs on the same VGG-16 (torchvision layout, width 1, 2 classes), the same batch and
the same device. The reference is a plain input-gradient pass with frozen parameters
(``requires_grad=False``, eval mode): one forward and one backward to the input. Printed per
(size, batch): images/s of each method, its time as a multiple of the gradient pass, and its
peak memory (CPU: the peak resident set of a fresh worker process above what the model and
input already hold; GPU: ``torch.cuda.max_memory_allocated``). Each measurement runs in its own
process so one method's peak cannot hide another's.

Usage::

    python benchmarks/explain_throughput.py            # 64 and 224 px, batch 1 and 32, CPU
    python benchmarks/explain_throughput.py --quick    # skips 224 px x batch 32 (minutes on 2 cores)
    python benchmarks/explain_throughput.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

METHODS = ("gradient", "fast", "zennit")


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(method: str, size: int, batch: int, device: str, composite: str, repeats: int) -> dict:
    import torch
    from zennit.attribution import Gradient

    from model.architecture import build_vgg16
    from model.frozen import frozen_eval
    from model.lrp import make_composite
    from model.lrp_fast import FastLRP

    torch.manual_seed(0)
    dev = torch.device(device)
    net = build_vgg16(2).to(dev).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    x = torch.randn(batch, 3, size, size, device=dev)
    target = torch.zeros(batch, dtype=torch.long, device=dev)
    low = torch.full((1, 3, 1, 1), -2.2, device=dev)
    high = torch.full((1, 3, 1, 1), 2.7, device=dev)

    def attr_output(out):
        return torch.zeros_like(out).scatter_(1, target[:, None], out.detach().gather(1, target[:, None]))

    if method == "gradient":
        def run():
            xi = x.detach().requires_grad_(True)
            out = net(xi)
            return torch.autograd.grad(out, xi, attr_output(out))[0]
    elif method == "fast":
        fast = FastLRP(net, composite, low=low, high=high)  # built once per model, as explain does

        def run():
            return fast(x, target)[1]
    else:
        composite_obj = make_composite(composite, net, low=low, high=high)

        def run():
            with frozen_eval(net), Gradient(net, composite_obj, attr_output=attr_output) as attributor:
                return attributor(x.detach().requires_grad_(True))[1]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    base_rss = _rss_mb()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated() / 2**20
    run()  # warm-up (allocator, kernels, fast-path shape caches)
    sync()
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        run()
        sync()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    seconds = statistics.median(times)
    result = {"method": method, "size": size, "batch": batch, "seconds": seconds,
              "cpu_seconds": statistics.median(cpu_times),
              "images_per_s": batch / seconds, "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        result["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20 - base_gpu
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
        result["peak_mb"] = max(peak - base_rss, 0.0)
    return result


def measure(method: str, size: int, batch: int, args) -> dict:
    command = [sys.executable, __file__, "--worker", method, "--sizes", str(size), "--batches", str(batch),
               "--device", args.device, "--composite", args.composite, "--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"worker {method} {size}px b{batch} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--composite", default="epsilon_plus_flat")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--quick", action="store_true", help="skip the largest size x largest batch")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.sizes[0], args.batches[0], args.device, args.composite,
                                args.repeats)))
        return 0
    load = os.getloadavg()
    print(f"explain throughput: VGG-16 (width 1, 2 classes), composite {args.composite}, device {args.device}, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f} at start, median of {args.repeats} runs")
    print("x grad: time as a multiple of the gradient pass's, wall clock (and CPU time, less sensitive to "
          "other processes on the machine)")
    print(f"{'size':>4} {'batch':>5} | {'gradient img/s':>14} | {'fast img/s':>10} {'x grad (cpu)':>13} | "
          f"{'zennit img/s':>12} {'x grad (cpu)':>13} | peak MB grad / fast / zennit")
    for size in args.sizes:
        for batch in args.batches:
            if args.quick and size == max(args.sizes) and batch == max(args.batches) and len(args.batches) > 1:
                print(f"{size:>4} {batch:>5} | skipped (--quick)")
                continue
            rows = {m: measure(m, size, batch, args) for m in METHODS}
            ratio = {m: f"{rows[m]['seconds'] / rows['gradient']['seconds']:.2f} "
                        f"({rows[m]['cpu_seconds'] / rows['gradient']['cpu_seconds']:.2f})" for m in METHODS}
            print(f"{size:>4} {batch:>5} | {rows['gradient']['images_per_s']:>14.2f} | "
                  f"{rows['fast']['images_per_s']:>10.2f} {ratio['fast']:>13} | "
                  f"{rows['zennit']['images_per_s']:>12.2f} {ratio['zennit']:>13} | "
                  f"{rows['gradient']['peak_mb']:.0f} / {rows['fast']['peak_mb']:.0f} / "
                  f"{rows['zennit']['peak_mb']:.0f}", flush=True)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
