"""Measurement: conv-trunk passes of the demo's masking evaluation, before and after issue #12.

The demo evaluates 8 variants in two pretraining arms (4 each) on the same 80 held-out images;
:class:`model.scoring.SharedTrunk` runs the conv trunk once per arm and distinct masked batch,
so the cost is the number of distinct (arm, masked batch) pairs. This runs
:func:`model.transfer.masking_curves` for every target with a stand-in trunk that counts them
(masks built for real; logits are zeros), for the demo's old masking config (5 uneven
fractions, 3 random repeats, no set-mean maps) and the new one (``model/configs/
demo_evaluate.yaml``), then times one VGG-16 conv pass of a batch at the demo's 64-px input
on this machine to turn counts into seconds.

Run:  python benchmarks/masking_passes.py [--images 80 --size 128 --variants 4 --threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from model.evaluate import EvaluateConfig
from model.transfer import masking_curves
from stimuli.contracts.config import load_config
from stimuli.framing import DEFAULT_APERTURE, elliptical_aperture

OLD = SimpleNamespace(fractions=[0.05, 0.1, 0.2, 0.3, 0.5], modes=["remove"], fill="blur", blur_sigma=3.0,
                      random_repeats=3, random_smoothing=4.0)


class CountingTrunk:
    """Counts distinct (arm, pixels) batches, as SharedTrunk caches conv passes."""

    def __init__(self) -> None:
        self.batches: set[tuple[str, str]] = set()

    def logits(self, variant, images, batch_size=64):
        self.batches.add((variant.arm, hashlib.blake2b(np.ascontiguousarray(images).tobytes()).hexdigest()))
        return np.zeros((len(images), 2))


def count_passes(masking, *, set_mean: str, aperture, variants: int, images: np.ndarray, seed: int = 0) -> int:
    arms = {f"{arm}-{i}": arm for arm in ("imagenet", "faces") for i in range(variants)}
    rng = np.random.default_rng(seed)
    maps = {name: rng.normal(size=images.shape) for name in arms}
    means = {name: m.mean(axis=0) for name, m in maps.items()}
    labels = np.arange(len(images)) % 2
    trunk = CountingTrunk()
    for name, arm in arms.items():
        target = SimpleNamespace(name=name, arm=arm, classes=["a", "b"])
        chosen = {} if set_mean == "none" else ({name: means[name]} if set_mean == "own" else means)
        masking_curves(target, images, labels, maps, masking=masking, background=0.5, seed=seed,
                       aperture=aperture, set_means=chosen, trunks=trunk)
    return len(trunk.batches)


def conv_seconds(n_images: int, threads: int, repeats: int = 3) -> float:
    import torch
    import torchvision

    torch.set_num_threads(threads)
    net = torchvision.models.vgg16().features.eval()
    x = torch.randn(n_images, 3, 64, 64)
    with torch.no_grad():
        net(x)
        started = time.perf_counter()
        for _ in range(repeats):
            net(x)
    return (time.perf_counter() - started) / repeats


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=80)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--variants", type=int, default=4, help="variants per pretraining arm")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    config_path = Path(__file__).resolve().parents[1] / "model" / "configs" / "demo_evaluate.yaml"
    new = load_config(EvaluateConfig, config_path).masking
    images = np.random.default_rng(1).random((args.images, args.size, args.size)).astype(np.float32)
    aperture = elliptical_aperture((args.size, args.size), DEFAULT_APERTURE)
    seconds = conv_seconds(args.images, args.threads)
    print(f"one VGG-16 conv pass of {args.images} images at 64 px, {args.threads} threads: {seconds:.2f} s")
    runs = [("old demo config (5 uneven fractions, 3 random repeats, grid)", OLD, "none", None),
            (f"new demo config ({len(new.fractions)} fractions, {new.random_repeats} random repeat, "
             f"set_mean {new.set_mean}, aperture)", new, new.set_mean, aperture),
            ("new demo config with set_mean all", new, "all", aperture)]
    for label, masking, set_mean, where in runs:
        passes = count_passes(masking, set_mean=set_mean, aperture=where, variants=args.variants, images=images)
        print(f"{label}: {passes} conv passes = {passes * seconds:.0f} s estimated")


if __name__ == "__main__":
    main()
