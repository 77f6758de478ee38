"""Point-in-time customer features, labels and backtest frames: hand-computed values and no leakage."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.customer import customer_features
from features.labels import backtest_cutoffs, churn_labels
from features.pipeline import feature_frame, training_frames
from tests.features.fixtures import CUTOFF, tiny_tables


@pytest.fixture
def feats():
    return customer_features(tiny_tables(), CUTOFF).set_index("customer_id")


def test_population_is_customers_who_bought_before_the_cutoff(feats):
    # c2's order at exactly the cutoff is not "before"; c3 only buys later; c5 never buys.
    assert feats.index.tolist() == ["c1", "c2", "c4"]
    everyone = customer_features(tiny_tables(), CUTOFF, population="all")
    assert everyone["customer_id"].tolist() == ["c1", "c2", "c4", "c5"]  # c3 signs up after the cutoff
    assert everyone.set_index("customer_id").loc["c5", "frequency"] == 0


def test_rfm_and_gaps_by_hand(feats):
    c1 = feats.loc["c1"]
    assert c1["frequency"] == 3 and c1["purchase_days"] == 3
    assert c1["recency_days"] == 30 and c1["tenure_days"] == pytest.approx(91 - 10 / 24)
    assert c1["monetary_total"] == 70 and c1["monetary_avg_order"] == pytest.approx(70 / 3)
    assert c1["items_per_order"] == pytest.approx(5 / 3) and c1["lines_per_order"] == pytest.approx(4 / 3)
    assert c1["max_order_value"] == 30
    # Purchase days Jan 1, Feb 1, Mar 2 (2024 is a leap year): gaps 31 and 30.
    assert c1["gap_mean_days"] == 30.5 and c1["gap_median_days"] == 30.5 and c1["gap_std_days"] == 0.5
    assert c1["gap_last_days"] == 30 and c1["overdue_ratio"] == pytest.approx(30 / 30.5)
    c2 = feats.loc["c2"]
    assert c2["recency_days"] == pytest.approx(1 / 24) and c2["frequency"] == 1
    assert np.isnan(c2["gap_mean_days"]) and np.isnan(c2["overdue_ratio"])


def test_windows_and_trends_by_hand(feats):
    c1 = feats.loc["c1"]
    assert c1["orders_30d"] == 0  # Mar 2 is exactly 30 days back: outside the 30-day window
    assert c1["orders_90d"] == 2 and c1["spend_90d"] == 40
    assert c1["orders_trend_90d"] == pytest.approx(1 / 3)  # 2 orders vs 1 in the 90 days before
    assert c1["spend_trend_90d"] == pytest.approx(10 / 70)
    assert c1["orders_365d"] == 3 and c1["orders_trend_365d"] == 1
    assert np.isnan(feats.loc["c4", "orders_trend_30d"])  # no activity in either window


def test_products_channels_returns_discounts_by_hand(feats):
    c1 = feats.loc["c1"]
    assert c1["distinct_products"] == 3 and c1["repeat_product_share"] == 0.25
    assert c1["distinct_categories"] == 2 and c1["top_category_share"] == 0.75
    assert c1["share_store"] == pytest.approx(1 / 3) and c1["share_online"] == pytest.approx(2 / 3)
    assert c1["share_app"] == 0 and feats.loc["c2", "share_app"] == 1
    assert c1["return_lines"] == 1 and c1["return_amount_share"] == pytest.approx(30 / 70)
    # p2 was sold 2 x 12 for 20; p1 at list; p3 has no list price.
    assert c1["discount_line_share"] == pytest.approx(1 / 3) and c1["discount_depth"] == pytest.approx(4 / 44)


def test_events_feedback_and_profile_by_hand(feats):
    c1 = feats.loc["c1"]
    assert c1["views_30d"] == 1 and c1["carts_30d"] == 1 and c1["events_30d"] == 2  # the Apr 2 view is later
    assert c1["days_since_last_event"] == 2
    assert c1["feedback_count"] == 2 and c1["satisfaction_mean"] == 3 and c1["satisfaction_last"] == 2
    assert c1["complaints_90d"] == 1 and c1["days_since_last_complaint"] == 12
    assert feats.loc["c2", "feedback_count"] == 0  # c2's complaint comes after the cutoff
    assert feats.loc["c2", "wishlists_90d"] == 0  # Dec 20 is more than 90 days back
    assert c1["days_since_signup"] == 122 and c1["age"] == 34
    assert c1["member_tier"] == "gold" and c1["region"] == "north"
    assert bool(c1["consent_profiling"]) and not bool(feats.loc["c2", "consent_profiling"])


def test_missing_optional_tables_drop_their_features_without_crashing():
    tables = tiny_tables()
    only_tx = {"transactions": tables["transactions"].drop(columns=["product_id", "channel", "order_id"])}
    frame = customer_features(only_tx, CUTOFF).set_index("customer_id")
    assert frame.loc["c1", "frequency"] == 3  # calendar days stand in for orders
    for absent in ("distinct_products", "share_store", "views_30d", "complaints_90d", "member_tier", "discount_depth"):
        assert absent not in frame.columns
    full = customer_features(tables, CUTOFF).set_index("customer_id")
    shared = [c for c in frame.columns if c in full.columns and c not in ("frequency", "items_per_order",
                                                                       "lines_per_order", "monetary_avg_order")]
    pd.testing.assert_frame_equal(frame[shared], full[shared])


def test_labels_and_frames():
    tables = tiny_tables()
    labels = churn_labels(tables, ["c1", "c2", "c4"], CUTOFF, 30).set_index("customer_id")
    assert labels["churned"].tolist() == [0, 0, 1]
    assert labels.loc["c1", "future_orders"] == 1 and labels.loc["c2", "future_spend"] == 10
    frame = feature_frame(tables, CUTOFF, horizon_days=30)
    assert frame["churned"].tolist() == [0, 0, 1]
    # The data ends on May 1, so a 60-day horizon after the cutoff cannot be labelled.
    assert "churned" not in feature_frame(tables, CUTOFF, horizon_days=60).columns
    # The last data day is May 1: the latest cutoff whose 30-day horizon (Apr 2 .. May 1) is covered is Apr 2.
    cutoffs = backtest_cutoffs(tables, horizon_days=30, n=3, step_days=14)
    assert cutoffs == [pd.Timestamp("2024-03-05"), pd.Timestamp("2024-03-19"), pd.Timestamp("2024-04-02")]
    stacked = training_frames(tables, horizon_days=30, cutoffs=cutoffs)
    assert stacked.groupby("cutoff").size().tolist() == [2, 2, 3]  # c2 first buys on Mar 31
    assert stacked["churned"].notna().all()


AFTER = st.integers(min_value=0, max_value=60 * 24)  # minutes after the cutoff, up to 60 days


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_leakage_data_on_or_after_the_cutoff_changes_nothing(data):
    """Adding, changing or deleting any row at or after the cutoff leaves every feature unchanged."""
    base = tiny_tables()
    expected = customer_features(base, CUTOFF)
    tables = {k: v.copy() for k, v in base.items()}
    for name in ("transactions", "events", "feedback"):
        frame = tables[name]
        later = frame["timestamp"] >= CUTOFF
        action = data.draw(st.sampled_from(["add", "change", "delete"]), label=f"{name} action")
        if action == "delete":
            frame = frame[~later]
        elif action == "change" and later.any():
            frame = frame.copy()
            idx = frame.index[later]
            frame.loc[idx, "customer_id"] = data.draw(st.sampled_from(["c1", "c2", "c4", "c9"]), label="who")
            if "amount" in frame.columns:
                frame.loc[idx, "amount"] = data.draw(st.floats(-100, 1000, allow_nan=False), label="amount")
        else:
            n = data.draw(st.integers(1, 5), label="rows")
            new = frame.sample(n, replace=True, random_state=data.draw(st.integers(0, 99))).copy()
            new["timestamp"] = [CUTOFF + pd.Timedelta(minutes=data.draw(AFTER, label="t")) for _ in range(n)]
            new["customer_id"] = [data.draw(st.sampled_from(["c1", "c2", "c4", "c9"]), label="c") for _ in range(n)]
            frame = pd.concat([frame, new], ignore_index=True)
        tables[name] = frame
    pd.testing.assert_frame_equal(customer_features(tables, CUTOFF), expected)
