"""Evaluation metrics against hand-computed cases, and the temporal split of the protocol."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.evaluate_recommender import coverage, ranking_metrics, temporal_split, window_start


def recs(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """Recommendation rows in order; ranks count up per customer."""
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id"])
    frame["rank"] = frame.groupby("customer_id").cumcount() + 1
    return frame


def target(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "product_id"])


def test_single_customer_by_hand():
    # Target {a, b, c}; recommended x, a, y, b: hits at ranks 2 and 4.
    r = recs([("u", "x"), ("u", "a"), ("u", "y"), ("u", "b")])
    t = target([("u", "a"), ("u", "b"), ("u", "c")])
    m = ranking_metrics(r, t, k_recall=20, k_ndcg=10, k_hit=10)
    assert m["recall@20"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@10"] == pytest.approx(dcg / idcg)
    assert m["hit@10"] == 1.0
    assert m["customers"] == 1


def test_recall_denominator_is_capped_at_k():
    # 5 target products, k = 2: two hits in the top 2 is a perfect recall.
    r = recs([("u", "a"), ("u", "b"), ("u", "x")])
    t = target([("u", p) for p in "abcde"])
    m = ranking_metrics(r, t, k_recall=2, k_ndcg=2, k_hit=1)
    assert m["recall@2"] == pytest.approx(1.0)
    assert m["ndcg@2"] == pytest.approx(1.0)
    assert m["hit@1"] == 1.0


def test_hits_beyond_the_cut_off_do_not_count():
    r = recs([("u", "x"), ("u", "y"), ("u", "a")])
    t = target([("u", "a")])
    m = ranking_metrics(r, t, k_recall=2, k_ndcg=2, k_hit=2)
    assert m["recall@2"] == 0.0 and m["ndcg@2"] == 0.0 and m["hit@2"] == 0.0


def test_customers_without_recommendations_count_as_misses_and_unseen_products_stay_in_the_target():
    # v gets nothing; u's target has a product no model has ever seen ("new"), which can only be missed.
    r = recs([("u", "a")])
    t = target([("u", "a"), ("u", "new"), ("v", "b")])
    m = ranking_metrics(r, t, k_recall=20, k_ndcg=10, k_hit=10)
    assert m["customers"] == 2
    assert m["recall@20"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["hit@10"] == pytest.approx(0.5)
    idcg_u = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 / idcg_u) / 2)


def test_recommendations_for_customers_outside_the_target_are_ignored():
    r = recs([("u", "a"), ("w", "a")])
    t = target([("u", "a")])
    assert ranking_metrics(r, t)["customers"] == 1
    assert ranking_metrics(r, t)["ndcg@10"] == pytest.approx(1.0)


def test_coverage_counts_distinct_products_in_the_top_k():
    r = recs([("u", "a"), ("u", "b"), ("v", "a"), ("v", "c")])
    assert coverage(r, catalogue_size=10, k=1) == pytest.approx(0.1)
    assert coverage(r, catalogue_size=10, k=2) == pytest.approx(0.3)


def split_tables() -> dict[str, pd.DataFrame]:
    rows = [
        ("a", "p1", "2024-01-01"), ("a", "p2", "2024-01-25"), ("a", "p1", "2024-02-05"), ("a", "p3", "2024-02-09"),
        ("b", "p1", "2024-01-02"),                      # nothing in the window: not a test customer
        ("c", "p4", "2024-02-03"),                      # only in the window: not a test customer
        ("d", "p2", "2024-01-10"), ("d", "p2", "2024-02-01"),
    ]
    tx = pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp"])
    tx["timestamp"] = pd.to_datetime(tx["timestamp"])
    tx["amount"] = 1.0
    tx["is_return"] = False
    ret = pd.DataFrame({"customer_id": ["b"], "product_id": ["p9"], "timestamp": [pd.Timestamp("2024-02-04")],
                        "amount": [-1.0], "is_return": [True]})  # a return is not a purchase
    return {"transactions": pd.concat([tx, ret], ignore_index=True)}


def test_window_is_the_last_calendar_days_of_the_data():
    start, end = window_start(split_tables(), 9)
    assert start == pd.Timestamp("2024-02-01") and end == pd.Timestamp("2024-02-10")


def test_split_customers_targets_and_new_to_customer_variant():
    tables = split_tables()
    start, end = window_start(tables, 9)
    split = temporal_split(tables, start, end)
    assert split.customers.tolist() == ["a", "d"]
    assert sorted(map(tuple, split.target.to_numpy().tolist())) == [("a", "p1"), ("a", "p3"), ("d", "p2")]
    assert sorted(map(tuple, split.new_target.to_numpy().tolist())) == [("a", "p3")]
    assert sorted(map(tuple, split.repeat_target.to_numpy().tolist())) == [("a", "p1"), ("d", "p2")]
    assert set(split.seen[split.seen["customer_id"] == "a"]["product_id"]) == {"p1", "p2"}


def test_bad_test_days_is_a_clear_error():
    from features.exceptions import DataError

    with pytest.raises(DataError, match="test_days"):
        window_start(split_tables(), 0)
    with pytest.raises(DataError, match="no customer bought both"):
        temporal_split(split_tables(), pd.Timestamp("2030-01-01"), pd.Timestamp("2030-02-01"))


def test_metrics_are_bounded_on_random_lists():
    rng = np.random.default_rng(0)
    r = recs([(f"u{u}", f"p{p}") for u in range(30) for p in rng.permutation(50)[:20]])
    t = target([(f"u{u}", f"p{p}") for u in range(30) for p in rng.choice(50, rng.integers(1, 30), replace=False)])
    m = ranking_metrics(r, t)
    for key in ("recall@20", "ndcg@10", "hit@10"):
        assert 0.0 <= m[key] <= 1.0
