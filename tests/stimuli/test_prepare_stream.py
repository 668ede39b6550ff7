"""``stimuli prepare`` streams (issue #15): the equalisation targets come from one pass over the
faces and each prepared image is made as it is written, so the set never sits in memory, and the
set is the one the in-memory path makes, pixel for pixel."""

from __future__ import annotations

import tracemalloc

import pytest

from stimuli.faces import load_face_set
from stimuli.prepare import prepare_faces, prepare_set
from stimuli.prepared import load_prepared_set, write_prepared_set


@pytest.mark.slow
@pytest.mark.parametrize("method", ["meanstd", "histogram"])
def test_prepare_holds_one_image_not_the_set_and_makes_the_same_set(tmp_path, method):
    size, faces = 96, load_face_set("orl", check_images=False)
    stack_bytes = len(faces) * size * size * 4
    tracemalloc.start()
    try:
        prepare_set("orl", size, "lazy", results=tmp_path, progress=False, aperture=True, method=method)
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
