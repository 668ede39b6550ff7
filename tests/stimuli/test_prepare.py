"""prepare: framing, equalisation to target, ids, background, refusal and all-or-nothing writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.faces import load_face_set
from stimuli.prepare import equalise, prepare_faces, prepare_set, stimulus_ids


def _region_stats(prepared):
    region = prepared.aperture if prepared.aperture is not None else np.ones(prepared.shape, bool)
    pixels = prepared.images[:, region].astype(np.float64)
    return pixels.mean(axis=1), pixels.std(axis=1)


def test_orl_set_is_equalised_inside_the_aperture(orl32):
    # the raw ORL faces differ a lot in luminance and contrast, so equal values mean work was done
    raw = np.stack(load_face_set("orl").load_all()[:40])
    assert np.ptp(raw.mean(axis=(1, 2))) > 0.1 and np.ptp(raw.std(axis=(1, 2))) > 0.05
    means, stds = _region_stats(orl32)
    target = orl32.info["equalise"]
    assert target["region"] == "aperture" and target["method"] == "meanstd"
    assert np.abs(means - 0.5).max() < 0.004
    assert np.abs(stds - target["contrast"]).max() < 0.004
    # outside the aperture every pixel is the recorded background grey
    assert orl32.background == 0.5
    assert np.abs(orl32.images[:, ~orl32.aperture] - 0.5).max() <= 0.5 / 255 + 1e-6
    assert orl32.shape == (32, 32) and len(orl32) == 400


@pytest.mark.parametrize("method", ["meanstd", "histogram"])
@pytest.mark.parametrize("aperture", [False, True])
def test_prepare_reaches_the_requested_mean_and_contrast(tmp_path, face_folder, method, aperture):
    folder = prepare_set(face_folder, 24, "set", results=tmp_path, method=method, aperture=aperture,
                         mean=0.45, contrast=0.12, progress=False)
    prepared = load_prepared_set(folder)
    if not aperture:  # without an aperture the region is the photograph's footprint
        prepared.info["aperture"] = None
        region = np.zeros(prepared.shape, bool)
        region[:, 3:21] = True  # 20x16 padded to 20x20, then 24x24: columns 2.4..21.6
        pixels = prepared.images[:, region]
        means, stds = pixels.mean(axis=1), pixels.std(axis=1)
    else:
        means, stds = _region_stats(prepared)
    assert np.abs(means - 0.45).max() < 0.01
    assert np.abs(stds - 0.12).max() < 0.01
    assert prepared.info["equalise"]["method"] == method
    assert prepared.background == 0.45


def test_histogram_matching_gives_every_image_the_same_histogram():
    rng = np.random.default_rng(1)
    images = rng.beta(2, 5, size=(4, 10, 10)) * np.array([0.5, 1, 0.8, 0.3])[:, None, None]
    region = np.zeros((10, 10), bool)
    region[2:8, 1:9] = True
    out, info = equalise(images, region, "histogram", mean=0.5, contrast=0.1)
    values = np.sort(out[:, region], axis=1)
    assert np.allclose(values, values[0], atol=1e-6)
    assert np.allclose(out[:, ~region], images[:, ~region].astype(np.float32))  # outside untouched
    assert abs(values[0].mean() - 0.5) < 1e-4 and abs(values[0].std() - 0.1) < 1e-4


def test_stimulus_ids_are_filename_safe_unique_and_sorted():
    assert stimulus_ids(["s1/1.pgm", "s1/10.pgm", "s12/2.pgm"]) == ["s1-01", "s1-10", "s12-02"]
    assert stimulus_ids(["a b/c(1).png"]) == ["a_b-c_1_"]
    with pytest.raises(InputError, match="'x/1.png' and 'x/1.jpg' would get the same stimulus_id"):
        stimulus_ids(["x/1.png", "x/1.jpg"])


def test_manifest_keeps_labels_sources_and_extra_columns(tmp_path, face_folder):
    images, manifest, info = prepare_faces(load_face_set(face_folder), 16)
    assert list(manifest.columns[:4]) == ["stimulus_id", "identity", "gender", "source"]
    assert manifest.stimulus_id.iloc[0] == "p0-0" and manifest.age.iloc[-1] == "22"
    assert (face_folder / "p0" / "0.png").samefile(manifest.source.iloc[0])
    assert images.shape == (12, 16, 16) and images.dtype == np.float32


def test_prepare_refuses_an_existing_set_unless_forced(tmp_path, face_folder):
    folder = prepare_set(face_folder, 16, "s", results=tmp_path, progress=False)
    stamp = (folder / "provenance.json").read_text()
    with pytest.raises(InputError, match="exists already; add --force"):
        prepare_set(face_folder, 16, "s", results=tmp_path, progress=False)
    assert (folder / "provenance.json").read_text() == stamp
    prepare_set(face_folder, 20, "s", results=tmp_path, force=True, progress=False)
    assert json.loads((folder / "set.json").read_text())["size"] == [20, 20]
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["config"]["size"] == 20 and len(provenance["inputs"]) == 13


def test_prepare_leaves_nothing_when_an_image_is_corrupt(tmp_path, face_folder):
    (face_folder / "p1" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(InputError, match=r"p1/2\.png: cannot read image"):
        prepare_set(face_folder, 16, "s", results=tmp_path, progress=False)
    assert not (tmp_path / "stimuli").exists() or not any((tmp_path / "stimuli").iterdir())


@pytest.mark.parametrize(("options", "needle"), [
    ({"size": 4}, "at least 8 pixels"),
    ({"mean": 1.2}, "target mean luminance 1.2"),
    ({"contrast": 0.0}, "target RMS contrast 0.0"),
    ({"method": "shine"}, "unknown equalisation 'shine'"),
    ({"aperture": (0.5, 0.5, 0, 0.3)}, "aperture ellipse"),
])
def test_prepare_rejects_bad_options(face_folder, options, needle):
    options = {"size": 16, **options}
    with pytest.raises(InputError, match=needle):
        prepare_faces(load_face_set(face_folder), **options)
