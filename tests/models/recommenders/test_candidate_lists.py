"""A customer's candidate lists: one partition of the catalogue gives the lists two partitions gave."""

from __future__ import annotations

import numpy as np

from models.recommenders import ALS, signals


def _two_partitions(model, users):
    """The lists as they were worked out before: the best overall and the best not bought, each partitioned from
    the whole catalogue, merged."""
    depth = model.params.serve_depth
    scores = np.asarray(model._score(users), dtype=np.float32)
    all_items, all_scores = signals.top_n(scores, depth)
    bought = model.bought_[users].tocoo()
    scores[bought.row, bought.col] = -np.inf
    new_items, new_scores = signals.top_n(scores, depth)
    lists, _, _ = model._merged(users, np.hstack([all_items, new_items]), np.hstack([all_scores, new_scores]))
    return lists


def test_candidate_lists_are_those_of_two_partitions(synthetic, cutoff):
    model = ALS(factors=8, iterations=3, serve_depth=15).fit(synthetic, cutoff=cutoff)  # continuous scores
    users = np.flatnonzero(model.active_)
    assert (np.diff(model.bought_[users].indptr) > 0).mean() > 0.9  # most lists hold bought products
    got, want = model.candidate_lists(users, explain=False), _two_partitions(model, users)
    for field in ("offsets", "items", "scores", "bought"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))


def _merged_by_one_sort(model, users, items, scores):
    """Merged lists as one lexsort of every place of every row (rows, score descending, product, column) finds
    them, bought flags by set membership: what :meth:`Recommender._merged` must keep giving."""
    width = items.shape[1]
    rows = np.repeat(np.arange(len(users)), width)
    cols = np.tile(np.arange(width), len(users))
    flat, flat_scores = items.ravel().astype(np.int64), scores.ravel().astype(np.float32)
    valid = flat >= 0
    rows, cols, flat, flat_scores = rows[valid], cols[valid], flat[valid], flat_scores[valid]
    order = np.lexsort((cols, flat, -flat_scores, rows))
    rows, cols, flat, flat_scores = rows[order], cols[order], flat[order], flat_scores[order]
    first = np.r_[True, (rows[1:] != rows[:-1]) | (flat[1:] != flat[:-1])]
    rows, cols, flat, flat_scores = rows[first], cols[first], flat[first], flat_scores[first]
    bought = model.bought_[users].tocoo()
    known = set(zip(bought.row.tolist(), bought.col.tolist()))
    flags = np.array([(r, i) in known for r, i in zip(rows.tolist(), flat.tolist())], dtype=bool)
    return rows, cols, flat, flat_scores, flags


def _places(model, users, width, seed):
    """Rows of places as the two-stage model's lists hold them: a product in two lists with one score, ties,
    empty places, -0.0 beside 0.0, infinite and NaN scores."""
    rng = np.random.default_rng(seed)
    size = model.catalog_.size
    items = rng.integers(0, size, (len(users), width))
    scores = rng.choice(np.array([0.5, 0.25, 0.0, -0.0, -1.0, np.inf, -np.inf, np.nan], dtype=np.float32),
                        (len(users), width))
    scores[:, ::3] = rng.normal(size=(len(users), len(range(0, width, 3)))).astype(np.float32)
    half = width // 2
    items[:, half:half + half // 2] = items[:, :half // 2]  # the same product in the second list ...
    scores[:, half:half + half // 2] = scores[:, :half // 2]  # ... with its score
    items[rng.random(items.shape) < 0.2] = -1
    return items, scores


def test_merged_lists_are_those_of_one_sort_of_every_place(synthetic, cutoff):
    model = ALS(factors=8, iterations=3, serve_depth=15).fit(synthetic, cutoff=cutoff)
    users = np.flatnonzero(model.active_)
    bought = model.bought_[users].tocoo()
    for seed in range(3):
        items, scores = _places(model, users, 30, seed)
        items[bought.row[:50], 0] = bought.col[:50]  # some places hold a bought product
        lists, rows, cols = model._merged(users, items, scores)
        want_rows, want_cols, want_items, want_scores, want_flags = _merged_by_one_sort(model, users, items, scores)
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(cols, want_cols)
        np.testing.assert_array_equal(lists.items, want_items)
        np.testing.assert_array_equal(lists.scores.view(np.uint32), want_scores.view(np.uint32))
        np.testing.assert_array_equal(lists.bought, want_flags)
        assert want_flags.any()
        np.testing.assert_array_equal(lists.offsets, np.r_[0, np.cumsum(np.bincount(want_rows,
                                                                                    minlength=len(users)))])


def test_row_order_is_the_same_past_32_bits_of_product_and_column():
    from models.recommenders.base import _row_order

    rng = np.random.default_rng(5)
    items = rng.integers(-1, 40, (200, 25))
    scores = rng.choice(np.array([1.5, 0.0, -0.0, np.nan, -np.inf], dtype=np.float32), items.shape)
    keyed, sorted_ = _row_order(items, scores, 40), _row_order(items, scores, 2 ** 30)  # one key; a lexsort
    valid = np.take_along_axis(items, keyed, axis=1) >= 0
    np.testing.assert_array_equal(np.where(valid, keyed, -1), np.where(valid, sorted_, -1))
