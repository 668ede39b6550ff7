"""model.evaluate: the config (the packaged demo config, a boolean target) and the evaluate command
end to end on tiny trained variants (tables, resuming, bad configs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_checks import run_command  # tests/cli_checks.py

from model import load_variant
from model.evaluate import EvaluateConfig, _variant_names, evaluate
from model.evaluate import main as evaluate_main
from model.scoring import masked_scores
from model.variants import held_out
from stimuli.contracts.config import load_config
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.relevance import relevance_path

V0, V1 = "vgg16-bn-w0.0625-none-gender-s0", "vgg16-bn-w0.0625-none-gender-s1"


def test_packaged_demo_config_names_the_demo_variants():
    path = Path(__file__).resolve().parents[2] / "model" / "configs" / "demo_evaluate.yaml"
    config = load_config(EvaluateConfig, path)
    names = _variant_names(config, str(path))
    assert "vgg16-imagenet-gender-s0" in names and len(names) == len(set(names)) >= 2
    assert not any("-faces-s" in n for n in names)  # the face-pretraining source is not evaluated
    assert config.target == "true" and config.masking.transfer_mode == "remove"
    # the demo's baselines: random blobs inside the aperture and each target's own set-mean map
    assert config.masking.random_within == "aperture" and config.masking.set_mean == "own"


def test_a_boolean_false_target_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("variants: [vgg16-imagenet-gender-s0]\ntarget: false\n")
    with pytest.raises(InputError, match="key 'target' must be 'true' or 'pred'"):
        load_config(EvaluateConfig, path)


def write_config(tmp_path: Path, **overrides) -> Path:
    config = {"variants": [V0, V1], "masking": {"fractions": [0.5, 1.0], "random_repeats": 2,
                                                 "fill": "background", "bootstrap": 200}, "seed": 3,
              **overrides}
    path = tmp_path / "tiny_evaluate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_evaluate_command_end_to_end(trained, tmp_path, capsys):
    config = write_config(tmp_path)
    code, out, err = run_command(evaluate_main, [str(config), "--out", str(trained), "--device", "cpu"], capsys)
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
    code, out, _ = run_command(evaluate_main, [str(config), "--out", str(trained), "--device", "cpu"], capsys)
    assert code == 0 and "up to date" in out and (folder / "summary.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
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


@pytest.mark.slow
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
    code, out, err = run_command(evaluate_main, [str(path), "--out", str(trained), "--device", "cpu"], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert not (trained / "evaluate" / "bad").exists()
