"""model.explain: the explain command end to end on tiny trained variants (its contract file, bad
input, baseline maps), ensure_maps reusing only maps of this set's version, and image subsets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_checks import run_command  # tests/cli_checks.py

from model import load_variant
from model.explain import ensure_maps, image_subset
from model.explain import main as explain_main
from model.sanity import baseline_seed
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.contracts.relevance import baseline_set, load_relevance, relevance_path

V0, V1 = "vgg16-bn-w0.0625-none-gender-s0", "vgg16-bn-w0.0625-none-gender-s1"


@pytest.mark.slow
def test_explain_command_writes_the_contract_file(trained, capsys):
    code, out, err = run_command(explain_main, ["--variant", V0, "--stimuli", "synth-eyes", "--out", str(trained),
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
    from model.lrp import explain_images

    variant = load_variant(V0, trained, "cpu")
    i = 17
    one = explain_images(variant.net, stimuli.images[i:i + 1], variant.to_input, target=maps.target[i:i + 1])
    np.testing.assert_allclose(one.relevance[0], maps.relevance[i], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one.logit[0], maps.logit[i], rtol=1e-5)
    prov = json.loads((relevance_path(V0, "synth-eyes", trained).parent / "provenance.json").read_text())
    assert prov["runs"]["synth-eyes"]["output"] == "synth-eyes.npz" and prov["inputs"]


@pytest.mark.slow
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
    code, out, err = run_command(explain_main, [x for kv in base.items() for x in kv], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err
    after = sorted(p.name for p in (trained / "relevance").rglob("*")) if (trained / "relevance").is_dir() else []
    assert after == before  # nothing half-written


@pytest.mark.slow
def test_evaluate_reexplains_maps_made_on_another_version_of_the_set(trained, tmp_path):
    """Stored maps are reused only when they record this set's content hash: maps of a
    re-prepared set (same ids, same grid) are explained again, never masked with."""
    import shutil

    from stimuli.contracts.relevance import SET_HASH_KEY, save_relevance

    root = tmp_path / "results"
    shutil.copytree(trained, root)
    stimuli = load_prepared_set("synth-eyes", root)
    variant = load_variant(V0, root, "cpu")
    fresh = ensure_maps(variant, stimuli, root, composite="epsilon_plus_flat", target="true", batch_size=64,
                        device="cpu")
    path = relevance_path(V0, "synth-eyes", root)
    stored = load_relevance(path)
    assert stored.meta[SET_HASH_KEY] == stimuli.content_hash
    # the same file as if made on an older version of the set: other pixels, another hash
    save_relevance(path, np.zeros_like(stored.relevance), stored.stimulus_id, stored.target, stored.prediction,
                   stored.logit, {**stored.meta, SET_HASH_KEY: "0" * 64})
    again = ensure_maps(variant, stimuli, root, composite="epsilon_plus_flat", target="true", batch_size=64,
                        device="cpu")
    assert np.allclose(again.relevance, fresh.relevance) and np.abs(again.relevance).sum() > 0
    assert load_relevance(path).meta[SET_HASH_KEY] == stimuli.content_hash


def test_image_subset_is_seeded_sorted_and_checked():
    rows = image_subset(50, 10, seed=2)
    assert len(rows) == 10 and len(set(rows)) == 10 and (np.diff(rows) > 0).all()
    assert rows.tolist() == image_subset(50, 10, seed=2).tolist() != image_subset(50, 10, seed=3).tolist()
    assert image_subset(5, None).tolist() == [0, 1, 2, 3, 4] == image_subset(5, 9).tolist()
    with pytest.raises(InputError, match="at least 1"):
        image_subset(5, 0)
    assert baseline_set("orl128", "random") == "orl128.baseline-random"
    with pytest.raises(InputError, match="unknown baseline"):
        baseline_set("orl128", "nope")


@pytest.mark.slow
def test_explain_command_writes_baseline_maps_next_to_the_variants(trained, capsys):
    from model.explain import main as explain_main
    from stimuli.contracts.relevance import load_relevance, relevance_path

    variant = "vgg16-bn-w0.0625-none-gender-s0"
    common = ["--variant", variant, "--stimuli", "synth-eyes", "--out", str(trained), "--device", "cpu"]
    assert explain_main(common + ["--images", "24", "--image-seed", "4"]) == 0
    own = load_relevance(variant, "synth-eyes", trained)
    assert explain_main(common + ["--baseline", "untrained", "random", "--images", "24", "--image-seed", "4"]) == 0
    for kind in ("untrained", "random"):
        path = relevance_path(variant, f"synth-eyes.baseline-{kind}", trained)
        assert path.is_file()
        base = load_relevance(path)
        assert base.meta["baseline"]["kind"] == kind and base.meta["images"] == {"n": 24, "of": 200, "seed": 4}
        assert base.meta["baseline"]["reinit_seed"] == baseline_seed(variant, 0)
        assert list(base.stimulus_id) == list(own.stimulus_id)  # the same subset: maps pair up
        r = [np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(own.relevance, base.relevance)]
        assert np.mean(r) < 0.9, kind
    capsys.readouterr()
