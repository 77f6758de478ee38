"""The best columns of every row: best first, lower index first among equals, the same whatever the rows."""

from __future__ import annotations

import numpy as np
import pytest

from models.recommenders import signals


@pytest.mark.parametrize("n", [1, 7, 39, 40, 55])
def test_top_n_of_many_rows_is_each_rows_own_sorted_best(n):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, size=(150, 40)).astype(np.float32)  # many ties
    scores[5, :] = -np.inf
    scores[9, 3:] = -np.inf
    items, best = signals.top_n(scores, n)
    assert items.shape == best.shape == (150, n) and items.dtype == np.int64 and best.dtype == np.float32
    for r, row in enumerate(scores):
        finite = np.flatnonzero(np.isfinite(row))
        order = finite[np.lexsort((finite, -row[finite]))]  # best first, lower index among equals
        own, _ = signals.top_n(row[None, :], n)
        np.testing.assert_array_equal(items[r], own[0])  # the same selection as the row alone
        # Every kept score is one of the n best, in order; -1 / -inf pad rows with fewer finite scores.
        kept = items[r][items[r] >= 0]
        assert len(kept) == min(n, len(finite))
        np.testing.assert_array_equal(row[kept], row[order[:len(kept)]])
        assert np.all(np.diff(best[r][: len(kept)]) <= 0) and np.all(best[r][len(kept):] == -np.inf)


@pytest.mark.parametrize("n", [1, 5, 30])
def test_top_with_merges_the_best_not_bought_with_the_bought_among_the_best_overall(n):
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 8, size=(60, 30)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    bought = rng.random(scores.shape) < 0.2
    rows, cols = np.nonzero(bought)

    def best(row):  # best first, lower index among equals
        finite = np.flatnonzero(np.isfinite(row))
        return finite[np.lexsort((finite, -row[finite]))][:n]

    masked = scores.copy()
    masked[rows, cols] = -np.inf
    best_items = np.full((60, n), -1, dtype=np.int64)
    best_scores = np.full((60, n), -np.inf, dtype=np.float32)
    for r, row in enumerate(masked):
        order = best(row)
        best_items[r, :len(order)], best_scores[r, :len(order)] = order, row[order]
    got_rows, got_cols, got_scores, extra = signals.top_with(best_items, best_scores, rows, cols,
                                                             scores[rows, cols], n)
    assert np.all(np.diff(got_rows) >= 0)
    for r, row in enumerate(scores):
        # The union of the best overall and the best not bought, merged best first (lower index among equals).
        union = np.union1d(best(row), best(masked[r]))
        union = union[np.lexsort((union, -row[union]))]
        mine = got_rows == r
        np.testing.assert_array_equal(got_cols[mine], union)
        np.testing.assert_array_equal(got_scores[mine], row[union])
        np.testing.assert_array_equal(extra[mine], bought[r, union])
