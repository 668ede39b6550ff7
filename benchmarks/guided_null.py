"""Measurement: the null of guided Bubbles conditions with per-image maps, new method next to old.

Design (what ``experiments/bubbles_identity.yaml`` runs, scaled down): the ORL faces are
prepared at ``--size`` px with the face aperture (``stimuli.prepare.prepare_set``); ``--faces``
faces (one image of each of the first identities) get a relevance-like map each from their
own structure (the Gaussian gradient magnitude of the image at ``--sigma`` px inside the
aperture: edges of eyes, nose, mouth, face outline, different on every face), written with
``stimuli.contracts.relevance.save_relevance``. A session sidecar is written as a Bubbles session would
(``maps: per_image``, ``strength``, ``centre_region: aperture``, relevance SHA-256) and the
densities are rebuilt through the analysis' own reader (:mod:`analysis.guided_densities`):
``stimuli.guided.guidance_density`` on the file the reader loaded.

Null: every simulated observer sees the faces (balanced) through ``n`` apertures drawn from
the face's density, ``n`` uniform in ``--bubbles``; it answers correctly with probability
``accuracy[face] + --n-slope * (n - mean n)``, the faces' accuracies spread evenly over
``--accuracies``: where the bubbles fall never matters. A group is ``--participants``
observers x ``--trials`` trials; its group Z (``sum Z / sqrt(P)``) is tested over the face
aperture.

Printed, with 95% Clopper-Pearson intervals:
1. family-wise error of the RFT pixel and cluster tests over ``--groups`` groups: new
   (each trial's own density, weights centred within face) next to old (one density pooled
   over all centres, weights on ``1 + n``) on the same data;
2. the same for the max-statistic permutation test over ``--permutation-groups`` groups
   (``--permutations`` each): Freedman-Lane within faces (new) next to the old procedure
   (weights permuted over all trials, not residualised again, observed null moments), with
   the median permutation thresholds;
3. power: the same design with a diagnostic eye region (``--gain``) over ``--power-groups``
   groups: ROC AUC of the group Z for eye pixels vs the other aperture pixels, and how often
   the pixel test finds an eye pixel.

Run:  python benchmarks/guided_null.py [--groups 400 --permutation-groups 200 --seed 0]
(the simulated observer is ``tests/analysis/ci_simulation.py``, put on the path here).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analysis"))

from ci_simulation import simulate_guided_observer  # noqa: E402

from analysis.ci_null import CentreDensity  # noqa: E402
from analysis.classification import aperture_ci, centre_histogram, compute_ci, group_z  # noqa: E402
from analysis.error_rates import clopper_pearson
from analysis.metrics import region_auc  # noqa: E402
from analysis.permutation import max_statistic_test, permutation_quantile  # noqa: E402
from analysis.readers.guided_densities import GuidedDensities  # noqa: E402
from analysis.rft import fwhm_from_sigma  # noqa: E402
from analysis.stat4ci import cluster_test, pixel_test  # noqa: E402
from stimuli.contracts.prepared import load_prepared_set  # noqa: E402
from stimuli.contracts.provenance import file_sha256  # noqa: E402
from stimuli.contracts.relevance import relevance_path, save_relevance  # noqa: E402
from stimuli.prepare import prepare_set  # noqa: E402
from stimuli.regions import region_mask  # noqa: E402

VARIANT = "gradient-relevance"  # not a model: a relevance-like map from each face's own gradients
_FOUR = ndimage.generate_binary_structure(2, 1)



def rate(k: int, n: int) -> str:
    low, high = clopper_pearson(k, n)
    return f"{k:4d}/{n} = {k / n:.3f} [{low:.3f}, {high:.3f}]"


def build_design(root: Path, size: int, n_faces: int, sigma: float, strength: float
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Prepared ORL set, gradient relevance file, a session sidecar; densities via the analysis reader."""
    results = root / "results"
    prepare_set("orl", size, "orl-bench", results=results, aperture=True, progress=False)
    stim = load_prepared_set("orl-bench", results)
    manifest = stim.manifest
    firsts = manifest.groupby("identity", sort=False).head(1)
    ids = list(firsts.stimulus_id[:n_faces])
    images = stim.images[[stim.index_of(s) for s in ids]].astype(np.float64)
    relevance = np.stack([ndimage.gaussian_gradient_magnitude(im, sigma) * stim.aperture for im in images])
    path = save_relevance(relevance_path(VARIANT, stim.name, results), relevance.astype(np.float32), ids,
                          np.zeros(len(ids)), np.zeros(len(ids)), np.zeros(len(ids)),
                          {"variant": VARIANT, "what": "Gaussian gradient magnitude of each face (benchmark)"})
    trial_file = root / "session" / "sub-01_ses-1_task-identity_beh.tsv"
    trial_file.parent.mkdir(parents=True)
    trial_file.with_suffix(".json").write_text(json.dumps({"Masks": {
        "sigma_px": sigma, "centre_region": "aperture",
        "conditions": {"guided": {"mode": "guided", "variant": VARIANT, "maps": "per_image", "strength": strength,
                                  "relevance_file": str(path), "relevance_sha256": file_sha256(path)}}}}))
    reader = GuidedDensities(stim, results)
    spec = reader.spec(trial_file, "guided")
    densities = np.stack([reader.density_map(f"{spec.key}/{s}") for s in ids])
    return densities, stim.aperture, ids


