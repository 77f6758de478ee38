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
