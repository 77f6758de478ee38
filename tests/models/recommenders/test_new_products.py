"""The new-products scorer: a blend learned from past windows' new products over the tower and the customer's
attribute affinities; its features; nothing at or after the cutoff read."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from models.recommenders.new_products import NewProductScorer, pair_features

TOWER = {"dims": 8, "steps": 60, "batch_size": 128, "learning_rate": 0.03, "min_token_products": 1}
RANKER = {"enabled": True, "windows": 4, "window_days": 30, "lambdarank": {"n_estimators": 40, "min_child_samples": 5,
                                                          "early_stopping_rounds": 40, "validation_share": 0.0}}
CUTOFF = pd.Timestamp("2024-12-01")


@pytest.fixture(scope="module")
def launches():
    """Every ring: one category, one price. Customers a* buy the brand "lumen", b* the brand "ivy"; each month
    both brands launch two rings, and most customers buy one new ring of their brand in its first month. Category
    affinity cannot tell the brands apart; the customer's brand share can, and the blend learns to use it."""
    rng = np.random.default_rng(3)
    products, rows = [], []
    brands = {"a": "lumen", "b": "ivy"}
    for month in range(12):
        start = pd.Timestamp("2024-01-01") + pd.DateOffset(months=month)
        for taste, brand in brands.items():
            for k in range(2):
                pid = f"{taste}-{month:02d}-{k}"
                products.append({"product_id": pid, "category": "rings", "brand": brand, "price": 500.0,
                                 "name": f"{['halo', 'twist'][k]} ring", "launched_at": start})
                if month == 11:
                    continue  # launched with the cutoff's month: nobody bought them before it
                for c in rng.choice(30, size=8, replace=False):
                    rows.append((f"{taste}{c}", pid, start + pd.Timedelta(days=int(rng.integers(28))), 500.0))
    for taste in brands:  # a first purchase for everyone, in January
        for c in range(30):
            rows.append((f"{taste}{c}", f"{taste}-00-0", pd.Timestamp("2024-01-02"), 500.0))
    tx = pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp", "amount"])
    return {"transactions": tx, "products": pd.DataFrame(products)}


@pytest.fixture(scope="module")
def fitted(launches):
    return NewProductScorer(TOWER, RANKER).fit(launches, CUTOFF)


def test_the_blend_learns_from_past_windows_new_products(fitted):
    assert fitted.ranker_ is not None and fitted.train_rows_ > 0
    assert "a_brand" in fitted.feature_names_ and "tower" in fitted.feature_names_
    new = ["a-11-0", "a-11-1", "b-11-0", "b-11-1"]
    scores = fitted.score(["a1", "a2", "b1", "b2"], new)
    # Each customer's brand first, though every new ring is in the same category at the same price.
    assert scores[:2, :2].min() > scores[:2, 2:].max()
    assert scores[2:, 2:].min() > scores[2:, :2].max()


def test_nothing_at_or_after_the_cutoff_is_read(launches, fitted):
    tx = launches["transactions"]
    later = pd.DataFrame({"customer_id": ["a1"] * 5, "product_id": ["b-11-0"] * 5, "amount": 1.0,
                          "timestamp": CUTOFF + pd.to_timedelta(np.arange(5), unit="D")})
    more = {**launches, "transactions": pd.concat([tx, later], ignore_index=True)}
    again = NewProductScorer(TOWER, RANKER).fit(more, CUTOFF)
    new = ["a-11-0", "b-11-0"]
    np.testing.assert_array_equal(again.score(["a1", "b1"], new), fitted.score(["a1", "b1"], new))


def test_without_past_launches_the_tower_ranks_alone(launches):
    only_new = {**launches, "transactions": launches["transactions"].query("product_id.str.contains('-00-')")}
    scorer = NewProductScorer(TOWER, RANKER).fit(only_new, CUTOFF)
    assert scorer.ranker_ is None
    np.testing.assert_array_equal(scorer.score(["a1"], ["a-11-0"]), scorer.tower_.score(["a1"], ["a-11-0"]))


def test_pair_features_are_the_customers_shares_of_the_products_attributes():
    attrs = pd.DataFrame({"product_id": ["p0", "p1", "p2", "n0", "n1"], "category": ["rings", "rings", "hoops",
                                                                                       "rings", "hoops"],
                          "brand": ["x", "y", "y", "y", "x"], "price": [10.0, 10.0, 100.0, 20.0, 100.0]})
    # One customer bought p0 twice and p2 once; the other nothing.
    history = sp.csr_matrix(np.array([[2.0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]))
    new = np.array([3, 4])
    tower = np.array([[1.0, 3.0], [0.0, 0.0]])
    x, names = pair_features(attrs, history, new, tower, as_of_day=0, price_bands=2, name_pairs=True,
                             neighbours=3)
    f = {name: x[:, i].reshape(2, 2) for i, name in enumerate(names)}
    np.testing.assert_allclose(f["a_category1"][0], [2 / 3, 1 / 3])
    np.testing.assert_allclose(f["a_brand"][0], [1 / 3, 2 / 3])
    np.testing.assert_allclose(f["a_category1"][1], [0, 0])
    np.testing.assert_allclose(f["pop_category1"][1], [2 / 3, 1 / 3])  # the same for everyone
    assert "pop_brand" not in f  # a brand's popularity all but names the product: not a feature
    np.testing.assert_allclose(f["tower_z"][0], [-1, 1])
    np.testing.assert_allclose(f["log_purchases"][:, 0], [np.log1p(3), 0])
    np.testing.assert_allclose(f["price_vs_usual"][0], np.log1p([20.0, 100.0]) - (2 * np.log1p(10) + np.log1p(100)) / 3,
                               rtol=1e-5)
    assert np.isnan(f["price_vs_usual_in_category"][1]).all()
