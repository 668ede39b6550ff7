"""``analysis ci`` on guided sessions with per-image maps: each trial's centre density is rebuilt
from the session sidecar and the relevance file (exactly the density the centres were drawn
from), and a condition whose density cannot be rebuilt is refused with one line saying why."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ci_simulation import simulate_guided_observer, simulate_trials, trial_rows, write_trial_file

from analysis.ci_pipeline import CIConfig, run_ci
from analysis.readers.guided_densities import GuidedDensities
from stimuli.contracts.prepared import load_prepared_set, write_prepared_set
from stimuli.contracts.provenance import atomic_save_npz, file_sha256
from stimuli.contracts.relevance import relevance_path, save_relevance
from stimuli.contracts.trials import sidecar_path
from stimuli.guided import guidance_density

SHAPE, SIGMA, VARIANT = (40, 40), 2.5, "toy-identity-s0"
IDS = [f"face{i:02d}" for i in range(4)]


def relevance_maps(seed=0):
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[0:40, 0:40]
    maps = []
    for _ in IDS:  # eyes and mouth blobs, jittered per face, different weights
        m = np.zeros(SHAPE)
        for r0, c0 in ((14, 13), (14, 27), (29, 20)):
            m += rng.uniform(0.2, 1) * np.exp(-((rr - r0 - rng.normal(0, 2)) ** 2 + (cc - c0 - rng.normal(0, 2)) ** 2)
                                              / (2 * 3.0**2))
        maps.append(m)
    return np.stack(maps).astype(np.float32)


def make_study(root, *, sidecar_sha=True, old_layout=False):
    """A prepared set, a relevance file and three sessions (random + per-image guided).

    ``old_layout``: the relevance file as written before issue #15 (one compressed npz)."""
    results = root / "results"
    rng = np.random.default_rng(1)
    aperture = np.zeros(SHAPE, bool)
    aperture[3:37, 5:35] = True
    manifest = pd.DataFrame({"stimulus_id": IDS, "identity": ["a", "b", "c", "d"],
                             "gender": ["female", "male", "female", "male"], "source": "synthetic"})
    write_prepared_set(results / "stimuli" / "tiny", rng.random((4, *SHAPE)).astype(np.float32), manifest,
                       background=0.5, aperture=aperture)
    relevance = relevance_maps()
    path = relevance_path(VARIANT, "tiny", results)
    if old_layout:
        atomic_save_npz(path, relevance=relevance, stimulus_id=np.asarray(IDS), target=np.zeros(4, np.int64),
                        prediction=np.zeros(4, np.int64), logit=np.zeros(4, np.float32),
                        meta=np.asarray(json.dumps({"variant": VARIANT})))
    else:
        save_relevance(path, relevance, IDS, np.zeros(4), np.zeros(4), np.zeros(4), {"variant": VARIANT})
    densities = np.stack([guidance_density(m, SIGMA, strength=1.0, mode="guided", region=aperture, shape=SHAPE)
                          for m in relevance])
    record = {"mode": "guided", "variant": VARIANT, "maps": "per_image", "strength": 1.0,
              "relevance_file": str(path)}
    if sidecar_sha:
        record["relevance_sha256"] = file_sha256(path)
    masks = {"sigma_px": SIGMA, "centre_region": "aperture",
             "conditions": {"random": {"mode": "random"}, "guided": record}}
    for i in range(3):
        bt = simulate_guided_observer(rng, densities, [0.6, 0.7, 0.8, 0.9], n_trials=160, n_range=(6, 12),
                                      sigma_px=SIGMA)
        ids = [IDS[int(label[4:])] for label in bt.stratum]
        rows = simulate_trials(SHAPE, "eyes", n_trials=160, sigma_px=SIGMA, n_bubbles=(6, 12), seed=i)
        rows += trial_rows(bt, ids, condition="guided", seed=i)
        for t, row in enumerate(rows):
            row["trial"] = t + 1
        write_trial_file(root / "data", f"{i + 1:02d}", 1, "identity", rows, masks=masks)
    return results, densities, aperture


def config(root, results):
    return CIConfig(data_root=str(root / "data"), task="identity", stimuli="tiny", results=str(results),
                    search_region="all")


@pytest.mark.parametrize("old_layout", [False, True])
def test_per_image_densities_are_rebuilt_exactly_and_used(tmp_path, old_layout):
    results, densities, _ = make_study(tmp_path, old_layout=old_layout)
    outputs = run_ci(config(tmp_path, results), tmp_path / "out", progress=False)
    assert outputs.exclusions.empty
    summary = outputs.summary.set_index("condition")
    assert summary.loc["guided", "n_centre_densities"] == 4 and summary.loc["random", "n_centre_densities"] == 1
    rebuilt = GuidedDensities(load_prepared_set("tiny", results), results)
    trial_file = next((tmp_path / "data").glob("sub-01/ses-1/beh/*.tsv"))
    spec = rebuilt.spec(trial_file, "guided")
    for i, stimulus in enumerate(IDS):
        np.testing.assert_allclose(rebuilt.density_map(f"{spec.key}/{stimulus}"), densities[i], atol=1e-12)
    assert rebuilt.spec(trial_file, "random") is None


