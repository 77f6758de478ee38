"""TIFU-KNN worked by hand on a customer whose baskets are easy to follow."""

from __future__ import annotations

import numpy as np
import pytest

from models.recommenders import Filters, TifuKNN
from tests.models.recommenders.test_cold_start import CUTOFF


def test_decayed_grouped_frequency_of_one_customer(handmade):
    # c1's baskets, newest first: day 61 {p1}, day 31 {p1}, day 1 {p1, p2}. Groups of 2 counted back from the
    # newest: {61, 31} and {1}. Weights: r_b ** position-in-group / group size x r_g ** group / groups.
    model = TifuKNN(group_size=2, within_decay=0.5, group_decay=0.5, neighbours=0, alpha=1.0).fit(handmade,
                                                                                               cutoff=CUTOFF)
    row = model.vectors_[model.customers_.to_internal(["c1"])[0]].toarray().ravel()
    p1, p2 = model.catalog_.products.to_internal(["p1", "p2"])
    day61, day31, day1 = 1 / 2 / 2, 0.5 / 2 / 2, 1 / 1 * 0.5 / 2
    assert row[p1] == pytest.approx(day61 + day31 + day1)
    assert row[p2] == pytest.approx(day1)
    out = model.recommend(["c1"], n=2, filters=Filters(in_stock_only=False))
    assert out["product_id"].tolist() == ["p1", "p2"]
    assert set(out["reason"]) == {"you buy this regularly"}


def test_neighbours_bring_in_what_similar_customers_buy(handmade):
    # c2 shares p1 and p2 with c1 and p3 with c4; alone (alpha 1) c2 never gets p4 or p5, with neighbours it may.
    alone = TifuKNN(neighbours=0, alpha=1.0).fit(handmade, cutoff=CUTOFF)
    blended = TifuKNN(neighbours=2, alpha=0.5).fit(handmade, cutoff=CUTOFF)
    user = alone.customers_.to_internal(["c2"])
    own = alone._score(user)[0]
    mixed = blended._score(user)[0]
    assert np.isfinite(mixed).sum() >= np.isfinite(own).sum()
    assert np.isfinite(own).sum() == 3  # p1, p2, p3
    # alpha x own vector + (1 - alpha) x the mean vector of the two most similar customers (cosine).
    vectors = blended.vectors_.toarray()
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit[user[0]]
    similarity[user[0]] = -np.inf
    nearest = np.argsort(-similarity, kind="stable")[:2]
    expected = 0.5 * vectors[user[0]] + 0.5 * vectors[nearest].mean(axis=0)
    assert np.allclose(np.where(np.isfinite(mixed), mixed, 0.0), expected, atol=1e-6)


def test_neighbours_come_from_a_bounded_pool_of_customers(synthetic, cutoff):
    # Beyond `neighbour_pool` customers, neighbours are searched among a fixed random share of them only (the
    # cost of scoring one customer stops growing with the base): the k most similar of the pool, cosine > 0,
    # the lower pool place first among equal similarities. Below it, among everyone, as before.
    everyone = TifuKNN(neighbours=5, alpha=0.5).fit(synthetic, cutoff=cutoff)
    pooled = TifuKNN(neighbours=5, alpha=0.5, neighbour_pool=60).fit(synthetic, cutoff=cutoff)
    n_users = everyone.vectors_.shape[0]
    assert n_users > 60 and np.array_equal(everyone.pool_, np.arange(n_users))
    assert len(pooled.pool_) == 60 and len(np.unique(pooled.pool_)) == 60
    assert np.array_equal(pooled.pool_, TifuKNN(neighbours=5, neighbour_pool=60).fit(synthetic, cutoff=cutoff).pool_)
    users = np.concatenate([np.arange(40), pooled.pool_[:5]])
    mean = (pooled._neighbour_mean(users, 5) @ pooled.vectors_).toarray()
    vectors = pooled.vectors_.toarray().astype(np.float64)
    pool = pooled.pool_
    more_than_k = 0
    for row, user in enumerate(users):
        similarity = (pooled.unit_[[user]] @ pooled.unit_[pool].T).toarray().ravel()
        similarity[pool == user] = 0.0  # not their own neighbour
        more_than_k += (similarity > 0).sum() > 5
        order = np.argsort(-similarity, kind="stable")[:5]
        chosen = pool[order[similarity[order] > 0]]
        expected = vectors[chosen].mean(axis=0) if len(chosen) else np.zeros(vectors.shape[1])
        np.testing.assert_allclose(mean[row], expected, rtol=1e-5, atol=1e-7)
    assert more_than_k > 10  # the choice among more candidates than neighbours is exercised


def test_copies_sharing_a_fit_score_as_separate_fits(synthetic, cutoff):
    # A copy with another alpha reads the neighbours its original found for the same block; the scores are those
    # of a model fitted on its own.
    fitted = TifuKNN(neighbours=10, alpha=0.7).fit(synthetic, cutoff=cutoff)
    other = fitted.with_params(alpha=0.0)
    alone = TifuKNN(neighbours=10, alpha=0.0).fit(synthetic, cutoff=cutoff)
    users = np.arange(0, 50)
    fitted._score(users)
    assert np.array_equal(other._score(users), alone._score(users))
    assert np.array_equal(fitted._score(users), TifuKNN(neighbours=10, alpha=0.7).fit(synthetic, cutoff=cutoff)
                          ._score(users))


def test_the_sparse_search_reads_unsorted_rows_as_sorted_ones():
    # A sparse product leaves each row's columns unsorted; the search takes the k largest positive similarities,
    # the lower column first among equals, leaving out the customer's own place, and lists columns in order.
    import scipy.sparse as sp

    from models.recommenders.tifu_knn import _nearest_sparse

    rng = np.random.default_rng(5)
    dense = rng.choice([0.0, 0.2, 0.5, 0.5, 0.9, -0.1], size=(30, 40))  # ties and non-positive values
    own = rng.integers(-1, 40, size=30)
    k = 4
    sorted_rows = sp.csr_matrix(dense)
    shuffled = sorted_rows.copy()
    for row in range(30):  # reverse each row's storage order
        lo, hi = shuffled.indptr[row], shuffled.indptr[row + 1]
        shuffled.indices[lo:hi] = shuffled.indices[lo:hi][::-1].copy()
        shuffled.data[lo:hi] = shuffled.data[lo:hi][::-1].copy()
    assert not shuffled.has_sorted_indices or not np.array_equal(shuffled.indices, sorted_rows.indices)
    rows, cols = _nearest_sparse(shuffled, own, k)
    for row in range(30):
        similarity = dense[row].copy()
        if own[row] >= 0:
            similarity[own[row]] = 0.0
        order = np.argsort(-similarity, kind="stable")[:k]
        expected = np.sort(order[similarity[order] > 0])
        assert np.array_equal(cols[rows == row], expected)
    assert np.array_equal((rows, cols)[1], _nearest_sparse(sorted_rows, own, k)[1])
