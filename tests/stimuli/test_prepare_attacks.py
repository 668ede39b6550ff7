"""Attacks on ``stimuli prepare``: replacing a set keeps the old one; oversized images and sizes are
refused in one line before anything is written."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from cli_checks import one_line_error

from stimuli.__main__ import main
from stimuli.contracts.errors import InputError
from stimuli.contracts.prepared import load_prepared_set
from stimuli.faces import load_face_set, read_image
from stimuli.prepare import MAX_IMAGE_PIXELS


def test_prepare_force_replaces_its_own_set_only_and_keeps_the_old_one(study, face_folder, tmp_path, capsys):
    results, _ = study
    old = load_prepared_set("small", results).content_hash
    assert main(["prepare", "--faces", str(face_folder), "--size", "24", "--name", "small", "--out", str(results),
                 "--contrast", "0.05", "--force"]) == 0
    new = load_prepared_set("small", results).content_hash
    aside = [p for p in (results / "stimuli").iterdir() if p.name.startswith("small.old-")]
    assert len(aside) == 1 and new != old
    assert json.loads((aside[0] / "set.json").read_text())["content_sha256"] == old
    assert load_prepared_set(aside[0]).content_hash == old  # still whole, still usable


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` grey pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(("width", "height", "needle"), [
    (20000, 20000, "has 400,000,000 pixels, over the limit of 50,000,000 per image"),
    (8000, 8000, "has 8000x8000 = 64,000,000 pixels, over the limit of 50,000,000 per image"),
])
def test_prepare_refuses_huge_images_in_one_line_before_writing(tmp_path, face_folder, capsys, width, height,
                                                                 needle):
    faces = face_folder
    _png_header(faces / "p0" / "1.png", width, height)
    results = tmp_path / "results"
    err = one_line_error(capsys, main, ["prepare", "--faces", str(faces), "--size", "24", "--name", "s",
                                  "--out", str(results)])
    assert needle in err and "p0/1.png" in err and not results.exists()
    assert width * height > MAX_IMAGE_PIXELS
    if width * height > 2 * 89478485:  # beyond PIL's own guard: a reader that decodes says so in one line too
        with pytest.raises(InputError, match="cannot read image"):
            read_image(faces / "p0" / "1.png")
        with pytest.raises(InputError, match="cannot read image"):
            load_face_set(faces)


def test_prepare_refuses_a_huge_size_in_one_line(tmp_path, face_folder, capsys):
    for size in ("100000", "1025"):
        err = one_line_error(capsys, main, ["prepare", "--faces", str(face_folder), "--size", size, "--name", "s",
                                      "--out", str(tmp_path / "results")])
        assert f"--size {size}: the stimulus side must be an integer of at least 8 pixels and at most 1024" in err
    assert not (tmp_path / "results").exists()
