"""The repeat-consumption model: its inputs know only the past of each reference point, and it learns the rhythm."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.recommenders import Recanet
from models.recommenders.recanet import _pairs_at
from training.evaluate_recommender import ranking_metrics


def test_inputs_read_only_the_purchases_before_the_reference_and_the_label_the_window_after_it():
    # One pair bought 100, 70, 40 and 10 days before the cutoff (2 units the last time); another once, 50 days ago.
    days = pd.DataFrame({"user": [0, 0, 0, 0, 1], "item": [3, 3, 3, 3, 2], "day": [0, 30, 60, 90, 50],
                         "age": [100.0, 70.0, 40.0, 10.0, 50.0], "units": [1.0, 1.0, 1.0, 2.0, 1.0]})
    past = _pairs_at(days, offset=30.0, history=4, window=30.0)
    # 30 days back: both pairs known, the first with three purchase days, bought again 10 days before the cutoff.
    assert past["user"].tolist() == [0, 1] and past["item"].tolist() == [3, 2]
    assert past["label"].tolist() == [1.0, 0.0]
    steps = past["steps"][0]
    assert steps[:, 0].tolist() == [0.0, 1.0, 1.0, 1.0]  # the latest last, padded in front
    assert np.allclose(np.expm1(steps[1:, 1]), [70.0, 40.0, 10.0])  # days before the reference point
    assert np.allclose(np.expm1(steps[1:, 2]), [0.0, 30.0, 30.0])  # gap to the purchase before
    now = _pairs_at(days, offset=0.0, history=2, window=None)
    assert "label" not in now
    assert np.allclose(np.expm1(now["steps"][0][:, 1]), [40.0, 10.0])  # the latest two of four
    assert np.allclose(np.expm1(now["steps"][0][:, 3]), [1.0, 2.0])


def test_it_ranks_the_products_customers_buy_again_above_what_they_bought_last(synthetic, cutoff):
    # Beauty regimens come back on their cycle: a product bought yesterday is not due, one bought a cycle ago is.
    # Ordered by the network, the customers' own products bought again in the next 90 days rank better than
    # ordered by how recently they were bought.
    horizon = 90.0
    model = Recanet(window_days=horizon, epochs=4, random_state=1).fit(synthetic, cutoff=cutoff)
    tx = synthetic["transactions"]
    after = tx[(tx["timestamp"] >= cutoff) & (tx["timestamp"] < cutoff + pd.Timedelta(days=horizon))]
    before = tx[tx["timestamp"] < cutoff]
    pairs = ["customer_id", "product_id"]
    target = after[pairs].drop_duplicates().merge(before[pairs].drop_duplicates())
    customers = target["customer_id"].unique()
    scores = model._score(model.customers_.to_internal(customers))
    products = model.catalog_.products.external_ids
    ranked = []
    for row, customer in enumerate(customers):
        own = np.flatnonzero(np.isfinite(scores[row]))
        order = own[np.argsort(-scores[row, own], kind="stable")][:20]
        ranked.append(pd.DataFrame({"customer_id": customer, "rank": np.arange(1, len(order) + 1),
                                    "product_id": products[order]}))
    network = ranking_metrics(pd.concat(ranked), target)
    latest = before.groupby(pairs)["timestamp"].max().reset_index().sort_values(
        ["customer_id", "timestamp"], ascending=[True, False])
    latest = latest[latest["customer_id"].isin(customers)]
    latest["rank"] = latest.groupby("customer_id").cumcount() + 1
    recency = ranking_metrics(latest[latest["rank"] <= 20], target)
    assert len(customers) >= 30
    assert network["ndcg@10"] > recency["ndcg@10"] + 0.02, (network, recency)
