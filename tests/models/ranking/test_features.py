"""The reranker's feature matrix: assembled in row blocks, the values of a plain column stack."""

from __future__ import annotations

import numpy as np

from models.ranking import features
from models.ranking.features import stack_columns


def test_stacked_columns_are_those_of_numpy_column_stack(monkeypatch):
    monkeypatch.setattr(features, "_STACK_ROWS", 7)  # several row blocks, the last one short
    rng = np.random.default_rng(0)
    rows = 30
    single = rng.random(rows)  # float64: converted as column_stack converts
    several = rng.random((rows, 3)).astype(np.float32)
    table = rng.random((5, 4)).astype(np.float32)
    index = rng.integers(0, 5, size=rows)
    with_nan = np.where(rng.random(rows) < 0.3, np.nan, rng.random(rows)).astype(np.float32)
    out = stack_columns([single, several, (table, index), with_nan], rows)
    expected = np.column_stack([single, several, table[index], with_nan]).astype(np.float32)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)
    assert stack_columns([several], 0).shape == (0, 3)
