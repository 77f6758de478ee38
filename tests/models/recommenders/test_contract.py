"""The shared contract every recommender passes: deterministic refit with a seed, save/load changes nothing,
n external ids with reasons per customer, explicit cold start, similar products."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.exceptions import ConfigError, DataError
from features.i18n import TEMPLATES, code_of, render
from models.recommenders import COLD_START, NON_PERSONAL, PERSONAL, Filters, Recommender, registry
from tests.models.recommenders.conftest import TINY, tiny_two_stage

MODELS = list(TINY) + ["clientele"]
N = 7


def build(name: str, **overrides) -> Recommender:
    params = tiny_two_stage() if name == "clientele" else dict(TINY[name])
    params.update(overrides)
    return registry()[name](**params)


_FITTED: dict[str, Recommender] = {}


@pytest.fixture
def fitted(request, synthetic, cutoff) -> Recommender:
    name = request.param
    if name not in _FITTED:
        _FITTED[name] = build(name, random_state=3).fit(synthetic, cutoff=cutoff)
    return _FITTED[name]


def sample_customers(model: Recommender, k: int = 25) -> list[str]:
    active = model.customers_.external_ids[model.active_ & model.consent_]
    return list(active[:: max(len(active) // k, 1)][:k])


def requests(model: Recommender) -> dict[str, pd.DataFrame]:
    """Everything the contract compares: personal, filtered, cold start, fold-in and similar products."""
    customers = sample_customers(model)
    products = list(model.catalog_.products.external_ids[:: max(model.catalog_.size // 10, 1)][:10])
    history = pd.DataFrame({"customer_id": ["new-1", "new-1", "new-2"],
                            "product_id": [products[0], products[1], products[2]],
                            "event_type": ["purchase", "view", "cart"]})
    return {
        "personal": model.recommend(customers, n=N),
        "filtered": model.recommend(customers, n=N, filters=Filters(exclude_bought=True, price_max=300.0)),
        "cold": model.recommend(["nobody", "new-1", "new-2"], n=N, history=history),
        "similar": model.similar(products, n=N),
    }


@pytest.mark.parametrize("fitted", MODELS, indirect=True)
def test_recommendations_are_n_external_ids_with_reasons(fitted):
    customers = sample_customers(fitted)
    out = fitted.recommend(customers, n=N)
    assert list(out.columns) == ["customer_id", "rank", "product_id", "score", "reason", "strategy"]
    assert out.groupby("customer_id").size().reindex(customers).eq(N).all()
    assert (out.groupby("customer_id")["rank"].apply(list) == [list(range(1, N + 1))] * len(customers)).all()
    assert out["product_id"].isin(fitted.catalog_.products.external_ids).all()
    assert not out.duplicated(["customer_id", "product_id"]).any()
    assert (out["reason"].str.len() > 0).all()
    assert (out["strategy"] == PERSONAL).all()
    assert out["customer_id"].drop_duplicates().tolist() == customers  # input order kept


@pytest.mark.parametrize("fitted", MODELS, indirect=True)
def test_unknown_customers_get_n_items_by_cold_start(fitted):
    out = fitted.recommend(["never-seen-1", "never-seen-2"], n=N)
    assert len(out) == 2 * N
    assert (out["strategy"] == COLD_START).all()
    assert (out["reason"].str.len() > 0).all()


@pytest.mark.parametrize("fitted", MODELS, indirect=True)
def test_fold_in_of_a_few_events_and_exclusion_of_their_purchases(fitted):
    products = fitted.catalog_.products.external_ids
    history = pd.DataFrame({"customer_id": ["new"] * 3, "product_id": products[[0, 5, 9]],
                            "event_type": ["purchase", "purchase", "view"]})
    out = fitted.recommend(["new"], n=N, history=history, filters=Filters(exclude_bought=True))
    assert len(out) == N and (out["strategy"] == COLD_START).all()
    assert not out["product_id"].isin(products[[0, 5]]).any()


@pytest.mark.parametrize("fitted", MODELS, indirect=True)
def test_similar_products(fitted):
    products = list(fitted.catalog_.products.external_ids[:5]) + ["not-a-product"]
    out = fitted.similar(products, n=N)
    assert list(out.columns) == ["product_id", "rank", "similar_product_id", "score", "reason"]
    assert out.groupby("product_id").size().reindex(products).eq(N).all()
    assert not (out["product_id"] == out["similar_product_id"]).any()
    assert (out["reason"].str.len() > 0).all()


@pytest.mark.parametrize("fitted", MODELS, indirect=True)
def test_every_reason_is_a_message_with_every_language(fitted):
    """Models store messages (features/i18n), never prose: a reason in English only would be a gap in Chinese."""
    customers = sample_customers(fitted)
    products = list(fitted.catalog_.products.external_ids[:5])
    history = pd.DataFrame({"customer_id": ["new-1", "new-1"], "product_id": products[:2],
                            "event_type": ["purchase", "view"]})
    reasons = pd.concat([fitted.recommend(customers, n=N, locale=None)["reason"],
                         fitted.recommend(["nobody", "new-1"], n=N, history=history, locale=None)["reason"],
                         fitted.similar(products, n=N, locale=None)["reason"]])
    assert reasons.map(code_of).isin(list(TEMPLATES)).all(), reasons[reasons.map(code_of).isna()].unique()[:5]
    assert all(render(r, "zh-CN") and render(r, "zh-CN") != render(r) for r in reasons.unique())


@pytest.mark.parametrize("fitted", MODELS, indirect=True)
def test_save_load_changes_nothing(fitted, tmp_path):
    before = requests(fitted)
    loaded = Recommender.load(fitted.save(tmp_path / "model"))
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    after = requests(loaded)
    for key in before:
        pd.testing.assert_frame_equal(before[key], after[key], check_exact=True, obj=key)


@pytest.mark.parametrize("name", MODELS)
def test_refit_with_the_same_seed_is_identical(name, synthetic, cutoff):
    first = build(name, random_state=5).fit(synthetic, cutoff=cutoff)
    second = build(name, random_state=5).fit(synthetic, cutoff=cutoff)
    a, b = requests(first), requests(second)
    for key in a:
        pd.testing.assert_frame_equal(a[key], b[key], check_exact=True, obj=key)


@pytest.mark.parametrize("fitted", ["repeat", "clientele"], indirect=True)
def test_customers_who_refused_profiling_get_popular_items_only(fitted, synthetic):
    profile = synthetic["customers"]
    refused = profile.loc[~profile["consent_profiling"].fillna(True).astype(bool), "customer_id"]
    refused = [c for c in refused if c in fitted.customers_][:3]
    assert refused, "the synthetic data should have customers without profiling consent"
    out = fitted.recommend(refused, n=N)
    assert (out["strategy"] == NON_PERSONAL).all()
    assert out.groupby("customer_id")["product_id"].apply(tuple).nunique() == 1  # the same list for all
    assert (out["reason"] == "popular right now").all()  # English unless another locale is asked for


def test_unfitted_model_and_bad_arguments_are_clear_errors(synthetic, cutoff):
    with pytest.raises(ConfigError, match="not fitted"):
        build("popularity").recommend(["x"])
    model = _FITTED.get("popularity") or build("popularity").fit(synthetic, cutoff=cutoff)
    with pytest.raises(DataError, match="n must be a positive integer"):
        model.recommend(["x"], n=0)
    with pytest.raises(ConfigError, match="neighbours"):
        build("itemknn", neighbours="many")
    with pytest.raises(ConfigError, match="unknown_knob"):
        build("als", unknown_knob=1)


def test_load_rejects_a_folder_without_a_model(tmp_path):
    with pytest.raises(DataError, match="not a saved recommender"):
        Recommender.load(tmp_path)


def test_ids_are_converted_in_one_place(synthetic, cutoff):
    model = _FITTED.get("repeat") or build("repeat").fit(synthetic, cutoff=cutoff)
    customer = sample_customers(model, 1)[0]
    # One id, a list with it, and a numpy array of it give the same answer.
    one = model.recommend(customer, n=3)
    many = model.recommend(np.array([customer]), n=3)
    pd.testing.assert_frame_equal(one, many)
