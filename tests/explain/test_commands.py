"""The explain, evaluate and groundtruth commands end to end on tiny trained variants; sanity checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from model import load_variant
from model.evaluate import (
    EvaluateConfig,
    evaluate,
    held_out,
    mask_images,
    masked_scores,
    top_fraction_masks,
)
from model.evaluate import main as evaluate_main
from model.explain import main as explain_main
from model.groundtruth import main as groundtruth_main
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.relevance import load_relevance, relevance_path

pytestmark = pytest.mark.slow
V0, V1 = "vgg16-bn-w0.0625-none-gender-s0", "vgg16-bn-w0.0625-none-gender-s1"


def run(main, argv, capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_command_writes_the_contract_file(trained, capsys):
    code, out, err = run(explain_main, ["--variant", V0, "--stimuli", "synth-eyes", "--out", str(trained),
                                        "--batch-size", "7", "--device", "cpu"], capsys)
    assert code == 0, err
    maps = load_relevance(V0, "synth-eyes", trained)
    stimuli = load_prepared_set("synth-eyes", trained)
    assert maps.relevance.shape == (len(stimuli), *stimuli.shape) and maps.relevance.dtype == np.float32
    assert list(maps.stimulus_id) == list(stimuli.manifest.stimulus_id)
    assert list(maps.target) == [0 if g == "a" else 1 for g in stimuli.manifest.gender]  # the true class
    assert maps.meta["composite"] == "epsilon_plus_flat" and maps.meta["backend"] == "fast"
    assert maps.meta["canonizer"] == "VGGCanonizer" and maps.meta["target_rule"] == "true"
    assert len(maps.meta["conservation"]["ratio"]) == len(stimuli)
    assert "maps (epsilon_plus_flat, fast)" in out and "sum R / logit" in out
    # map i is image i: the same variant explains a single stimulus the same way
    from model.explain import explain_images

    variant = load_variant(V0, trained, "cpu")
    i = 17
    one = explain_images(variant.net, stimuli.images[i:i + 1], variant.to_input, target=maps.target[i:i + 1])
    np.testing.assert_allclose(one.relevance[0], maps.relevance[i], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one.logit[0], maps.logit[i], rtol=1e-5)
    prov = json.loads((relevance_path(V0, "synth-eyes", trained).parent / "provenance.json").read_text())
    assert prov["runs"]["synth-eyes"]["output"] == "synth-eyes.npz" and prov["inputs"]


@pytest.mark.parametrize("argv, needle", [
    (["--composite", "lrp_magic"], "unknown composite 'lrp_magic'; valid: "),
    (["--stimuli", "nope"], "prepared stimulus set 'nope' not found"),
    (["--variant", "vgg16-none-gender-s9"], "python -m model train"),
    (["--batch-size", "0"], "batch size must be at least 1"),
])
def test_explain_command_bad_input_is_one_line(trained, capsys, argv, needle):
    base = {"--variant": V0, "--stimuli": "synth-eyes", "--out": str(trained), "--device": "cpu"}
    for key, value in zip(argv[::2], argv[1::2]):
        base[key] = value
    before = sorted(p.name for p in (trained / "relevance").rglob("*")) if (trained / "relevance").is_dir() else []
    code, out, err = run(explain_main, [x for kv in base.items() for x in kv], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err
    after = sorted(p.name for p in (trained / "relevance").rglob("*")) if (trained / "relevance").is_dir() else []
    assert after == before  # nothing half-written


def test_masking_at_fraction_zero_and_one(trained):
    variant = load_variant(V0, trained, "cpu")
    stimuli = load_prepared_set("synth-eyes", trained)
    rows, labels = held_out(variant, stimuli, "test")
    images = stimuli.images[rows]
    maps = np.random.default_rng(0).normal(size=images.shape)
    none, everything = top_fraction_masks(maps, [0.0, 1.0])
    assert not none.any() and everything.all()
    fill = np.full_like(images, stimuli.background)
    plain = masked_scores(variant, images, labels)
    assert plain["accuracy"] >= 0.9
    # fraction 0 removed: the images and the accuracy are unchanged
    assert np.array_equal(mask_images(images, none, "remove", fill), images)
    assert masked_scores(variant, mask_images(images, none, "remove", fill), labels) == plain
    # fraction 1 removed: one grey image for all, one answer for all -> that class's share (chance)
    blank = mask_images(images, everything, "remove", fill)
    assert np.all(blank == stimuli.background)
    predicted = variant.predict_logits(blank).argmax(1)
    assert len(set(predicted)) == 1
    scores = masked_scores(variant, blank, labels)
    assert scores["accuracy"] == pytest.approx(np.mean(labels == predicted[0]))  # that class's share
    assert scores["balanced_accuracy"] == 0.5  # exactly chance, whatever the class sizes
    # keep mode mirrors it: keeping everything is the plain images
    assert masked_scores(variant, mask_images(images, everything, "keep", fill), labels) == plain


def write_config(tmp_path: Path, **overrides) -> Path:
    config = {"variants": [V0, V1], "masking": {"fractions": [0.5, 1.0], "random_repeats": 2,
                                                 "fill": "background", "bootstrap": 200}, "seed": 3,
              **overrides}
    path = tmp_path / "tiny_evaluate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_evaluate_command_end_to_end(trained, tmp_path, capsys):
    config = write_config(tmp_path)
    code, out, err = run(evaluate_main, [str(config), "--out", str(trained), "--device", "cpu"], capsys)
    assert code == 0, err
    folder = trained / "evaluate" / "tiny_evaluate"
    tables = folder / "tables"
    accuracy = pd.read_csv(tables / "accuracy.csv")
    sources = {V0, V1, "random", f"setmean:{V0}", f"setmean:{V1}"}
    assert set(accuracy.source) == sources and set(accuracy.target) == {V0, V1}
    assert set(accuracy["mode"]) == {"remove", "keep"} and sorted(set(accuracy.fraction)) == [0.0, 0.5, 1.0]
    assert len(accuracy) == 2 * 5 * 2 * 3  # targets x sources x modes x fractions
    assert (accuracy.random_within == "grid").all()  # the synthetic set has no aperture
    per_image = pd.read_csv(tables / "aopc_per_image.csv")
    aopc = pd.read_csv(tables / "aopc.csv")
    assert len(per_image) == sum(aopc.n_images) and set(aopc.source) == sources
    mean = per_image.groupby(["source", "target", "mode"]).aopc_p_true.mean()
    for r in aopc.itertuples():
        assert r.aopc == pytest.approx(mean[(r.source, r.target, r.mode)]) and r.aopc_ci_low <= r.aopc
        assert r.metric == "p_true" and r.n_boot == 200 and r.boot_seed == 3
    for target in (V0, V1):  # fraction 0 removed == the target's own test accuracy
        variant = load_variant(target, trained, "cpu")
        rows, labels = held_out(variant, load_prepared_set("synth-eyes", trained), "test")
        expected = masked_scores(variant, load_prepared_set("synth-eyes", trained).images[rows], labels)["accuracy"]
        zero = accuracy[(accuracy.target == target) & (accuracy["mode"] == "remove") & (accuracy.fraction == 0)]
        assert np.allclose(zero.accuracy, expected)
        one = accuracy[(accuracy.target == target) & (accuracy["mode"] == "remove") & (accuracy.fraction == 1)]
        assert one.accuracy.nunique() == 1  # every source hides everything: the same blank images
        assert np.allclose(one.balanced_accuracy, 0.5)  # chance
    transfer = pd.read_csv(tables / "transfer_remove.csv")
    assert len(transfer) == 4 and set(transfer.columns) >= {"aopc", "aopc_own", "aopc_random", "relative",
                                                            "aopc_setmean", "relative_ci_low", "vs_setmean"}
    own = transfer[transfer.source == transfer.target]
    assert np.allclose(own.relative, 1.0)
    matrix = pd.read_csv(tables / "matrix_remove.csv", index_col=0)
    assert matrix.shape == (2, 2)
    asym = pd.read_csv(tables / "asymmetry_remove.csv")
    assert len(asym) == 1 and asym.asymmetry.iloc[0] == pytest.approx(matrix.loc[V0, V1] - matrix.loc[V1, V0])
    row = asym.iloc[0]
    assert row.relative_asymmetry_ci_low <= row.relative_asymmetry <= row.relative_asymmetry_ci_high
    assert 0 < row.relative_asymmetry_p <= 1 and bool(row.paired)
    groups = pd.read_csv(tables / "groups_remove.csv")
    assert set(groups.relation) == {"same", "seed"} and set(groups.pairs) == {2}
    summary = json.loads((folder / "summary.json").read_text())
    assert {row["variant"] for row in summary["own_vs_random"]} == {V0, V1}
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["seeds"] == {"masking": 3, "bootstrap": 3} and str(config) in prov["inputs"]
    assert summary["bootstrap"] == {"resamples": 200, "seed": 3, "confidence": 0.95, "unit": "images"}
    assert "after removing the top 50%: own map" in out
    assert {row["variant"] for row in summary["baselines"]} == {V0, V1}
    assert f"{V0}: AOPC (p_true, remove, 95% CI over images): own maps " in out and "set-mean map" in out
    # the relevance maps it needed are contract files now
    assert relevance_path(V1, "synth-eyes", trained).is_file()
    # a second run with the same config leaves the finished folder alone
    stamp = (folder / "summary.json").stat().st_mtime_ns
    code, out, _ = run(evaluate_main, [str(config), "--out", str(trained), "--device", "cpu"], capsys)
    assert code == 0 and "up to date" in out and (folder / "summary.json").stat().st_mtime_ns == stamp


def test_evaluate_resumes_from_finished_targets(trained, tmp_path):
    config_path = write_config(tmp_path, name="resumed", masking={"fractions": [0.5], "random_repeats": 1,
                                                                  "modes": ["remove"], "set_mean": "none",
                                                                  "bootstrap": 100})
    from stimuli.contracts.config import load_config

    config = load_config(EvaluateConfig, config_path)
    from model.evaluate import _config_hash

    work = trained / "evaluate" / ".resumed.work"
    work.mkdir(parents=True)
    (work / "config_hash").write_text(_config_hash(config))
    # a target that finished before an interruption: its rows are taken as they are
    done = pd.DataFrame([{"source": s, "target": V0, "mode": "remove", "fraction": f, "accuracy": 0.123,
                          "accuracy_sd": 0.0, "balanced_accuracy": 0.123, "balanced_accuracy_sd": 0.0,
                          "p_true": 0.5, "n_images": 40, "repeats": 1, "fill": "background",
                          "unmasked_accuracy": 0.123, "unmasked_balanced_accuracy": 0.123, "chance": 0.5,
                          "majority": 0.5}
                         for s in (V0, V1, "random") for f in (0.0, 0.5)])
    done.to_csv(work / f"accuracy-{V0}.csv", index=False)
    images = pd.DataFrame([{"source": s, "target": V0, "mode": "remove", "stimulus_id": f"x{i}", "label": i % 2,
                            "aopc_p_true": 0.321, "aopc_accuracy": 0.0, "aopc_balanced_accuracy": 0.0,
                            "fractions": 2} for s in (V0, V1, "random") for i in range(4)])
    images.to_csv(work / f"images-{V0}.csv", index=False)
    folder = evaluate(config, trained, where=str(config_path), device="cpu", progress=False)
    accuracy = pd.read_csv(folder / "tables" / "accuracy.csv")
    assert (accuracy[accuracy.target == V0].accuracy == 0.123).all()
    assert not (accuracy[accuracy.target == V1].accuracy == 0.123).any()
    aopc = pd.read_csv(folder / "tables" / "aopc.csv")
    assert np.allclose(aopc[aopc.target == V0].aopc, 0.321) and not np.isclose(aopc[aopc.target == V1].aopc, 0.321).any()
    assert not work.exists()


@pytest.mark.parametrize("text, needle", [
    ("variants: [x]\nmasking: {fractions: [0.2, 1.5]}\n", "key 'masking.fractions' must lie in (0, 1]"),
    ("variants: [x]\nmasking: {fractions: [0.1, 0.3]}\n", "key 'masking.fractions' must be a uniform grid"),
    ("variantz: []\n", "unknown key 'variantz' (did you mean 'variants'?)"),
    (f"variants: [{V0}]\ncomposite: nope\n", "unknown composite 'nope'"),
    (f"variants: [{V0}, vgg16-none-gender-s7]\n", "python -m model train"),
])
def test_evaluate_bad_config_is_one_line(trained, tmp_path, capsys, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = run(evaluate_main, [str(path), "--out", str(trained), "--device", "cpu"], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert not (trained / "evaluate" / "bad").exists()


def test_groundtruth_region_at_tiny_size(trained, capsys):
    """The eyes-cue variant's relevance sits in the eyes, not in a region of the same size elsewhere."""
    code, out, err = run(groundtruth_main, ["--variant", V0, "--out", str(trained), "--device", "cpu"], capsys)
    assert code == 0, err
    folder = trained / "groundtruth" / V0 / "synth-eyes"
    summary = json.loads((folder / "summary.json").read_text())
    scores = pd.read_csv(folder / "scores.csv")
    assert summary["accuracy"] >= 0.9 and summary["images"] == "test split" and len(scores) == summary["n"]
    share = summary["region_share"]
    assert summary["mass_accuracy"] >= 3 * share and summary["rank_accuracy"] >= 3 * share
    # the same maps scored against the mouth (a region the cue never touches) score far lower
    code, out, err = run(groundtruth_main, ["--variant", V0, "--out", str(trained), "--device", "cpu",
                                            "--region", "mouth"], capsys)
    mouth = json.loads((folder.with_name("synth-eyes-mouth") / "summary.json").read_text())
    assert json.loads((folder / "summary.json").read_text()) == summary  # a named region has its own folder
    assert code == 0 and mouth["mass_accuracy"] < summary["mass_accuracy"] / 2
    assert "relevance mass accuracy" in out and (folder / "provenance.json").is_file()


