"""A customer's home store in the profile: the store of most of their orders before the cutoff, and its share."""

from __future__ import annotations

import pandas as pd
import pytest

from training.export import home_stores, profiles


def _log() -> pd.DataFrame:
    rows = [  # customer, order, day, channel, store, is_return
        ("a", "o1", 1, "store", "S1", False), ("a", "o1", 1, "store", "S1", False),  # one order, two lines
        ("a", "o2", 2, "store", "S2", False), ("a", "o3", 3, "store", "S2", False),
        ("a", "o4", 4, "online", None, False), ("a", "o5", 5, "store", "S1", True),  # a return is no purchase
        ("b", "o6", 1, "store", "S1", False), ("b", "o7", 2, "store", "S3", False),  # a tie: the latest wins
        ("c", "o8", 1, "app", None, False),  # never in a store
        ("d", "o9", 40, "store", "S1", False),  # after the cutoff
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "day", "channel", "store_id", "is_return"])
    frame["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame.pop("day"), unit="D")
    frame["amount"] = 1.0
    return frame


def test_home_store_is_the_store_of_most_orders_with_its_share_of_all_orders():
    homes = home_stores(_log(), pd.Timestamp("2024-02-01")).set_index("customer_id")
    assert homes.loc["a", "home_store"] == "S2" and homes.loc["a", "home_store_share"] == pytest.approx(0.5)
    assert homes.loc["b", "home_store"] == "S3" and homes.loc["b", "home_store_share"] == pytest.approx(0.5)
    assert set(homes.index) == {"a", "b"}


def test_profiles_carry_the_home_store_and_a_log_without_stores_none():
    features = pd.DataFrame({"customer_id": ["a", "c"], "frequency": [4, 1]})
    out = profiles(features, pd.Timestamp("2024-02-01"), _log()).set_index("customer_id")
    assert out.loc["a", "home_store"] == "S2" and pd.isna(out.loc["c", "home_store"])
    assert "home_store" not in profiles(features, pd.Timestamp("2024-02-01"), _log().drop(columns="store_id"))
    assert home_stores(None, pd.Timestamp("2024-02-01")) is None


def test_home_stores_count_each_order_once_as_dropping_duplicate_orders_does():
    """Order ids shared by customers, lines of one order in several stores, missing order ids and stores, returns:
    the same homes and shares as the log with duplicate (customer, order) rows dropped, first kept."""
    import numpy as np

    rng = np.random.default_rng(5)
    n = 3000
    log = pd.DataFrame({
        "customer_id": pd.Series(rng.choice([f"c{i}" for i in range(60)], n), dtype="str"),
        "order_id": pd.Series(np.where(rng.random(n) < 0.05, None, rng.choice([f"o{i}" for i in range(400)], n)),
                              dtype="str"),
        "store_id": pd.Series(np.where(rng.random(n) < 0.2, None, rng.choice(["S1", "S2", "S3"], n)), dtype="str"),
        "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, n), unit="D"),
        "is_return": rng.random(n) < 0.1, "amount": 1.0})
    cutoff = pd.Timestamp("2024-03-01")
    tx = log[(log["timestamp"] < cutoff) & ~log["is_return"]].drop_duplicates(["customer_id", "order_id"])
    expected = home_stores(tx.drop(columns="order_id"), cutoff)  # nothing left to drop
    found = home_stores(log, cutoff)
    pd.testing.assert_frame_equal(found.reset_index(drop=True), expected.reset_index(drop=True))
    assert len(found) == 60