def simulate_group(rng, densities, args, **extra):
    accuracies = np.linspace(*args.accuracies, len(densities))
    return [simulate_guided_observer(rng, densities, accuracies, n_trials=args.trials, n_range=args.bubbles,
                                     sigma_px=args.sigma, n_slope=args.n_slope, **extra)
            for _ in range(args.participants)]


def new_and_old(bts, per_face, shape):
    """Group Z of the new method (per-trial densities) and the old one (pooled density)."""
    new = [compute_ci(bt, centre_density=per_face) for bt in bts]
    pooled = CentreDensity(centre_histogram(np.concatenate([bt.centres for bt in bts]), shape))
    old_bts = [bt.with_strata(None) for bt in bts]
    old = [compute_ci(bt, centre_density=pooled) for bt in old_bts]
    return new, old, old_bts


def largest_cluster(z: np.ndarray, region: np.ndarray, threshold: float) -> float:
    labels, count = ndimage.label((z > threshold) & region, structure=_FOUR)
    return float(np.bincount(labels.ravel())[1:].max()) if count else 0.0


def old_permutation(bts, cis, region, k, rng, cluster_threshold):
    """The procedure before the fix: weights permuted over all trials, not residualised again,
    Z-scored with the observed null moments."""
    total = np.zeros((k, *region.shape))
    for bt, ci in zip(bts, cis):
        maps = aperture_ci(bt, np.stack([rng.permutation(ci.weights) for _ in range(k)]))
        ok = ci.null_sd > 1e-9 * ci.null_sd.max()
        total[:, ok] += (maps[:, ok] - ci.null_mean[ok]) / ci.null_sd[ok]
    total /= math.sqrt(len(bts))
    max_z = total[:, region].max(axis=1)
    clusters = np.array([largest_cluster(t, region, cluster_threshold) for t in total])
    return permutation_quantile(max_z, 0.05), permutation_quantile(clusters, 0.05)


def rft_study(rng, densities, per_face, region, args) -> dict[str, int]:
    """Family-wise rejections of the pixel and cluster tests, new and old null, over null groups."""
    fwhm = fwhm_from_sigma(args.sigma)
    hits = {"pixel new": 0, "pixel old": 0, "cluster new": 0, "cluster old": 0}
    max_z = {"new": [], "old": []}
    for _ in range(args.groups):
        new, old, _ = new_and_old(simulate_group(rng, densities, args), per_face, region.shape)
        for name, cis in (("new", new), ("old", old)):
            z = group_z([ci.z for ci in cis])
            hits[f"pixel {name}"] += bool(pixel_test(z, fwhm, region=region).significant.any())
            hits[f"cluster {name}"] += bool(cluster_test(z, fwhm, 2.7, region=region).significant.any())
            max_z[name].append(float(z[region].max()))
    print(f"\n1. RFT tests, family-wise error over {args.groups} null groups (alpha 0.05; must: lower bound <= 0.05)")
    print(f"   {'test':8} {'new: per-trial densities':>34}   {'old: pooled density':>34}")
    for test in ("pixel", "cluster"):
        print(f"   {test:8} {rate(hits[f'{test} new'], args.groups):>34}   {rate(hits[f'{test} old'], args.groups):>34}")
    print(f"   median max Z: new {np.median(max_z['new']):.2f}, old {np.median(max_z['old']):.2f}")
    return hits