def test_groundtruth_default_composite_is_explains():
    """groundtruth names the default without importing torch; it must stay explain's default."""
    from model.explain import DEFAULT_METHOD
    from model.groundtruth import DEFAULT_COMPOSITE

    assert DEFAULT_COMPOSITE == DEFAULT_METHOD


def test_groundtruth_needs_a_region(trained, capsys, tmp_path):
    from stimuli.prepare import prepare_set

    prepare_set("orl", 32, "orl32", results=trained, progress=False)
    code, out, err = run(groundtruth_main, ["--variant", V0, "--stimuli", "orl32", "--out", str(trained),
                                            "--device", "cpu"], capsys)
    assert code == 2 and "has no region mask" in err and "--region eyes" in err


def test_randomisation_changes_the_maps(trained):
    from model.sanity import sanity_checks

    variant = load_variant(V0, trained, "cpu")
    table = sanity_checks(variant, trained, composites=["epsilon_plus_flat", "gradient"], images=8,
                          random_labels=True, seed=0)
    assert set(table.composite) == {"epsilon_plus_flat", "gradient"}
    table = table[table.composite == "epsilon_plus_flat"]
    cascade = table[table.test == "cascading"]
    assert cascade.step.tolist() == list(range(17))  # trained, then 16 weight layers top down
    assert cascade.layer.iloc[1] == "classifier.6" and cascade.layer.iloc[-1] == "features.0"
    assert cascade.spearman.iloc[0] == pytest.approx(1.0) and cascade.ssim.iloc[0] == pytest.approx(1.0)
    assert cascade.spearman.iloc[-1] < 0.5 and cascade.ssim.iloc[-1] < 0.5
    shuffled = table[table.test == "random_labels"]
    assert len(shuffled) == 1 and shuffled.spearman.iloc[0] < 0.9


