"""Relevance files of large sets (stimuli/contracts/relevance_file.py, issue #15): written batch by
batch, read memory-mapped or a chunk at a time, the files of the old layout (a compressed npz)
read by the same reader."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from stimuli.contracts import relevance_file
from stimuli.contracts.errors import InputError
from stimuli.contracts.provenance import atomic_save_npz, file_sha256
from stimuli.contracts.relevance import (
    load_relevance,
    relevance_writer,
    save_relevance,
    set_mean_map,
)

META = {"variant": "v", "composite": "epsilon_plus_flat", "target_rule": "true"}


def contents(n=7, shape=(5, 6), seed=0):
    rng = np.random.default_rng(seed)
    relevance = rng.normal(size=(n, *shape)).astype(np.float32)
    ids = [f"s{i:02d}" for i in range(n)]
    return relevance, ids, rng.integers(0, 2, n), rng.integers(0, 2, n), rng.normal(size=n).astype(np.float32)


def save_old_layout(path, relevance, ids, target, prediction, logit, meta):
    """The writer before issue #15, byte for byte: one compressed npz of the same arrays."""
    return atomic_save_npz(path, relevance=np.asarray(relevance, np.float32), meta=np.asarray(json.dumps(meta)),
                           stimulus_id=np.asarray(ids, dtype=str), target=np.asarray(target, np.int64),
                           prediction=np.asarray(prediction, np.int64), logit=np.asarray(logit, np.float32))


def test_one_reader_reads_the_old_and_the_new_layout_identically(tmp_path):
    relevance, ids, target, prediction, logit = contents()
    relevance[3, 2, 2] = np.nan  # a non-finite map, as LRP can make
    old = load_relevance(save_old_layout(tmp_path / "old.npz", relevance, ids, target, prediction, logit, META))
    new = load_relevance(save_relevance(tmp_path / "new.npz", relevance, ids, target, prediction, logit, META))
    assert isinstance(new.relevance, np.memmap) and not isinstance(old.relevance, np.memmap)
    assert new.source is not None and old.source is None
    for maps in (old, new):
        np.testing.assert_array_equal(maps.relevance, relevance)
        assert maps.stimulus_id.tolist() == ids and maps.meta == META
        np.testing.assert_array_equal(maps.target, target)
        np.testing.assert_array_equal(maps.prediction, prediction)
        np.testing.assert_array_equal(maps.logit, logit)
        assert maps.finite().tolist() == [i != 3 for i in range(len(ids))]
        np.testing.assert_array_equal(maps.by_id("s05"), relevance[5])
        np.testing.assert_array_equal(maps.take([6, 0, 6]), relevance[[6, 0, 6]])
    np.testing.assert_array_equal(old.mean_map(), new.mean_map())
    np.testing.assert_array_equal(old.mean_map(positive=True), new.mean_map(positive=True))
    # plain numpy still reads the new layout, and its maps start 64-byte aligned in the file
    with np.load(tmp_path / "new.npz") as data:
        np.testing.assert_array_equal(data["relevance"], relevance)
    assert new.source.offset % 64 == 0 and new.relevance.flags.aligned


@pytest.mark.parametrize("batches", [[7], [1, 1, 5], [3, 0, 4], [2, 2, 2, 1]])
def test_writing_batch_by_batch_makes_the_same_file_as_one_write(tmp_path, batches):
    relevance, ids, target, prediction, logit = contents()
    whole = save_relevance(tmp_path / "whole.npz", relevance, ids, target, prediction, logit, META)
    with relevance_writer(tmp_path / "parts.npz", len(relevance), relevance.shape[1:]) as out:
        start = 0
        for size in batches:
            out.write(relevance[start:start + size])
            start += size
        parts = out.finish(ids, target, prediction, logit, META)
    assert file_sha256(parts) == file_sha256(whole)  # byte for byte


def test_set_mean_in_chunks_equals_the_plain_mean(monkeypatch):
    rng = np.random.default_rng(3)
    relevance = rng.normal(size=(53, 9, 8)).astype(np.float32)
    relevance[[4, 40]] = np.inf
    relevance[17, 0, 0] = np.nan
    finite = np.delete(relevance, [4, 17, 40], axis=0).astype(np.float64)
    expected = {False: finite.mean(axis=0), True: np.clip(finite, 0, None).mean(axis=0)}
    for chunk_bytes in (9 * 8 * 4, 5 * 9 * 8 * 4, 10**9):  # one map, five maps, all at once
        monkeypatch.setattr(relevance_file, "CHUNK_BYTES", chunk_bytes)
        for positive in (False, True):
            mean = set_mean_map(relevance, positive=positive)
            assert mean.dtype == np.float32
            np.testing.assert_allclose(mean, expected[positive], rtol=1e-6, atol=1e-7)
    with pytest.raises(InputError, match="no finite maps"):
        set_mean_map(relevance[[4, 17]])


