"""New arrivals in the two-stage recommender: the attribute generator, launch features, the new-arrival share of
the one policy, ``new_only`` and similar products of a product nobody bought."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.i18n import code_of
from models.recommenders import Filters, TwoStage
from models.recommenders.attribute_tower import AttributeRecommender
from models.recommenders.data import TrainingData, tables_before
from models.recommenders.policy import buy_again_mix, new_arrival_mix
from models.recommenders.two_stage import _vocabularies
from tests.models.recommenders.conftest import tiny_two_stage

LAUNCHED = "NEW-LAUNCH"


def test_new_arrival_mix_keeps_places_only_where_the_list_lacks_them():
    lacks = np.array([0, 0, 0, 0, 0, 0, 1, 0, 1], dtype=bool)
    assert new_arrival_mix(lacks, 5, 0.2).tolist() == [0, 1, 2, 3, 6]
    assert new_arrival_mix(lacks, 5, 0.4).tolist() == [0, 1, 2, 6, 8]
    assert new_arrival_mix(lacks, 5, 0.0).tolist() == [0, 1, 2, 3, 4]
    holds = np.array([0, 1, 0, 0, 0, 1], dtype=bool)
    assert new_arrival_mix(holds, 5, 0.2).tolist() == [0, 1, 2, 3, 4]
    assert new_arrival_mix(np.zeros(3, dtype=bool), 5, 0.5).tolist() == [0, 1, 2]
    # With the buy-again mix, the new arrivals' places come out of the products not bought before.
    bought = np.array([1, 1, 0, 0, 1, 0, 0], dtype=bool)
    new = np.array([0, 0, 0, 0, 0, 0, 1], dtype=bool)
    assert buy_again_mix(bought, 4, 0.5, new, 0.25).tolist() == [0, 1, 2, 6]


def test_launch_age_and_new_arrivals_of_the_catalogue():
    day = pd.Timestamp("2024-03-01")
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "product_id": ["old", "recent", "old"],
                       "timestamp": [day - pd.Timedelta(days=200), day - pd.Timedelta(days=10),
                                     day - pd.Timedelta(days=5)], "amount": 1.0})
    products = pd.DataFrame({"product_id": ["old", "recent", "dated", "undated"],
                             "launched_at": [day - pd.Timedelta(days=400), pd.NaT, day - pd.Timedelta(days=300), pd.NaT]})
    catalog = TrainingData.build({"transactions": tx, "products": products}, day).catalog
    age = dict(zip(catalog.products.external_ids, catalog.launch_age))
    assert age["old"] == pytest.approx(400) and age["recent"] == pytest.approx(10) and age["dated"] == pytest.approx(300)
    assert np.isnan(age["undated"])
    new = dict(zip(catalog.products.external_ids, catalog.new_arrivals(30)))
    assert new == {"old": False, "recent": True, "dated": False, "undated": True}


@pytest.fixture(scope="module")
def launched(synthetic, cutoff):
    """The synthetic store with a product launched three days before the cutoff that nobody has bought: the
    attributes of the best seller, another name and id."""
    tables = {name: table.copy() for name, table in synthetic.items()}
    tx = tables["transactions"]
    best = tx[tx["timestamp"] < cutoff]["product_id"].value_counts().index[0]
    products = tables["products"]
    row = products[products["product_id"] == best].copy()
    row["product_id"] = LAUNCHED
    row["launched_at"] = cutoff - pd.Timedelta(days=3)
    row["in_stock"] = True
    tables["products"] = pd.concat([products, row], ignore_index=True)
    model = TwoStage(**tiny_two_stage(new_arrival_share=0.2, random_state=5)).fit(tables, cutoff=cutoff)
    return tables, model, best


def test_a_product_nobody_bought_reaches_lists_by_its_attributes(launched):
    tables, model, best = launched
    ids = model.catalog_.products.external_ids
    code = int(np.flatnonzero(ids == LAUNCHED)[0])
    assert model.new_arrivals()[code] and model._unsold()[code]
    customers = model.customers_.external_ids[model.active_ & model.consent_][:60]
    arrivals = model.recommend(customers, n=5, filters=Filters(new_only=True), locale=None)
    new = set(ids[model.new_arrivals()])
    assert set(arrivals["product_id"]) <= new and LAUNCHED in set(arrivals["product_id"])
    # Said as new arrivals, as what it is for the customer who already bought one of them since its launch, or, for
    # a launch that already sells well, as popular.
    assert {code_of(r) for r in arrivals["reason"]} <= {"rec.new_in_category", "rec.new_in_category_bought",
                                                         "rec.new_for_taste", "rec.new_arrival", "rec.bought_before",
                                                         "rec.bought_times", "rec.due_in", "rec.due_now",
                                                         "rec.popular", "rec.popular_region", "rec.trending"}
    assert arrivals["reason"].map(code_of).str.startswith("rec.new").mean() > 0.5
    page = model.similar([LAUNCHED], n=5, locale=None)
    assert len(page) == 5 and {code_of(r) for r in page["reason"]} == {"rec.same_kind"}
    # Its best match by attributes is the product it was copied from.
    assert model.similar([LAUNCHED], n=1, filters=Filters(in_stock_only=False))["similar_product_id"].iloc[0] == best


def test_the_new_arrival_share_keeps_them_visible(launched):
    tables, model, _ = launched
    customers = model.customers_.external_ids[model.active_ & model.consent_][:60]
    new = set(model.catalog_.products.external_ids[model.new_arrivals()])
    shown = model.recommend(customers, n=10).assign(new=lambda f: f["product_id"].isin(new))
    per_customer = shown.groupby("customer_id")["new"].sum()
    assert (per_customer >= 2).mean() > 0.9
    plain = model.recommend(customers, n=10, filters=Filters(new_arrival_share=0.0))
    assert plain["product_id"].isin(new).groupby(plain["customer_id"]).sum().mean() < per_customer.mean()


def test_label_windows_know_only_what_was_known_at_their_start(synthetic, cutoff, monkeypatch):
    """A transaction log without a products table (like UCI Online Retail) knows a product only once it sold: a
    product first sold inside a label window stays out of that window's catalogue (kept, it would be a positive for
    someone every time), and the window's new arrivals are, as at the cutoff, products first sold shortly before
    it, bought by some of their candidates and not by others. Prices are those paid before the window."""
    tables = {name: table.copy() for name, table in synthetic.items() if name != "products"}
    tx = tables["transactions"]
    tx["description"] = tx["product_id"].map(synthetic["products"].set_index("product_id")["name"])
    model = TwoStage(**tiny_two_stage(random_state=5))
    seen = tables_before(tables, cutoff)
    starts = model._label_windows(cutoff, seen["transactions"]["timestamp"].min())
    start, end = starts[0], starts[0] + pd.Timedelta(days=model.params.window_days)
    # The products most bought inside the window become launches: first sold there, under new ids; the same
    # number first sold in the days before it become recent arrivals.
    inside = (tx["timestamp"] >= start) & (tx["timestamp"] < cutoff)
    launches = tx.loc[inside & (tx["timestamp"] < end), "product_id"].value_counts().index[:8]
    moved = inside & tx["product_id"].isin(launches)
    tx.loc[moved, "product_id"] = "L-" + tx.loc[moved, "product_id"]
    recent = (tx["timestamp"] >= start - pd.Timedelta(days=20)) & (tx["timestamp"] < cutoff)
    arrivals = tx.loc[recent & (tx["timestamp"] < start), "product_id"].value_counts().index[:8]
    moved = recent & tx["product_id"].isin(arrivals)
    tx.loc[moved, "product_id"] = "R-" + tx.loc[moved, "product_id"]
    tx.loc[moved & (tx["timestamp"] < start), "amount"] = 1.0  # the price paid before the window
    tx.loc[moved & (tx["timestamp"] >= start), "amount"] = 1000.0  # what a leak would read
    seen = tables_before(tables, cutoff)
    window = model._with_launches(seen, start, end)
    data = TrainingData.build(window, start)
    ids = set(data.catalog.products.external_ids)
    assert not any(i.startswith("L-") for i in ids) and sum(i.startswith("R-") for i in ids) == 8
    model._vocab = _vocabularies(seen)  # what fit() sets before its label windows
    attributes = model._attribute_models(seen, starts, cutoff)
    read = []
    fit_tower = AttributeRecommender.fit_tower
    monkeypatch.setattr(AttributeRecommender, "fit_tower",
                        lambda self, data, attrs, *rest: read.append(attrs) or fit_tower(self, data, attrs, *rest))
    model._fit_generators(data, None, attributes, window)
    prices = read[0].set_index("product_id")["price"]
    assert prices[[i for i in ids if i.startswith("R-")]].max() <= 1.0
    x, y, _, _ = model._training_rows(seen, start, end, None, group_offset=0, attributes=attributes)
    new = x[:, model.feature_names_.index("p_new_arrival")] == 1
    scored = np.isfinite(x[:, model.feature_names_.index("g_arrivals_score")])
    assert (scored & new & (y > 0)).sum() >= 1 and (scored & new & (y == 0)).sum() >= 1
