"""Lists written to files block by block: indexed like the arrays they hold, never mapped into memory."""

from __future__ import annotations

import gc
import io
import os
import stat

import numpy as np
import pytest

from models.recommenders import list_files
from models.recommenders.list_files import SpillFolder


def _npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


@pytest.mark.parametrize("dtype,fill", [(np.int32, -1), (np.float32, np.nan), (np.int8, -1), (np.float32, 0)])
def test_a_list_file_is_read_and_written_as_the_array_it_holds(dtype, fill, monkeypatch):
    monkeypatch.setattr(list_files, "_GAP_ROWS", 3)  # rows read in several runs
    monkeypatch.setattr(list_files, "_FILL_BYTES", 40)  # skipped rows filled a few at a time
    rng = np.random.default_rng(0)
    rows, width = 97, 7
    expected = np.full((rows, width), fill, dtype=dtype)
    actual = SpillFolder().field("all_items", (rows, width), dtype, fill)

    def values(shape):
        return rng.integers(-5, 1000, size=shape).astype(dtype)

    writes = [
        lambda: (np.sort(rng.choice(np.arange(10, 30), 8, replace=False)), None),  # rows, some skipped
        lambda: (slice(40, 52), None),  # a block of rows, after a gap
        lambda: (np.sort(rng.choice(np.arange(0, 60), 10, replace=False)), "pairs"),  # back over written rows
        lambda: (np.sort(rng.choice(np.arange(60, 90), 12, replace=False)), "pairs"),  # beyond, as _keep_top does
        lambda: (slice(5, 15), 3),  # one column of rows
        lambda: (rng.choice(np.arange(rows), 6, replace=False), None),  # any order
    ]
    for write in writes:
        key, kind = write()
        if kind == "pairs":
            cols = rng.integers(0, width, size=len(key))
            value = values(len(key))
            expected[key, cols] = value
            actual[key, cols] = value
        elif kind is None:
            shape = expected[key].shape
            value = values(shape)
            expected[key] = value
            actual[key] = value
        else:
            value = values(expected[key, kind].shape)
            expected[key, kind] = value
            actual[key, kind] = value
        picked = rng.integers(0, rows, size=25)
        cols = rng.integers(0, width, size=25)
        np.testing.assert_array_equal(actual[picked], expected[picked])
        np.testing.assert_array_equal(actual[picked, cols], expected[picked, cols])
        np.testing.assert_array_equal(actual[picked.reshape(5, 5)], expected[picked.reshape(5, 5)])
        np.testing.assert_array_equal(actual[3:80:2], expected[3:80:2])
        far = np.array([90, 2, 50, 2, 51, 95])  # rows far apart, read in runs
        np.testing.assert_array_equal(actual[far], expected[far])
        np.testing.assert_array_equal(actual[far, cols[:6]], expected[far, cols[:6]])
        mask = rng.random(rows) < 0.3
        np.testing.assert_array_equal(actual[mask], expected[mask])
        np.testing.assert_array_equal(actual[np.array([], dtype=np.int64)], expected[np.array([], dtype=np.int64)])
        np.testing.assert_array_equal(np.asarray(actual), expected)  # the rows not written read as the fill
    actual.finish()
    with open(actual.path, "rb") as f:
        assert f.read() == _npy_bytes(expected)  # the file np.save writes, byte for byte
    np.testing.assert_array_equal(np.load(actual.path, mmap_mode="r"), expected)


def test_rows_never_written_are_filled_on_finish():
    field = SpillFolder().field("new_source", (10, 3), np.int8, -1)
    field[np.array([2, 4]), np.array([0, 1])] = np.array([5, 6], dtype=np.int8)
    field.finish()
    expected = np.full((10, 3), -1, dtype=np.int8)
    expected[2, 0], expected[4, 1] = 5, 6
    np.testing.assert_array_equal(np.load(field.path), expected)
    empty = SpillFolder().field("all_items", (0, 3), np.int32, -1)
    empty.finish()
    assert np.load(empty.path).shape == (0, 3)


def test_the_folder_is_private_and_goes_with_its_lists():
    folder = SpillFolder()
    field = folder.field("all_items", (4, 2), np.int32, -1)
    path = folder.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(field.path).st_mode) == 0o600
    del folder  # the lists keep their folder
    gc.collect()
    assert path.is_dir()
    del field
    gc.collect()
    assert not path.exists()


def test_saved_lists_are_the_fits_files_and_outlive_them(tmp_path):
    field = SpillFolder().field("all_score", (6, 2), np.float32, 0)
    field[np.array([1, 3])] = np.ones((2, 2), dtype=np.float32)
    target = tmp_path / "all_score.npy"
    np.save(target, np.zeros(3))  # a stale file of another model
    field.save(target)
    assert target.samefile(field.path)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    field.save(target)  # saved twice: nothing to do
    spill = field.folder.path
    expected = np.asarray(field)
    del field
    gc.collect()
    assert not spill.exists()
    np.testing.assert_array_equal(np.load(target), expected)


def test_a_list_file_is_never_mapped_into_the_process():
    """Pages of a memory map count as the process's resident memory until the kernel evicts them; a fit's lists
    (gigabytes) are read and written with plain file reads and writes instead."""
    field = SpillFolder().field("all_items", (2000, 100), np.int32, -1)
    field[np.arange(0, 2000, 3)] = np.arange(667 * 100, dtype=np.int32).reshape(667, 100)
    field[np.arange(5, 50), np.arange(45) % 100] = 7
    _ = field[np.arange(0, 2000, 7)], field[5:1500], np.asarray(field)
    field.finish()
    with open("/proc/self/maps") as maps:
        assert str(field.path) not in maps.read()


def test_a_pickled_list_file_is_the_array_it_holds():
    import pickle

    field = SpillFolder().field("all_items", (5, 2), np.int32, -1)
    field[np.array([1])] = np.array([[3, 4]], dtype=np.int32)
    copy = pickle.loads(pickle.dumps(field))
    assert isinstance(copy, np.ndarray)
    np.testing.assert_array_equal(copy, np.asarray(field))
