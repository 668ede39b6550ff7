"""Face sets (issue 2): the built-in ORL set, folder sets, bad input, and seeded splits."""

from __future__ import annotations

import numpy as np
import pytest

from stimuli.contracts.errors import InputError
from stimuli.faces import load_face_set, make_split, read_split
from stimuli.prepare import prepare_set


def test_orl_has_400_faces_of_40_identities_and_40_female_images():
    faces = load_face_set("orl")
    table = faces.table
    assert len(faces) == 400 and table.identity.nunique() == 40
    assert (table.identity.value_counts() == 10).all()
    assert (table.gender == "female").sum() == 40
    assert sorted(table.identity[table.gender == "female"].unique()) == ["s10", "s32", "s35", "s8"]
    assert faces.load(0).shape == (112, 92)
    labels, classes = faces.labels("gender")
    assert classes == ["female", "male"] and labels.sum() == 360


# each case: how to break a valid folder, and what the one-line error must say
def _drop_folder(folder):
    import shutil

    shutil.rmtree(folder)


def _drop_csv(folder):
    (folder / "faces.csv").unlink()


def _edit_csv(transform):
    def edit(folder):
        lines = (folder / "faces.csv").read_text().splitlines()
        (folder / "faces.csv").write_text("\n".join(transform(lines)) + "\n")
    return edit


def _corrupt(folder):
    (folder / "p1" / "2.png").write_bytes(b"this is not an image")


def _truncate(folder):
    path = folder / "p2" / "1.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_FOLDERS = {
    "missing folder": (_drop_folder, "face folder not found"),
    "missing faces.csv": (_drop_csv, "faces.csv: missing"),
    "missing column": (_edit_csv(lambda ls: [ls[0].replace(",gender", ",sex")] + ls[1:]),
                       "missing column(s) gender"),
    "extra fields in a row": (_edit_csv(lambda ls: ls[:3] + [ls[3] + ",extra"] + ls[4:]),
                              "line 4: 5 fields where the header has 4"),
    "missing fields in a row": (_edit_csv(lambda ls: ls[:5] + ["p1/0.png,p1"] + ls[6:]),
                                "line 6: 2 fields where the header has 4"),
    "listed file absent": (_edit_csv(lambda ls: ls + ["p9/0.png,p9,male,30"]),
                           "line 14: listed image"),
    "corrupt image": (_corrupt, "p1/2.png: cannot read image"),
    "truncated image": (_truncate, "p2/1.png: cannot read image"),
    "empty label cell": (_edit_csv(lambda ls: ls[:2] + ["p0/1.png,p0,,20"] + ls[3:]),
                         "line 3: empty 'gender'"),
    "duplicate rows": (_edit_csv(lambda ls: ls + [ls[2]]), "is listed more than once (lines 3, 14)"),
    "empty file": (_edit_csv(lambda ls: []), "faces.csv: the file is empty"),
    # issue 13: labels fill trial-file cells and key answers; a tab or newline would crash a session
    "label with a tab": (_edit_csv(lambda ls: ls[:2] + ['p0/1.png,"p0\tx",male,20'] + ls[3:]),
                         "line 3: identity 'p0\\tx' is not a valid label (letters, digits, '_' and '-' only"),
    "label with a newline": (_edit_csv(lambda ls: ls[:2] + ['p0/1.png,p0,"ma\nle",20'] + ls[3:]),
                             "line 3: gender 'ma\\nle' is not a valid label"),
    "label with a space": (_edit_csv(lambda ls: ls[:2] + ["p0/1.png,p 0,male,20"] + ls[3:]),
                           "line 3: identity 'p 0' is not a valid label"),
    "tab in another column": (_edit_csv(lambda ls: ls[:2] + ['p0/1.png,p0,male,"2\t0"'] + ls[3:]),
                              "line 3: column 'age' holds a control character"),
}


@pytest.mark.parametrize("case", BAD_FOLDERS)
def test_bad_face_folders_give_one_error_naming_the_file_or_row(tmp_path, face_folder, case):
    breaker, needle = BAD_FOLDERS[case]
    breaker(face_folder)
    with pytest.raises(InputError) as error:
        load_face_set(face_folder)
    message = str(error.value)
    assert needle in message and "\n" not in message, message
    assert str(face_folder) in message  # names the file (or folder)
    # and a command fed this folder writes nothing
    with pytest.raises(InputError):
        prepare_set(face_folder, 16, "bad", results=tmp_path / "results", progress=False)
    assert not (tmp_path / "results" / "stimuli" / "bad").exists()
    leftovers = list((tmp_path / "results").rglob("*")) if (tmp_path / "results").exists() else []
    assert not [p for p in leftovers if p.is_file()]


def test_a_valid_folder_keeps_its_extra_columns(face_folder):
    faces = load_face_set(face_folder)
    assert len(faces) == 12 and list(faces.table.columns) == ["image", "identity", "gender", "age"]
    assert faces.load(0).dtype == np.float32 and faces.load(0).shape == (20, 16)


def test_splits_are_seeded_and_saved(tmp_path):
    faces = load_face_set("orl")
    first = make_split(faces, "identity", seed=0)
    assert first.equals(make_split(faces, "identity", seed=0))
    assert not first.split.equals(make_split(faces, "identity", seed=1).split)
    # image-level: every identity is in train and test (as an identity task needs)
    for split in ("train", "val", "test"):
        assert first.identity[first.split == split].nunique() == 40
    assert first.attrs["seed"] == 0 and first.attrs["kind"] == "image"
    path = tmp_path / "split.csv"
    first.to_csv(path, index=False)
    again = read_split(path)
    assert again.split.tolist() == first.split.tolist() and again.label.tolist() == first.label.tolist()


def test_identity_disjoint_gender_split():
    faces = load_face_set("orl")
    split = make_split(faces, "gender", kind="identity", seed=3)
    owners = split.groupby("identity").split.nunique()
    assert (owners == 1).all()  # nobody is in two splits
    for name in ("train", "val", "test"):
        assert set(split.gender[split.split == name]) == {"female", "male"}
    with pytest.raises(InputError, match="identity-disjoint split is impossible for the identity task"):
        make_split(faces, "identity", kind="identity")


def test_a_class_without_images_in_a_split_is_refused(face_folder):
    # 3 identities, one of them female: an identity-disjoint split cannot give her class 3 splits
    faces = load_face_set(face_folder)
    with pytest.raises(InputError, match="gender 'female' has 1 identities"):
        make_split(faces, "gender", kind="identity")
    # one face of a class: no test image for it
    table = faces.table.copy()
    table.loc[0, "gender"] = "other"
    with pytest.raises(InputError, match="class\\(es\\) other have no images in the (train|test) split"):
        make_split(table, "gender", seed=0)
