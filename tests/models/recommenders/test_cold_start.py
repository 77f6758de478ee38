"""Cold start, fold-in, consent and reasons on a dataset small enough to check by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from features.i18n import render_all
from models.recommenders import COLD_START, NON_PERSONAL, PERSONAL, Filters, ItemKNN, Popularity, RepeatPurchase

CUTOFF = pd.Timestamp("2024-03-11")  # day 70 of the handmade log


def test_unknown_customer_gets_n_popular_items(handmade):
    model = Popularity(window_days=None).fit(handmade, cutoff=CUTOFF)
    out = model.recommend(["stranger"], n=3, filters=Filters(in_stock_only=False))
    assert out["strategy"].tolist() == [COLD_START] * 3
    # Distinct buyers: p2 and p3 have three each, p1 two; ties go to the more bought all-time, then the id order.
    assert out["product_id"].tolist()[:2] == ["p2", "p3"]
    assert set(out["reason"]) == {"popular right now"}


def test_cold_start_asks_for_more_than_there_is(handmade):
    model = Popularity(window_days=None).fit(handmade, cutoff=CUTOFF)
    out = model.recommend(["stranger"], n=50)
    assert len(out) == 4  # five products, p4 out of stock
    assert "p4" not in out["product_id"].tolist()


def test_known_customer_without_history_gets_their_region(handmade):
    model = Popularity(window_days=None, segment_min_customers=1, segment_shrinkage=0.0).fit(handmade, cutoff=CUTOFF)
    out = model.recommend(["c5"], n=2, filters=Filters(in_stock_only=False))
    assert out["strategy"].tolist() == [COLD_START] * 2
    assert set(out["reason"]) == {"popular in south"}
    # South's buyers are c3 (p3, p4, p5) and c4 (p2, p3): p3 first.
    assert out["product_id"].iloc[0] == "p3"


def test_fold_in_of_a_new_customers_events(handmade):
    model = ItemKNN(neighbours=5, input="binary").fit(handmade, cutoff=CUTOFF)
    history = pd.DataFrame({"customer_id": ["new"], "product_id": ["p5"], "event_type": ["view"]})
    out = model.recommend(["new"], n=2, history=history, filters=Filters(in_stock_only=False))
    assert out["strategy"].tolist() == [COLD_START] * 2
    # p5 was bought only by c3, together with p3 and p4.
    assert set(out["product_id"]) <= {"p3", "p4", "p5"}
    # The event's reason names what the customer did (models/recommenders/policy.py).
    assert (out["reason"] == "similar to p5 you viewed").all()


def test_history_needs_its_columns(handmade):
    from features.exceptions import DataError

    model = ItemKNN(neighbours=5).fit(handmade, cutoff=CUTOFF)
    with pytest.raises(DataError, match="product_id"):
        model.recommend(["new"], history=pd.DataFrame({"customer_id": ["new"]}))


def test_customer_without_profiling_consent_is_non_personal(handmade):
    model = RepeatPurchase().fit(handmade, cutoff=CUTOFF)
    out = model.recommend(["c4", "c1"], n=2, filters=Filters(in_stock_only=False))
    assert out.set_index("customer_id")["strategy"].to_dict() == {"c4": NON_PERSONAL, "c1": PERSONAL}


def test_repurchase_timing_reason(handmade):
    model = RepeatPurchase().fit(handmade, cutoff=CUTOFF)
    out = model.recommend(["c1"], n=2, filters=Filters(in_stock_only=False))
    # c1 bought p1 on days 1, 31 and 61: every 30 days, last 9 days before the cutoff.
    first = out.iloc[0]
    assert first["product_id"] == "p1"
    assert first["reason"] == "you buy this about every 30 days (due in about 21 days)"
    assert out.iloc[1]["reason"] == "you bought this before"


def test_exclude_bought_default_comes_from_the_preset(handmade):
    from models.recommenders import TwoStage

    assert not RepeatPurchase.from_config(preset="beauty").params.exclude_bought
    assert TwoStage.from_config(preset="jewellery").params.exclude_bought
    model = RepeatPurchase.from_config(preset="jewellery").fit(handmade, cutoff=CUTOFF)
    out = model.recommend(["c1"], n=3, filters=Filters(in_stock_only=False))
    assert not out["product_id"].isin(["p1", "p2"]).any()  # jewellery: already bought is excluded
    assert (out["strategy"] == PERSONAL).all()


def test_a_product_is_never_its_own_reason(handmade):
    model = ItemKNN(neighbours=5, input="binary").fit(handmade, cutoff=CUTOFF)
    history = pd.DataFrame({"customer_id": ["new", "new"], "product_id": ["p3", "p4"], "event_type": ["cart"] * 2})
    out = model.recommend(["new"], n=4, history=history, filters=Filters(in_stock_only=False))
    names = dict(zip(model.catalog_.products.external_ids, model.catalog_.names))
    for _, row in out.iterrows():
        assert row["reason"] != f"bought together with {names[row['product_id']]}"


def test_repurchase_wordings_for_many_pairs_at_once():
    import numpy as np

    from models.recommenders.repeat import timing_reasons

    gap = np.array([30.0, 30.0, np.nan, 12.4, 0.0])
    since = np.array([9.0, 29.5, 5.0, 3.0, 1.0])
    days = np.array([3, 4, 1, 2, 5], dtype=float)
    assert render_all(timing_reasons(gap, since, days)) == [
        "you buy this about every 30 days (due in about 21 days)", "you buy this about every 30 days (due now)",
        "you bought this before", "you bought this 2 times", "you bought this 5 times"]
