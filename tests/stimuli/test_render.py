"""render: masked stimuli, manifest, contact sheet; guided modes read relevance files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stimuli.__main__ import main
from stimuli.bubbles import mask_from_trial
from stimuli.contracts.errors import InputError
from stimuli.contracts.relevance import load_relevance, save_relevance
from stimuli.faces import read_image
from stimuli.regions import region_mask
from stimuli.render import rebuild_mask, render_set, render_stimuli


@pytest.fixture(scope="module")
def eye_relevance(results, orl32):
    """Relevance maps of a fake variant that sees only the eyes (plus a little noise)."""
    eyes = region_mask("eyes", orl32.shape)
    noise = np.random.default_rng(0).normal(0, 0.05, (len(orl32), *orl32.shape))
    maps = np.where(eyes, 1.0, 0.0) + noise
    save_relevance(results / "relevance" / "fake-eyes" / "orl32.npz", maps.astype(np.float32),
                   orl32.manifest.stimulus_id, np.zeros(len(orl32)), np.zeros(len(orl32)),
                   np.ones(len(orl32)), {"variant": "fake-eyes"})
    return load_relevance("fake-eyes", "orl32", results)


def test_random_render_writes_images_manifest_sheet_and_provenance(tmp_path, results, orl32):
    out = render_set("orl32", "random", 6, 2.5, tmp_path / "r", results=results, count=12, seed=4,
                     progress=False)
    table = pd.read_csv(out / "manifest.csv")
    assert len(table) == 12 and table.stimulus_id.iloc[11] == orl32.manifest.stimulus_id.iloc[11]
    assert {"stimulus_id", "mode", "n_bubbles", "sigma_px", "mask_seed", "centres"} <= set(table.columns)
    assert (out / "contact_sheet.png").is_file() and (out / "provenance.json").is_file()
    for _, row in table.iterrows():
        # the PNG is the face seen through the mask rebuilt from the stored centres
        mask = mask_from_trial({"bubbles": row.centres, "sigma_px": row.sigma_px}, orl32.shape)
        expected = (orl32.image(row.stimulus_id) - 0.5) * mask + 0.5
        assert np.abs(read_image(out / row.file) - expected).max() <= 0.5 / 255 + 1e-6
        assert abs(mask.sum() - row.area_px) < 1e-2
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.size == (4 * 32 + 3 * 2, 3 * 32 + 2 * 2)


def test_render_is_seeded(orl32):
    _, first = render_stimuli(orl32, "random", 5, 2.0, count=4, seed=1)
    _, again = render_stimuli(orl32, "random", 5, 2.0, count=4, seed=1)
    _, other = render_stimuli(orl32, "random", 5, 2.0, count=4, seed=2)
    assert first.equals(again)
    assert not (first.centres == other.centres).any()


def test_guided_and_antiguided_follow_the_relevance(orl32, eye_relevance):
    eyes = region_mask("eyes", orl32.shape)

    def share_in_eyes(mode):
        _, table = render_stimuli(orl32, mode, 10, 1.5, relevance=eye_relevance, count=40, seed=0)
        centres = np.concatenate([np.asarray(json.loads(c)) for c in table.centres]).astype(int)
        return eyes[centres[:, 0], centres[:, 1]].mean()

    base = eyes.mean()
    assert share_in_eyes("guided") > 3 * base
    assert share_in_eyes("antiguided") < 0.5 * base


def test_topk_reveals_the_relevant_area_of_a_random_mask(orl32, eye_relevance):
    images, table = render_stimuli(orl32, "topk", 4, 2.0, relevance=eye_relevance, count=5, seed=3,
                                   source="mean")
    _, random = render_stimuli(orl32, "random", 4, 2.0, count=5, seed=3)
    assert np.allclose(table.area_px, random.area_px, rtol=0.01)
    eyes = region_mask("eyes", orl32.shape)
    for _, row in table.iterrows():
        mask = rebuild_mask(row, orl32, eye_relevance)
        assert abs(mask.sum() - row.area_px) / row.area_px < 0.01
        assert mask[eyes].sum() > 0.9 * mask.sum()  # the small area sits where the relevance is


def test_render_inside_the_aperture(orl32):
    _, table = render_stimuli(orl32, "random", 20, 2.0, count=10, within="aperture")
    centres = np.concatenate([np.asarray(json.loads(c)) for c in table.centres]).astype(int)
    assert orl32.aperture[centres[:, 0], centres[:, 1]].all()


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"sigma_px": 0}, "bubble sigma must be a positive number of pixels, got 0"),
    ({"n_bubbles": 10_000}, "10000 bubbles of sigma 2 px would open the whole 32x32 image"),
    ({"mode": "guided"}, "mode 'guided' needs relevance maps: give --variant"),
    ({"mode": "spotlight"}, "unknown mode 'spotlight'"),
    ({"count": 0}, "--count 0"),
])
def test_render_rejects_bad_input(orl32, kwargs, needle):
    arguments = {"mode": "random", "n_bubbles": 5, "sigma_px": 2.0, **kwargs}
    with pytest.raises(InputError) as error:
        render_stimuli(orl32, **arguments)
    assert needle in str(error.value)


def test_render_command_and_its_errors(tmp_path, results, eye_relevance, capsys):
    base = ["render", "--stimuli", "orl32", "--results", str(results), "--n-bubbles", "5", "--sigma", "2"]
    assert main([*base, "--mode", "guided", "--variant", "fake-eyes", "--count", "3", "--out",
                 str(tmp_path / "g")]) == 0
    assert pd.read_csv(tmp_path / "g" / "manifest.csv").variant.tolist() == ["fake-eyes"] * 3
    capsys.readouterr()
    cases = [
        (["--stimuli", "nope", "--mode", "random"], "make it with: python -m stimuli prepare"),
        (["--mode", "guided", "--variant", "absent"],
         "make them with: python -m model explain --variant absent --stimuli orl32"),
        (["--mode", "random", "--sigma", "-1"], "bubble sigma must be a positive number"),
        (["--mode", "random", "--out", str(tmp_path / "g")], "exists already; add --force"),
    ]
    for extra, needle in cases:
        argv = [*base, "--out", str(tmp_path / "x"), *extra]
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and err.startswith("error: ") and "\n" not in err
        assert needle in err, err
    assert not (tmp_path / "x").exists()
