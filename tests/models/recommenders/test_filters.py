"""Filters are never violated, whatever the combination (property-based), on every path: personal, cold start,
fold-in, the top-up of short lists, similar products; channel and store included (an in-store list holds only what
the store has, or marks the rest "order online")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.exceptions import DataError
from features.i18n import code_of
from models.recommenders.policy import shelf
from models.recommenders import Filters, registry
from tests.models.recommenders.conftest import TINY, tiny_two_stage

_MODELS: dict[str, object] = {}


@pytest.fixture(scope="module")
def models(synthetic, cutoff):
    if not _MODELS:
        for name in ("repeat", "bm25", "als"):
            _MODELS[name] = registry()[name](**TINY[name]).fit(synthetic, cutoff=cutoff)
        _MODELS["clientele"] = registry()["clientele"](**tiny_two_stage()).fit(synthetic, cutoff=cutoff)
    return _MODELS


CATEGORIES = ["skincare", "makeup", "haircare", "bodycare", "fragrance", "tools", "no-such-category"]

filters = st.fixed_dictionaries(dict(
    exclude_bought=st.sampled_from([None, True, False]),
    in_stock_only=st.booleans(),
    categories=st.one_of(st.none(), st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3)),
    exclude_categories=st.lists(st.sampled_from(CATEGORIES), max_size=2),
    price_min=st.one_of(st.none(), st.floats(0, 400)),
    price_max=st.one_of(st.none(), st.floats(100, 2000)),
    channel=st.sampled_from([None, "store", "online", "app"]),
    store_id=st.sampled_from([None, "S0001", "S0002", "S0050", "no-such-store"]),
    availability=st.sampled_from(["in_store", "order_online"]),
    new_only=st.booleans(),
    new_arrival_share=st.sampled_from([None, 0.0, 0.3, 1.0]),
)).filter(lambda f: f["price_min"] is None or f["price_max"] is None or f["price_min"] <= f["price_max"]).map(
    lambda f: Filters(**f))


def check(model, out: pd.DataFrame, f: Filters, product_column: str = "product_id") -> None:
    catalog = model.catalog_
    codes = catalog.products.to_internal(out[product_column])
    if f.store_id is not None:
        on_shelf = shelf(catalog.table(), f.store_id)[codes]
        marked = out["reason"].map(code_of).eq("rec.order_online").to_numpy()
        if f.availability == "in_store":
            assert on_shelf.all()
        # What the store lacks is said so, and only that.
        assert (marked == ~on_shelf).all()
    else:
        assert not out["reason"].map(code_of).eq("rec.order_online").any()
    names = np.append(catalog.categories.astype(object), None)
    category = names[catalog.category[codes]]
    price = catalog.price[codes]
    if f.in_stock_only:
        assert catalog.in_stock[codes].all()
    if f.categories is not None:
        assert np.isin(category, list(f.categories)).all()
    assert not np.isin(category, list(f.exclude_categories)).any()
    if f.price_min is not None:
        assert (price >= f.price_min).all()
    if f.price_max is not None:
        assert (price <= f.price_max).all()
    assert not out[product_column].isin(f.exclude_products).any()
    if f.new_only:
        assert model.new_arrivals()[codes].all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=filters, which=st.sampled_from(["repeat", "bm25", "als", "clientele"]), n=st.integers(1, 25),
       data=st.data())
def test_filters_are_never_violated(models, f, which, n, data):
    model = models[which]
    known = model.customers_.external_ids[model.active_]
    customers = list(data.draw(st.lists(st.sampled_from(list(known[:200])), min_size=1, max_size=5, unique=True)))
    customers += ["unknown-customer"]
    products = model.catalog_.products.external_ids
    f = Filters(**{**f.__dict__, "exclude_products": tuple(data.draw(st.lists(st.sampled_from(list(products[:50])),
                                                                             max_size=3)))})
    history = pd.DataFrame({"customer_id": ["folded"] * 2, "product_id": products[[1, 2]]})
    out = model.recommend(customers + ["folded"], n=n, filters=f, history=history, locale=None)
    check(model, out, f)
    assert (out.groupby("customer_id").size() <= n).all()
    exclude = model.params.exclude_bought if f.exclude_bought is None else f.exclude_bought
    if exclude:
        bought = model.bought_.tocoo()
        bought_pairs = set(zip(model.customers_.to_external(bought.row),
                               model.catalog_.products.to_external(bought.col)))
        assert not bought_pairs & set(zip(out["customer_id"], out["product_id"]))
        assert not out[out["customer_id"] == "folded"]["product_id"].isin(products[[1, 2]]).any()
    similar = model.similar(list(products[:3]), n=n, filters=f, locale=None)
    check(model, similar, f, "similar_product_id")


def test_a_filter_that_leaves_enough_products_still_gives_n(models):
    model = models["clientele"]
    customers = list(model.customers_.external_ids[model.active_][:20])
    out = model.recommend(customers, n=10, filters=Filters(categories=["fragrance"], exclude_bought=True))
    assert out.groupby("customer_id").size().eq(10).all()
    assert (out["reason"].str.len() > 0).all()


def test_filter_arguments_are_validated():
    with pytest.raises(DataError, match="price_min"):
        Filters(price_min=10, price_max=5)
    with pytest.raises(DataError, match="finite"):
        Filters(price_max=float("nan"))
    assert Filters(categories="skincare").categories == ("skincare",)