def test_permutation_z_and_max_statistic_run_within_faces(tmp_path):
    results, _, _ = make_study(tmp_path)
    settings = config(tmp_path, results)
    settings.z, settings.z_permutations, settings.permutations, settings.conditions = "permutation", 40, 19, ["guided"]
    outputs = run_ci(settings, tmp_path / "out", progress=False)
    row = outputs.summary.iloc[0]
    assert row.condition == "guided" and row.n_centre_densities == 4 and row.n_permutations == 19
    with np.load(outputs.maps["guided"]) as maps:
        assert maps["perm_max_z"].shape == (19,) and np.isfinite(maps["perm_max_z"]).all()
        assert np.isfinite(maps["z"]).all()


@pytest.mark.parametrize("damage, reason", [
    ("changed", "changed since the session"),
    ("relaid", "changed since the session"),
    ("missing", "relevance file not found"),
    ("no_sha", "lacks relevance_sha256"),
    ("no_record", "does not record how its centres were drawn"),
])
def test_a_guided_condition_that_cannot_be_rebuilt_is_refused(tmp_path, damage, reason):
    results, _, _ = make_study(tmp_path, sidecar_sha=damage != "no_sha", old_layout=damage == "relaid")
    path = relevance_path(VARIANT, "tiny", results)
    if damage == "relaid":  # the same maps re-written in the new layout: other bytes, so not what was recorded
        save_relevance(path, relevance_maps(), IDS, np.zeros(4), np.zeros(4), np.zeros(4), {"variant": VARIANT})
    if damage == "changed":
        save_relevance(path, relevance_maps(seed=5), IDS, np.zeros(4), np.zeros(4), np.zeros(4), {})
    elif damage == "missing":
        path.unlink()
    elif damage == "no_record":
        for sidecar in (tmp_path / "data").glob("sub-*/ses-*/beh/*.json"):
            data = json.loads(sidecar.read_text())
            del data["Masks"]["conditions"]["guided"]
            sidecar.write_text(json.dumps(data))
    outputs = run_ci(config(tmp_path, results), tmp_path / "out", progress=False)
    assert list(outputs.summary.condition) == ["random"]  # the rest is still produced
    guided = outputs.exclusions[outputs.exclusions.condition == "guided"]
    first = guided.reason.iloc[0]
    assert reason in first and "\n" not in first
    assert guided["where"].iloc[0].endswith("sub-01_ses-1_task-identity_beh.tsv")  # names the session's file
    assert str(sidecar_path(guided["where"].iloc[0])) in first  # and the sidecar it read
    table = pd.read_csv(tmp_path / "out" / "tables" / "ci_exclusions.csv")
    assert table.reason.str.contains(reason).any()


def test_a_sessions_sidecar_rebuilds_the_density_its_sampler_draws_from(tmp_path):
    # the contract between experiments/bubbles.py (sidecar, samplers) and the analysis
    import yaml

    from experiments.engine import load_task

    results, _, _ = make_study(tmp_path)
    config = {
        "paradigm": "bubbles", "task": "gender", "stimuli": "tiny", "responses": {"female": "f", "male": "j"},
        "stimulus_deg": 4.0, "screen": {"resolution": [640, 480], "fullscreen": False, "width_cm": 30.0,
                                        "distance_cm": 57.0},
        "bubbles": {"sigma_px": SIGMA, "region": "aperture"},
        "conditions": {"random": {}, "guided": {"variant": VARIANT, "maps": "per_image", "strength": 0.8},
                       "antiguided": {"variant": VARIANT, "maps": "mean", "strength": 0.6}},
        "design": {"blocks": ["random", "guided", "antiguided"], "trials_per_block": 4, "practice_trials": 0},
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    task = load_task(path, results)
    trial_file = tmp_path / "session" / "sub-01_ses-1_task-gender_beh.tsv"
    trial_file.parent.mkdir()
    sidecar_path(trial_file).write_text(json.dumps(task.sidecar()))
    rebuilt = GuidedDensities(load_prepared_set("tiny", results), results)
    guided, anti = rebuilt.spec(trial_file, "guided"), rebuilt.spec(trial_file, "antiguided")
    assert rebuilt.spec(trial_file, "random") is None
    for condition, label, stimulus in [("guided", f"{guided.key}/{IDS[2]}", IDS[2]), ("antiguided", anti.key, None)]:
        cdf = task._sampler(condition, stimulus).cdf
        np.testing.assert_allclose(rebuilt.density_map(label).ravel(), np.diff(cdf, prepend=0.0), atol=1e-12)