def test_an_unfinished_write_leaves_no_file(tmp_path):
    relevance, ids, target, prediction, logit = contents()
    path = tmp_path / "v" / "set.npz"
    with relevance_writer(path, len(relevance), relevance.shape[1:]) as out:  # fewer maps than declared
        out.write(relevance[:4])
        with pytest.raises(ValueError, match="4 of 7 maps"):
            out.finish(ids, target, prediction, logit, META)
    with pytest.raises(RuntimeError), relevance_writer(path, len(relevance), relevance.shape[1:]) as out:
        out.write(relevance[:2])
        raise RuntimeError("killed midway")
    with pytest.raises(ValueError, match="8 maps written, 7 declared"), \
            relevance_writer(path, len(relevance), relevance.shape[1:]) as out:
        out.write(np.concatenate([relevance, relevance[:1]]))
    assert list(path.parent.iterdir()) == []  # neither the file nor a temporary one


@pytest.mark.parametrize("cut", ["inside_maps", "before_directory", "last_byte"])
def test_a_torn_file_is_not_read_as_complete(tmp_path, cut):
    relevance, ids, target, prediction, logit = contents(n=40, shape=(16, 16))
    path = save_relevance(tmp_path / "set.npz", relevance, ids, target, prediction, logit, META)
    data = path.read_bytes()
    keep = {"inside_maps": 5000, "before_directory": len(data) - 300, "last_byte": len(data) - 1}[cut]
    path.write_bytes(data[:keep])
    with pytest.raises(InputError, match="not a readable relevance file"):
        load_relevance(path)


def test_maps_shorter_than_their_header_are_refused(tmp_path):
    """A maps member whose size disagrees with its own .npy header (a torn copy patched up) is refused."""
    relevance, ids, target, prediction, logit = contents(n=6)
    path = save_relevance(tmp_path / "set.npz", relevance, ids, target, prediction, logit, META)
    data = bytearray(path.read_bytes())
    header = data.index(b"'shape': (6, 5, 6)")
    data[header:header + 18] = b"'shape': (9, 5, 6)"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="not a readable relevance file"):
        load_relevance(path)


def test_reading_a_large_file_holds_a_chunk_not_the_file(tmp_path, monkeypatch):
    """2000 maps of 64 x 64 (32 MB): set-mean, finite check, every map by id, evaluate-style
    batches and the SHA-256 each stay far below the file's size (materialising it would not)."""
    monkeypatch.setattr(relevance_file, "CHUNK_BYTES", 1024**2)
    n, shape = 2000, (64, 64)
    rng = np.random.default_rng(0)
    path = tmp_path / "big.npz"
    with relevance_writer(path, n, shape) as out:
        for _ in range(0, n, 100):
            out.write(rng.normal(size=(100, *shape)).astype(np.float32))
        out.finish([f"s{i:04d}" for i in range(n)], np.zeros(n), np.zeros(n), np.zeros(n), META)
    size = n * shape[0] * shape[1] * 4
    maps = load_relevance(path)
    tracemalloc.start()
    try:
        mean = maps.mean_map()
        finite = maps.finite()
        total = sum(float(maps.by_id(f"s{i:04d}")[0, 0]) for i in range(0, n, 7))
        for start in range(0, n, 64):
            total += float(maps.take(np.arange(start, min(start + 64, n)))[:, 1, 1].sum())
        digest = file_sha256(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert finite.all() and mean.shape == shape and np.isfinite(total) and len(digest) == 64
    assert peak < size / 8, f"peak {peak / 1e6:.1f} MB reading a {size / 1e6:.0f} MB file"
    # the check can fail: the same passes over the maps held in memory go past the file's size
    tracemalloc.start()
    try:
        np.asarray(maps.relevance)[np.isfinite(maps.relevance).all(axis=(1, 2))].mean(axis=0)
        held = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert held > size / 2


def test_an_empty_set_round_trips(tmp_path):
    path = save_relevance(tmp_path / "empty.npz", np.zeros((0, 4, 3), np.float32), [], [], [], [], META)
    maps = load_relevance(path)
    assert maps.relevance.shape == (0, 4, 3) and len(maps) == 0 and maps.finite().shape == (0,)


def test_maps_read_before_the_file_is_made_again_stay_the_maps_read(tmp_path):
    """Per-image reads and the memory map see the same file: the one opened, not a newer one."""
    relevance, ids, target, prediction, logit = contents()
    path = save_relevance(tmp_path / "set.npz", relevance, ids, target, prediction, logit, META)
    maps = load_relevance(path)
    save_relevance(path, relevance[::-1] + 1, ids, target, prediction, logit, META)  # explained again
    np.testing.assert_array_equal(maps.by_id("s02"), relevance[2])
    np.testing.assert_array_equal(maps.relevance[2], relevance[2])
    np.testing.assert_array_equal(maps.mean_map(), relevance.mean(axis=0, dtype=np.float64).astype(np.float32))
    np.testing.assert_array_equal(load_relevance(path).by_id("s02"), relevance[4] + 1)
