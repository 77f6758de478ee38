"""Precomputed lists of every customer as ``.npy`` files, written block by block and read back by rows.

A million customers' serving lists with their reasons are gigabytes (26 bytes x 100 places x 2 lists each). A fit
writes them here as it produces them, in a folder private to the fit, instead of holding them in memory: every
write and read is a plain file write or read at an offset (``os.pwrite`` / ``os.preadv``), so the lists stay in
the kernel's page cache and never count in the process's resident memory, as the pages of a memory map would
until the kernel evicted them. Saving a model links (or, across file systems, copies in the kernel) each file
into the artefact: the files are ``.npy`` files byte for byte as ``np.save`` writes them, memory-mapped on load.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

#: Rows two wanted rows may lie apart and still be read in one piece (the rows between read and dropped).
_GAP_ROWS = 64
#: Bytes of fill written at a time where rows are skipped.
_FILL_BYTES = 16 << 20


class SpillFolder:
    """A folder private to one fit (mode 700, in the temporary directory) for its list files; removed with
    everything in it once no :class:`ListFile` of it is left (or at exit)."""

    def __init__(self, prefix: str = "clientele-lists-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))  # mkdtemp: mode 700
        self._remove = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def field(self, name: str, shape: tuple[int, int], dtype: Any, fill: Any) -> "ListFile":
        """A new list field ``name`` (file ``<name>.npy``) of ``shape``, every row ``fill`` until written."""
        return ListFile(self, self.path / f"{name}.npy", shape, dtype, fill)


class ListFile:
    """One field of a list (rows x places) in an ``.npy`` file of a :class:`SpillFolder`, indexed like the array it
    holds: ``f[rows]``, ``f[rows, cols]``, ``f[start:stop]`` read those rows from the file, and the same keys
    assign (``f[rows, cols] = values``) by reading the rows already written, setting the values and writing the
    rows back. Rows never written read as ``fill``; they are written as such once a later row is written, or by
    :meth:`finish`. Writes of distinct rows may come from several threads; a fit writes each block once, in
    order, so nothing is read back."""

    def __init__(self, folder: SpillFolder, path: Path, shape: tuple[int, int], dtype: Any, fill: Any) -> None:
        self.folder = folder  # the folder lives as long as its files are used
        self.path = path
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.fill = self.dtype.type(fill)
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                      "fortran_order": False, "shape": self.shape})
        self._offset = len(header.getvalue())
        self._written = 0  # rows below are in the file (written, or filled)
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        weakref.finalize(self, os.close, self._fd)
        os.pwrite(self._fd, header.getvalue(), 0)
        os.ftruncate(self._fd, self._offset + self.shape[0] * self._row_bytes)

    ndim = 2

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._read(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            return self._read(start, max(start, stop))[::step][:, cols] if step > 0 else np.asarray(self)[key]
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = np.where(rows < 0, rows + self.shape[0], rows).astype(np.int64)
        first, last = (int(rows.min()), int(rows.max()) + 1) if rows.size else (0, 0)
        if last - first <= max(4 * rows.size, _GAP_ROWS):  # nearby rows (a block of customers): read at once
            return self._read(first, last)[rows - first, cols]
        # Rows far apart: runs of nearby rows, each read in one piece.
        wanted, at = np.unique(rows, return_inverse=True)
        found = np.empty((len(wanted), self.shape[1]), dtype=self.dtype)
        breaks = np.flatnonzero(np.diff(wanted) > _GAP_ROWS) + 1
        for run_start, run_stop in zip(np.r_[0, breaks], np.r_[breaks, len(wanted)]):
            first, last = int(wanted[run_start]), int(wanted[run_stop - 1]) + 1
            found[run_start:run_stop] = self._read(first, last)[wanted[run_start:run_stop] - first]
        return found[at.reshape(rows.shape), cols]

    def __setitem__(self, key: Any, values: Any) -> None:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step != 1:
                raise ValueError("a list file is written by rows or by a slice of step 1")
            first, last = start, max(start, stop)
            local: Any = slice(0, last - first)
        else:
            rows = np.asarray(rows, dtype=np.int64)
            if rows.size == 0:
                return
            rows = np.where(rows < 0, rows + self.shape[0], rows)
            first, last = int(rows.min()), int(rows.max()) + 1
            local = rows - first
        if last <= first:
            return
        with self._lock:
            if first > self._written:
                self._fill(self._written, first)
            block = np.full((last - first, self.shape[1]), self.fill, dtype=self.dtype)
            before = min(last, self._written)
            if before > first:  # rows written already: kept where this write does not set them
                block[:before - first] = self._read_file(first, before)
            block[local, cols] = values
            self._write_file(first, block)
            self._written = max(self._written, last)

    def finish(self) -> None:
        """Write the fill into the rows never written, so the file holds every row."""
        with self._lock:
            self._fill(self._written, self.shape[0])
            self._written = self.shape[0]

    def save(self, target: Path) -> None:
        """This list as the ``.npy`` file ``target`` (mode 600): a hard link to the file, or a copy made by the kernel
        where the two are on different file systems; an existing ``target`` is replaced."""
        self.finish()
        target = Path(target)
        if target.exists():
            if target.samefile(self.path):
                return
            target.unlink()
        try:
            os.link(self.path, target)
        except OSError:
            shutil.copyfile(self.path, target)
            os.chmod(target, 0o600)

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``, rows not yet written as the fill."""
        out = self._read_file(start, stop)
        written = self._written
        if stop > written:
            out[max(start, written) - start:] = self.fill
        return out

    def _read_file(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((max(stop - start, 0), self.shape[1]), dtype=self.dtype)
        if out.size == 0:
            return out
        view, offset = memoryview(out).cast("B"), self._offset + start * self._row_bytes
        while len(view):
            got = os.preadv(self._fd, [view], offset)
            if got <= 0:
                raise OSError(f"{self.path}: the list file ends early")
            view, offset = view[got:], offset + got
        return out

    def _fill(self, start: int, stop: int) -> None:
        step = max(1, _FILL_BYTES // max(self._row_bytes, 1))
        chunk = np.full((min(step, max(stop - start, 0)), self.shape[1]), self.fill, dtype=self.dtype)
        for begin in range(start, stop, step):
            self._write_file(begin, chunk[:min(step, stop - begin)])

    def _write_file(self, start: int, block: np.ndarray) -> None:
        view, offset = memoryview(np.ascontiguousarray(block)).cast("B"), self._offset + start * self._row_bytes
        while len(view):
            done = os.pwrite(self._fd, view, offset)
            view, offset = view[done:], offset + done

    def __reduce__(self) -> Any:
        # A fit's spilled lists belong to the process that wrote them; another one reads them as an array.
        return np.asarray, (self._read(0, self.shape[0]),)