def permutation_study(rng, densities, per_face, region, args) -> tuple[dict[str, int], list[float]]:
    """Family-wise rejections of the max-statistic test, new and old, and the new test's p-values."""
    hits = {"pixel new": 0, "pixel old": 0, "cluster new": 0, "cluster old": 0}
    thresholds = {"new": [], "old": []}
    p_values = []
    for g in range(args.permutation_groups):
        bts = simulate_group(rng, densities, args)
        new, old, old_bts = new_and_old(bts, per_face, region.shape)
        for name, cis, parts in (("new", new, bts), ("old", old, old_bts)):
            z = group_z([ci.z for ci in cis])
            if name == "new":
                result = max_statistic_test(parts, cis, region=region, n_permutations=args.permutations,
                                            seed=args.seed * 100003 + g)
                pixel, cluster = result.pixel_threshold, result.cluster_size_threshold
                p_values.append(float(result.pixel_pvalues(z[region].max())))
            else:
                pixel, cluster = old_permutation(parts, cis, region, args.permutations, rng, 2.7)
            hits[f"pixel {name}"] += bool(z[region].max() > pixel)
            hits[f"cluster {name}"] += bool(largest_cluster(z, region, 2.7) > cluster)
            thresholds[name].append(pixel)
    n = args.permutation_groups
    print(f"\n2. max-statistic permutation test ({args.permutations} permutations), family-wise error over "
          f"{n} null groups")
    print(f"   {'test':8} {'new: Freedman-Lane within faces':>34}   {'old: permuted, not residualised':>34}")
    for test in ("pixel", "cluster"):
        print(f"   {test:8} {rate(hits[f'{test} new'], n):>34}   {rate(hits[f'{test} old'], n):>34}")
    print(f"   median 95% max-Z threshold: new {np.median(thresholds['new']):.2f}, "
          f"old {np.median(thresholds['old']):.2f}")
    print(f"   new: uniformity of the observed max's permutation p-value, KS p = "
          f"{stats.kstest(p_values, 'uniform').pvalue:.3f}")
    return hits, p_values


def power_study(rng, densities, per_face, region, args) -> tuple[list[float], int]:
    """ROC AUCs of the group Z for a real eye region, and how often the pixel test finds it."""
    eyes = region_mask("eyes", region.shape) & region
    fwhm = fwhm_from_sigma(args.sigma)
    aucs, found = [], 0
    for _ in range(args.power_groups):
        bts = simulate_group(rng, densities, args, region=eyes, gain=args.gain)
        z = group_z([compute_ci(bt, centre_density=per_face).z for bt in bts])
        aucs.append(region_auc(z, eyes, region=region))
        found += bool((pixel_test(z, fwhm, region=region).significant & eyes).any())
    print(f"\n3. power: diagnostic eye region ({int(eyes.sum())} px, gain {args.gain:g}), {args.power_groups} groups, "
          f"new method")
    print(f"   ROC AUC of the group Z (eyes vs rest of the aperture): median {np.median(aucs):.3f}, "
          f"min {np.min(aucs):.3f} (must: >= 0.9)")
    print(f"   pixel test finds an eye pixel: {rate(found, args.power_groups)}")
    return aucs, found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=400, help="null groups for the RFT tests")
    parser.add_argument("--permutation-groups", type=int, default=200, help="null groups for the permutation test")
    parser.add_argument("--permutations", type=int, default=200, help="permutations per group")
    parser.add_argument("--power-groups", type=int, default=20)
    parser.add_argument("--participants", type=int, default=5)
    parser.add_argument("--trials", type=int, default=400, help="trials per participant")
    parser.add_argument("--faces", type=int, default=8)
    parser.add_argument("--accuracies", type=float, nargs=2, default=(0.6, 0.9))
    parser.add_argument("--bubbles", type=int, nargs=2, default=(5, 40), help="range of bubbles per trial")
    parser.add_argument("--n-slope", type=float, default=0.004, help="accuracy gained per extra bubble")
    parser.add_argument("--size", type=int, default=40, help="size the ORL faces are prepared at (px)")
    parser.add_argument("--sigma", type=float, default=2.0, help="aperture sigma (px)")
    parser.add_argument("--strength", type=float, default=1.0, help="guidance strength")
    parser.add_argument("--gain", type=float, default=0.4, help="power study: accuracy per unit of eye coverage")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def design(args: argparse.Namespace):
    """Per-face guided densities (from ORL relevance through the real reader), their CentreDensity, the aperture."""
    with tempfile.TemporaryDirectory() as folder:
        densities, aperture, ids = build_design(Path(folder), args.size, args.faces, args.sigma, args.strength)
    per_face = {f"face{s}": CentreDensity(d) for s, d in enumerate(densities)}
    return densities, per_face, aperture, ids


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.time()
    densities, per_face, aperture, ids = design(args)
    print(f"guided per-image null: seed {args.seed}; ORL faces {', '.join(ids)} at {aperture.shape[0]}x"
          f"{aperture.shape[1]} px, relevance = gradient magnitude (sigma {args.sigma:g}) per face, "
          f"strength {args.strength:g}, centres inside the face aperture ({int(aperture.sum())} px)")
    print(f"{args.participants} observers x {args.trials} trials, {args.bubbles[0]}-{args.bubbles[1]} bubbles of "
          f"sigma {args.sigma:g} px, face accuracies {args.accuracies[0]:g}-{args.accuracies[1]:g}, "
          f"n slope {args.n_slope:g}; bubble location irrelevant (null)")
    rng = np.random.default_rng(args.seed)
    rft_study(rng, densities, per_face, aperture, args)
    permutation_study(rng, densities, per_face, aperture, args)
    power_study(rng, densities, per_face, aperture, args)
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