def test_commands_are_wired_into_python_m_model(trained, capsys):
    import subprocess
    import sys

    from model.__main__ import main as model_main

    for command in ("explain", "evaluate", "groundtruth"):
        code, out, _ = run(model_main, [command, "--help"], capsys)
        assert code == 0 and f"python -m model {command}" in out
    code, _, err = run(model_main, ["evaluate", str(trained / "missing.yaml")], capsys)
    assert code == 2 and err.count("\n") == 1 and "config file not found" in err
    # one real run through the interpreter's -m entry point
    done = subprocess.run([sys.executable, "-m", "model", "explain", "--variant", V0, "--stimuli", "synth-eyes",
                           "--out", str(trained), "--device", "cpu", "--composite", "gradient", "--target", "pred"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    maps = load_relevance(V0, "synth-eyes", trained)
    assert maps.meta["composite"] == "gradient" and maps.meta["target_rule"] == "pred"
    assert list(maps.target) == list(maps.prediction)


def test_evaluate_reexplains_maps_made_on_another_version_of_the_set(trained, tmp_path):
    """Stored maps are reused only when they record this set's content hash: maps of a
    re-prepared set (same ids, same grid) are explained again, never masked with."""
    import shutil

    from model.evaluate import source_maps
    from stimuli.contracts.relevance import SET_HASH_KEY, save_relevance

    root = tmp_path / "results"
    shutil.copytree(trained, root)
    stimuli = load_prepared_set("synth-eyes", root)
    variant = load_variant(V0, root, "cpu")
    fresh = source_maps(variant, stimuli, root, composite="epsilon_plus_flat", target="true", batch_size=64,
                        device="cpu")
    path = relevance_path(V0, "synth-eyes", root)
    stored = load_relevance(path)
    assert stored.meta[SET_HASH_KEY] == stimuli.content_hash
    # the same file as if made on an older version of the set: other pixels, another hash
    save_relevance(path, np.zeros_like(stored.relevance), stored.stimulus_id, stored.target, stored.prediction,
                   stored.logit, {**stored.meta, SET_HASH_KEY: "0" * 64})
    again = source_maps(variant, stimuli, root, composite="epsilon_plus_flat", target="true", batch_size=64,
                        device="cpu")
    assert np.allclose(again.relevance, fresh.relevance) and np.abs(again.relevance).sum() > 0
    assert load_relevance(path).meta[SET_HASH_KEY] == stimuli.content_hash
