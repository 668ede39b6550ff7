"""Synthetic ground-truth faces: class evidence only inside the named region."""

from __future__ import annotations

import numpy as np
import pytest

from stimuli.__main__ import main
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.faces import load_face_set, make_split
from stimuli.regions import region_mask
from stimuli.synthetic import grating_cue, synth_set, synthesize


@pytest.fixture(scope="module")
def synth_eyes(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synth_set("eyes", 32, "synth-eyes", results=root, n_per_class=60, seed=1)
    return load_prepared_set("synth-eyes", root)


def test_synthetic_set_is_a_prepared_set_with_its_region(synth_eyes):
    table = synth_eyes.manifest
    assert len(synth_eyes) == 120 and synth_eyes.shape == (32, 32)
    assert (table.gender == table["class"]).all() and table.gender.value_counts().to_dict() == {"a": 60, "b": 60}
    # every base face appears once in each class: the label says nothing about identity
    assert table.groupby("base_id")["class"].apply(lambda c: "".join(sorted(c))).eq("ab").all()
    region = synth_eyes.mask("region")
    assert np.array_equal(region, region_mask("eyes", (32, 32)))
    assert synth_eyes.info["synthetic"]["region"] == "eyes" and synth_eyes.info["masks"] == {"region": "region.png"}
    split = make_split(table, "gender", seed=0)  # the training helpers' split works on it
    assert set(split.split) == {"train", "val", "test"}


def test_the_classes_differ_only_inside_the_region(synth_eyes):
    region = synth_eyes.mask("region")
    table = synth_eyes.manifest
    for base_id in table.base_id.unique()[:20]:
        a = synth_eyes.image(f"{base_id}-a")
        b = synth_eyes.image(f"{base_id}-b")
        assert np.array_equal(a[~region], b[~region])
        assert np.abs(a[region] - b[region]).mean() > 0.1


def test_the_cue_is_learnable_from_the_region_alone(synth_eyes):
    """A template (class-mean difference inside the region) separates the classes perfectly."""
    region = synth_eyes.mask("region")
    is_b = (synth_eyes.manifest["class"] == "b").to_numpy()
    pixels = synth_eyes.images[:, region]
    half = np.arange(len(is_b)) % 2 == 0  # learn the template on half, test on the other
    template = pixels[half & is_b].mean(0) - pixels[half & ~is_b].mean(0)
    score = (pixels - pixels[half].mean(0)) @ template
    assert ((score > 0) == is_b)[~half].all()
    # outside the region the same template idea finds nothing
    outside = synth_eyes.images[:, ~region]
    template = outside[half & is_b].mean(0) - outside[half & ~is_b].mean(0)
    assert np.abs(template).max() == 0


def test_random_phase_leaves_only_orientation():
    faces = load_face_set("orl")
    images, table, region = synthesize(faces, "mouth", 48, n_per_class=30, phase="random", seed=2)
    rows, cols = np.nonzero(region)
    inside = images[:, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    across_rows = (np.diff(inside, axis=1) ** 2).mean(axis=(1, 2))  # large for horizontal stripes
    across_cols = (np.diff(inside, axis=2) ** 2).mean(axis=(1, 2))
    assert ((across_rows > across_cols) == (table["class"] == "a").to_numpy()).all()
    assert table.cue_phase.nunique() == 60


def test_grating_cue_orientation_and_confinement():
    region = region_mask("box:0.25,0.75,0.25,0.75", (16, 16))
    a = grating_cue((16, 16), region, "a", 4, 0.0)
    b = grating_cue((16, 16), region, "b", 4, 0.0)
    assert (a[~region] == 0).all() and (b[~region] == 0).all()
    assert np.allclose(a[region].reshape(8, 8), a[region].reshape(8, 8)[:, :1])  # constant along rows
    assert np.allclose(b[region].reshape(8, 8), b[region].reshape(8, 8)[:1, :])  # constant along columns
    assert np.allclose(b, b[:, ::-1])  # survives a left-right flip


@pytest.mark.parametrize(("args", "needle"), [
    ({"region": "ears"}, "unknown region 'ears'"),
    ({"region": "box:0.5,0.4,0,1"}, "a box is box:top,bottom,left,right"),
    ({"n_per_class": 500}, "--n-per-class 500 must lie between 1 and the 400 faces"),
    ({"amplitude": 0.0}, "cue amplitude 0.0"),
    ({"phase": "drift"}, "unknown cue phase 'drift'"),
    ({"region": "box:0.5,0.52,0.5,0.52"}, "smaller than one stripe period"),
])
def test_synthesize_rejects_bad_input(args, needle):
    arguments = {"region": "eyes", "size": 32, "n_per_class": 4, **args}
    with pytest.raises(InputError) as error:
        synthesize(load_face_set("orl"), arguments.pop("region"), arguments.pop("size"), **arguments)
    assert needle in str(error.value)


def test_synth_command(tmp_path, capsys):
    argv = ["synth", "--region", "mouth", "--size", "24", "--name", "sm", "--n-per-class", "5",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    assert (tmp_path / "stimuli" / "sm" / "region.png").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err == f"error: prepared set {tmp_path / 'stimuli' / 'sm'} exists already; add --force to replace it"
    with pytest.raises(SystemExit):
        main(["synth", "--region", "chin", "--size", "24", "--name", "x", "--out", str(tmp_path)])
    assert "unknown region 'chin'" in capsys.readouterr().err
    assert not (tmp_path / "stimuli" / "x").exists()


def test_synth_command_lowers_the_face_contrast_and_refuses_a_bad_one(tmp_path, capsys):
    """--contrast sets the faces' RMS contrast under the cue (outside the region the pixels are the
    faces alone); an impossible contrast is one clear line and writes nothing."""
    from stimuli.__main__ import main

    base = ["synth", "--region", "mouth", "--size", "32", "--n-per-class", "20", "--out", str(tmp_path)]
    assert main([*base, "--name", "low", "--contrast", "0.05"]) == 0
    assert main([*base, "--name", "full"]) == 0
    low, full = load_prepared_set("low", tmp_path), load_prepared_set("full", tmp_path)
    outside = ~low.mask("region")
    assert low.images[:, outside].std() < 0.6 * full.images[:, outside].std()
    capsys.readouterr()
    try:
        code = main([*base, "--name", "bad", "--contrast", "0.9"])
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and "contrast 0.9" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "stimuli" / "bad").exists()
