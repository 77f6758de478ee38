"""The reranker's rhythm features worked out by hand: baskets counted back from a customer's newest."""

from __future__ import annotations

import numpy as np
import pytest

from models.recommenders import signals  # the package first: its two-stage model imports the ranking features
from models.recommenders.data import TrainingData
from models.ranking.rhythm import RhythmFeatures  # noqa: I001
from tests.models.recommenders.test_cold_start import CUTOFF


def test_rhythm_of_one_customer_in_their_own_baskets(handmade):
    # c1's baskets, newest first: day 61 {p1}, day 31 {p1}, day 1 {p1, p2}; the cutoff is day 70, so c1's first
    # purchase is 69 days old.
    data = TrainingData.build(handmade, CUTOFF)
    history = signals.pair_history(data.log, data.n_items)
    rhythm = RhythmFeatures(data, history, horizon_days=30.0)
    c1 = data.customers.to_internal(["c1"])[0]
    p1, p2, p3 = data.products.to_internal(["p1", "p2", "p3"])
    users = np.array([c1, c1, c1])
    items = np.array([p1, p2, p3])
    keys = history.key(data.n_items)
    wanted = users.astype(np.int64) * data.n_items + items
    where = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    out = rhythm.build(users, where, keys[where] == wanted)
    assert out["r_baskets_since"][:2].tolist() == [0.0, 2.0] and np.isnan(out["r_baskets_since"][2])
    assert out["r_last_3_share"].tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    assert out["r_basket_share"].tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    # p1 on 3 days in the 69 since c1 first bought it, over a 30-day window.
    assert out["r_expected_pair"].tolist() == pytest.approx([3 / 69 * 30, 1 / 69 * 30, 0.0])
    # c1 shops 3 times in 69 days: the share of their baskets with the product times the baskets in 30 days.
    assert out["r_expected_pace"].tolist() == pytest.approx([3 / 69 * 30, 1 / 3 * 3 / 69 * 30, 0.0])


def test_baskets_are_numbered_back_from_each_customers_newest(handmade):
    data = TrainingData.build(handmade, CUTOFF)
    baskets = signals.basket_positions(data.log)
    c2 = data.customers.to_internal(["c2"])[0]
    lines = np.flatnonzero(data.log.user == c2)  # day 5 (two lines, one basket), day 40
    assert baskets.back[baskets.of_line[lines]].tolist() == [1, 1, 0]
    assert baskets.count[baskets.of_line[lines]].tolist() == [2, 2, 2]
