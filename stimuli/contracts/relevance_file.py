"""The bytes of a relevance file: written map by map, read memory-mapped or chunk by chunk.

A relevance file is an ordinary numpy ``.npz`` (a zip archive of ``.npy`` members), so
``np.load`` reads it as before. What changed (issue #15) is how the ``relevance`` member is
stored: uncompressed (``ZIP_STORED``), first in the archive, its data aligned to 64 bytes in
the file. Its pixels are then one contiguous run of float32 bytes at a known offset, which
lets :class:`RelevanceWriter` append maps batch by batch (nothing holds the whole set) and
:func:`read_arrays` map them (``np.memmap``) instead of reading them. Files written before
(``savez_compressed``: a deflated member) cannot be mapped; they are read into memory as
they always were, through the same function.

Whole-set passes (the set-mean map, the finite check, per-image access across the set) read
through :class:`MapSource` with plain positional reads, not through the mapping: pages read
through a mapping stay in the process's resident set until the kernel needs them back,
plain reads only pass through the page cache, so memory stays at one chunk.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "set.npz"
>>> with RelevanceWriter(path, 3, (2, 2)) as out:
...     out.write(np.ones((2, 2, 2), np.float32))
...     out.write(np.zeros((1, 2, 2), np.float32))
...     _ = out.finish({"stimulus_id": np.array(["a", "b", "c"])}, meta="{}")
>>> relevance, arrays, source = read_arrays(path, ("stimulus_id",))
>>> type(relevance).__name__, relevance.sum(), source is not None
('memmap', np.float32(8.0), True)
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import weakref
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .provenance import _fsync_dir, file_mode

__all__ = ["MAP_KEY", "RelevanceWriter", "MapSource", "read_arrays", "CHUNK_BYTES"]

MAP_KEY = "relevance"
CHUNK_BYTES = 16 * 1024**2  # a whole-set pass holds about this much of the maps at once
_ALIGN = 64  # numpy pads a .npy header so that its data start 64-byte aligned; keep that in the zip
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # a zip local file header (30 bytes)
_PAD_ID = 0xD935  # extra-field id of the alignment padding (the one Android's zipalign uses)


class MapSource:
    """Where an uncompressed ``relevance`` member's pixels lie in its file.

    ``rows(start, stop)`` reads maps ``start:stop`` with positional reads (a fresh array,
    nothing left mapped); ``take(index)`` one map. The file is held open from the moment it
    was read, so a file replaced since (maps made again) is never mixed with this one: like
    the memory map, the reads see the file as it was opened.

    Parameters
    ----------
    path : Path
        The relevance file.
    offset : int
        Byte offset of the first map's first pixel.
    shape : tuple of int
        (N, H, W) of the maps.
    dtype : numpy.dtype
        Their type (little-endian float32).
    fd : int, optional
        An open descriptor of the file to read through (closed with this object).
    """

    def __init__(self, path: Path, offset: int, shape: tuple[int, int, int], dtype: np.dtype, *,
                 fd: int | None = None) -> None:
        self.path, self.offset, self.shape, self.dtype = Path(path), int(offset), shape, np.dtype(dtype)
        self._fd = os.open(self.path, os.O_RDONLY) if fd is None else fd  # ours from now on: closed with us
        weakref.finalize(self, os.close, self._fd)

    @property
    def row_bytes(self) -> int:
        return int(self.shape[1] * self.shape[2] * self.dtype.itemsize)

    def rows(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, int(start)), min(int(stop), self.shape[0])
        out = np.empty((max(stop - start, 0), *self.shape[1:]), dtype=self.dtype)
        if out.size:
            view, done = memoryview(out).cast("B"), 0
            while done < out.nbytes:
                got = os.preadv(self._fd, [view[done:]], self.offset + start * self.row_bytes + done)
                if got == 0:
                    raise OSError(f"{self.path}: file ends inside the relevance maps")
                done += got
        return out

    def take(self, index: int) -> np.ndarray:
        index = int(index)
        if not -self.shape[0] <= index < self.shape[0]:
            raise IndexError(f"map {index} of {self.shape[0]}")
        index %= self.shape[0]
        return self.rows(index, index + 1)[0]


def chunk_rows(shape: Sequence[int], itemsize: int = 4, chunk_bytes: int | None = None) -> int:
    """How many (H, W) maps make about ``chunk_bytes`` (default :data:`CHUNK_BYTES`; at least one)."""
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    return max(1, chunk_bytes // max(1, int(np.prod(shape[1:])) * itemsize))


def iter_chunks(relevance: np.ndarray, source: MapSource | None = None,
                chunk_bytes: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, maps[start:start + k])`` over (N, H, W) maps, about ``chunk_bytes`` at a time.

    With a ``source`` the chunks are read from the file (not through the mapping).
    """
    step = chunk_rows(relevance.shape, relevance.dtype.itemsize, chunk_bytes)
    for start in range(0, len(relevance), step):
        if source is not None:
            yield start, source.rows(start, start + step)
        else:
            yield start, np.asarray(relevance[start:start + step])


