"""``stimuli prepare`` streams (issue #15): the equalisation targets come from one pass over the
faces and each prepared image is made as it is written, so the set never sits in memory, and the
set is the one the in-memory path makes, pixel for pixel."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from stimuli.contracts.prepared import load_prepared_set, write_prepared_set
from stimuli.faces import load_face_set
from stimuli.prepare import prepare_faces, prepare_set


def face_folder(folder, n=40, shape=(24, 20)):
    """``n`` random grey faces of 4 identities with a faces.csv."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    lines = ["image,identity,gender"]
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(folder / f"f{i:02d}.png")
        lines.append(f"f{i:02d}.png,p{i % 4},{'female' if i % 2 else 'male'}")
    (folder / "faces.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize("method", ["meanstd", "histogram"])
def test_prepare_holds_one_image_not_the_set_and_makes_the_same_set(tmp_path, method):
    folder = face_folder(tmp_path / "faces")
    size, faces = 512, load_face_set(folder, check_images=False)
    stack_bytes = len(faces) * size * size * 4  # 42 MB: far above what an image and the imports take
    tracemalloc.start()
    try:
        prepare_set(folder, size, "lazy", results=tmp_path, progress=False, aperture=True, method=method)
        streamed = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        images, manifest, info = prepare_faces(faces, size, aperture=True, method=method)  # all in memory
        held = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert streamed < stack_bytes / 2 < stack_bytes < held, (streamed, stack_bytes, held)
    write_prepared_set(tmp_path / "stimuli" / "held", images, manifest, background=info.pop("background"),
                       aperture=info.pop("aperture"), info=info)
    lazy, whole = load_prepared_set("lazy", tmp_path), load_prepared_set("held", tmp_path)
    assert lazy.content_hash == whole.content_hash  # pixels, manifest and set.json's parameters
    assert lazy.info["equalise"] == whole.info["equalise"] and lazy.info["equalise"]["clipped_fraction"] >= 0
