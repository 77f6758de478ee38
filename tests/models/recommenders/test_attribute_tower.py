"""The attribute two-tower model: a product nobody bought is scored from its attributes, for each customer by their
taste; refits are deterministic; the saved artefact scores the same with its own configuration."""

import numpy as np
import pandas as pd
import pytest

from features.exceptions import DataError
from models.recommenders.attribute_tower import AttributeTower

SMALL = {"dims": 16, "steps": 120, "batch_size": 128, "learning_rate": 0.03, "min_token_products": 1}


@pytest.fixture(scope="module")
def two_tastes():
    """Customers a0..a29 buy gold rings of brand "lumen", b0..b29 silver earrings of brand "ivy"; each taste has 12
    established products. Two products were just launched and never sold: a gold ring by lumen and silver
    earrings by ivy."""
    rng = np.random.default_rng(0)
    products, rows = [], []
    for taste, (material, kind, brand, price) in {"a": ("gold", "ring", "lumen", 900.0),
                                                  "b": ("silver", "earrings", "ivy", 80.0)}.items():
        for k in range(12):
            products.append({"product_id": f"{taste}{k:02d}", "category": f"{kind}s", "brand": brand,
                             "price": price * (1 + 0.1 * k), "material": material,
                             "name": f"{['classic', 'twist', 'halo', 'bold'][k % 4]} {material} {kind}",
                             "launched_at": pd.Timestamp("2023-01-01")})
        for c in range(30):
            for day in rng.choice(300, size=4, replace=False):
                rows.append({"customer_id": f"{taste}{c}", "product_id": f"{taste}{rng.integers(12):02d}",
                             "timestamp": pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(day)), "amount": 1.0})
    products += [
        {"product_id": "new_ring", "category": "rings", "brand": "lumen", "price": 1000.0, "material": "gold",
         "name": "aurora gold ring", "launched_at": pd.Timestamp("2024-12-20")},
        {"product_id": "new_earrings", "category": "earrings", "brand": "ivy", "price": 90.0, "material": "silver",
         "name": "aurora silver earrings", "launched_at": pd.Timestamp("2024-12-20")},
    ]
    return {"transactions": pd.DataFrame(rows), "products": pd.DataFrame(products)}


@pytest.fixture(scope="module")
def fitted(two_tastes):
    return AttributeTower(SMALL).fit(two_tastes, pd.Timestamp("2025-01-01"))


def test_a_product_nobody_bought_is_scored_by_each_customers_taste(fitted):
    a = [f"a{c}" for c in range(30)]
    b = [f"b{c}" for c in range(30)]
    scores = fitted.score(a + b, ["new_ring", "new_earrings"])
    ring, earrings = scores[:, 0], scores[:, 1]
    # Every ring buyer ranks the new ring first, every earrings buyer the new earrings.
    assert (ring[:30] > earrings[:30]).all()
    assert (earrings[30:] > ring[30:]).all()
    # Across customers too: the ring scores higher for ring buyers than for anyone else.
    assert ring[:30].min() > ring[30:].max()


def test_similar_by_attributes_and_unknown_customers_get_the_prior(fitted):
    v = fitted.similar_vectors(["new_ring", "a00", "b00"])
    assert v[0] @ v[1] > v[0] @ v[2]
    unknown = fitted.score(["nobody"], ["new_ring", "new_earrings"])
    assert np.isfinite(unknown).all()
    with pytest.raises(DataError, match="unknown id 'missing'"):
        fitted.score(["a0"], ["missing"])


def test_refit_is_deterministic_and_save_load_changes_nothing(two_tastes, fitted, tmp_path):
    again = AttributeTower(SMALL).fit(two_tastes, pd.Timestamp("2025-01-01"))
    customers, products = ["a0", "b3", "nobody"], ["new_ring", "new_earrings", "a05"]
    np.testing.assert_allclose(again.score(customers, products), fitted.score(customers, products), rtol=1e-5)
    loaded = AttributeTower.load(fitted.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.score(customers, products), fitted.score(customers, products))
    # The artefact scores with the configuration it was trained with, whatever the defaults are now.
    assert loaded.params == fitted.params and loaded.params.dims == SMALL["dims"]
    vectors, prior, _ = loaded.product_representation(
        pd.DataFrame({"product_id": ["later"], "category": ["rings"], "brand": ["lumen"], "material": ["gold"],
                      "name": ["nova gold ring"], "price": [950.0]}))
    assert vectors.shape == (1, SMALL["dims"]) and np.isfinite(prior).all()


def test_nothing_at_or_after_the_cutoff_is_read(two_tastes):
    cutoff = pd.Timestamp("2024-06-01")
    tx = two_tastes["transactions"]
    late = tx[tx["timestamp"] >= cutoff].assign(product_id="a00")  # everybody "buys" a00 after the cutoff
    base = AttributeTower(SMALL).fit({**two_tastes, "transactions": tx}, cutoff)
    leaked = AttributeTower(SMALL).fit({**two_tastes, "transactions": pd.concat([tx[tx["timestamp"] < cutoff],
                                                                                  late])}, cutoff)
    np.testing.assert_allclose(base.score(["a0", "b0"], ["a00", "b00"]), leaked.score(["a0", "b0"], ["a00", "b00"]),
                               rtol=1e-5)


def test_bad_input_is_a_clear_error(two_tastes):
    with pytest.raises(DataError, match="no purchase with a product_id before"):
        AttributeTower(SMALL).fit(two_tastes, pd.Timestamp("2000-01-01"))
    with pytest.raises(DataError, match="product_id"):
        AttributeTower(SMALL).fit({"transactions": two_tastes["transactions"].drop(columns="product_id")})