class RelevanceWriter:
    """Write a relevance npz map batch by batch, then its small arrays; renamed into place at the end.

    Parameters
    ----------
    path : the file to make; nothing appears there until :meth:`finish` has written every map.
    n : the number of maps that will be written.
    shape : (H, W) of one map.

    The maps go to a temporary file next to ``path`` (``.<name>.*.tmp``); leaving the ``with``
    block without :meth:`finish` (an error, fewer maps than ``n``) removes it. A process killed
    midway leaves only that temporary name, never a file at ``path``.
    """

    def __init__(self, path: str | os.PathLike, n: int, shape: Sequence[int]) -> None:
        self.path = Path(path)
        self.n, self.shape = int(n), (int(shape[0]), int(shape[1]))
        self.written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self.tmp = Path(tmp)
        os.fchmod(fd, file_mode())
        self._handle = os.fdopen(fd, "w+b")
        self._zip = zipfile.ZipFile(self._handle, "w", zipfile.ZIP_STORED, allowZip64=True)
        info = zipfile.ZipInfo(f"{MAP_KEY}.npy", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        header = self._npy_header()
        # local header: 30 bytes + name + extra (ours + zipfile's 20-byte zip64 field); pad ours so
        # that the .npy data (after its header) start on a 64-byte boundary of the file
        fixed = _LOCAL_HEADER.size + len(info.filename) + 20 + 4
        info.extra = struct.pack("<HH", _PAD_ID, (-(fixed + len(header))) % _ALIGN) + bytes(
            (-(fixed + len(header))) % _ALIGN)
        self._member = self._zip.open(info, "w", force_zip64=True)
        self._member.write(header)

    def _npy_header(self) -> bytes:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, {
            "descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
            "shape": (self.n, *self.shape)})
        return buffer.getvalue()

    def write(self, maps: np.ndarray) -> None:
        """Append maps (k, H, W) (converted to float32) after those already written."""
        maps = np.ascontiguousarray(maps, dtype="<f4")
        if maps.ndim != 3 or maps.shape[1:] != self.shape:
            raise ValueError(f"{self.path}: maps of shape {maps.shape}, expected (k, {self.shape[0]}, {self.shape[1]})")
        if self.written + len(maps) > self.n:
            raise ValueError(f"{self.path}: {self.written + len(maps)} maps written, {self.n} declared")
        if maps.size:
            self._member.write(memoryview(maps).cast("B"))
        self.written += len(maps)

    def finish(self, arrays: Mapping[str, Any], meta: str) -> Path:
        """Write the other arrays and ``meta`` (a JSON string), then move the file into place."""
        if self.written != self.n:
            raise ValueError(f"{self.path}: {self.written} of {self.n} maps written")
        self._member.close()
        for key, value in {**arrays, "meta": np.asarray(meta)}.items():
            with self._zip.open(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w",
                                force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
        self._zip.close()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self.tmp, self.path)
        _fsync_dir(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file (nothing appears at ``path``)."""
        with contextlib.suppress(Exception):
            self._member.close()
        with contextlib.suppress(Exception):
            self._zip.close()
        with contextlib.suppress(Exception):
            self._handle.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()

    def __enter__(self) -> RelevanceWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.tmp.exists():  # not finished (an error, or finish never called)
            self.abort()


def _stored_source(handle: BinaryIO, path: Path, info: zipfile.ZipInfo) -> MapSource | None:
    """Where a stored (uncompressed, unencrypted, C-order) ``.npy`` member's data lie; None otherwise."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    handle.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
    if fields[0] != b"PK\x03\x04":
        raise ValueError(f"no zip entry at offset {info.header_offset}")
    start = info.header_offset + _LOCAL_HEADER.size + fields[10] + fields[11]
    handle.seek(start)
    version = np.lib.format.read_magic(handle)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(handle)
    offset = handle.tell()
    if fortran or dtype.hasobject or len(shape) != 3:
        return None
    size = int(np.prod(shape)) * dtype.itemsize
    if info.file_size != offset - start + size:
        raise ValueError(f"the relevance member holds {info.file_size} bytes, its header says {offset - start + size}")
    return MapSource(path, offset, tuple(int(s) for s in shape), dtype, fd=os.dup(handle.fileno()))


def read_arrays(path: str | os.PathLike, keys: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray], MapSource | None]:
    """The maps (memory-mapped when stored uncompressed), the arrays ``keys`` and the maps' source.

    Everything is read from one opening of the file (a file replaced meanwhile is never mixed
    in). Raises ``KeyError`` naming the first missing key, ``OSError``/``ValueError`` (a
    ``zipfile.BadZipFile`` among them) for a file that is not a complete npz.

    Parameters
    ----------
    path : str or path-like
        The relevance file.
    keys : sequence of str
        The per-map arrays to read besides ``relevance``.

    Returns
    -------
    relevance : numpy.ndarray
        (N, H, W) maps (a ``numpy.memmap`` for files of the current layout).
    arrays : dict of str to numpy.ndarray
        The arrays ``keys``.
    source : MapSource or None
        Where the maps lie (None for a compressed file of the old layout).
    """
    path = Path(path)
    with open(path, "rb") as handle:
        with zipfile.ZipFile(handle) as archive:
            names = {Path(n).stem: n for n in archive.namelist()}
            for key in (MAP_KEY, *keys):
                if key not in names:
                    raise KeyError(key)
            info = archive.getinfo(names[MAP_KEY])
        source = _stored_source(handle, path, info)
        handle.seek(0)
        with np.load(handle, allow_pickle=False) as data:
            arrays = {key: data[key] for key in keys}
            if source is None:
                return data[MAP_KEY], arrays, None
        if 0 in source.shape:
            return np.zeros(source.shape, source.dtype), arrays, source
        maps = np.memmap(handle, dtype=source.dtype, mode="r", offset=source.offset, shape=source.shape)
    return maps, arrays, source
