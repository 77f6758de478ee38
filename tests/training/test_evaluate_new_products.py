"""`clientele evaluate new-products`: the protocol's split, the peers, the JSON, errors in one line."""

import json

import numpy as np
import pandas as pd
import pytest

from features.exceptions import DataError
from training.evaluate_new_products import (attribute_knn, attribute_popularity, category_affinity,
                                            new_product_split)
from tests.training.test_cli import clientele

CONFIG = """
model: {dims: 16, steps: 120, batch_size: 128, learning_rate: 0.03, min_token_products: 1}
evaluation: {test_days: 30, knn_neighbours: 10, seed: 0}
"""
CUTOFF = pd.Timestamp("2024-12-02")  # the last 30 days of a log ending on 2024-12-31


@pytest.fixture(scope="module")
def store():
    """Ring buyers (a*) and earrings buyers (b*) over 2024; in December, three new rings and three new earrings
    launch and each customer buys one new product of their own taste (and a few buy an old one too)."""
    rng = np.random.default_rng(1)
    products, rows = [], []
    tastes = {"a": ("gold", "ring", "lumen", 900.0), "b": ("silver", "earrings", "ivy", 80.0)}
    for taste, (material, kind, brand, price) in tastes.items():
        for k in range(15):
            new = k >= 12
            products.append({"product_id": f"{taste}{k:02d}", "category": f"{kind}s", "brand": brand,
                             "price": price * (1 + 0.05 * k), "material": material,
                             "name": f"{['classic', 'twist', 'halo'][k % 3]} {material} {kind}",
                             "launched_at": "2024-12-05" if new else "2023-01-01"})
        for c in range(25):
            for day in rng.choice(320, size=4, replace=False):
                rows.append((f"{taste}{c}", f"{taste}{rng.integers(12):02d}", pd.Timestamp("2024-01-01")
                             + pd.Timedelta(days=int(day)), 10.0))
            rows.append((f"{taste}{c}", f"{taste}{12 + rng.integers(3):02d}", pd.Timestamp("2024-12-10")
                         + pd.Timedelta(days=int(rng.integers(20))), 12.0))
    rows.append(("late", "a13", pd.Timestamp("2024-12-31 18:00"), 5.0))  # no history: not a test customer
    tx = pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp", "amount"])
    return {"transactions": tx, "products": pd.DataFrame(products)}


def test_split_follows_the_protocol(store):
    split = new_product_split(store, 30)
    assert split.cutoff == CUTOFF
    # New: first sold on or after the cutoff; the test customers bought before it and a new product after.
    assert list(split.new_products) == ["a12", "a13", "a14", "b12", "b13", "b14"]
    assert len(split.customers) == 50 and "late" not in split.customers
    assert set(split.target["product_id"]) <= set(split.new_products)
    train = split.training_tables(store)
    assert train["transactions"]["timestamp"].max() < CUTOFF
    assert set(split.new_products) <= set(train["products"]["product_id"])  # known through the products table


def test_peers(store):
    split = new_product_split(store, 30)
    train = split.training_tables(store)
    ring_buyer = list(split.customers).index("a0")
    affinity = category_affinity(split, train)
    # Ring buyers put every new ring above every new pair of earrings, and the other way round.
    assert affinity[ring_buyer, :3].min() > affinity[ring_buyer, 3:].max()
    popularity = attribute_popularity(split, train)
    assert (popularity == popularity[0]).all()  # the same list for everyone
    knn = attribute_knn(split, train, neighbours=10, price_bands=5, name_pairs=True)
    assert knn[ring_buyer, :3].min() > knn[ring_buyer, 3:].max()


def test_json_maps_every_model_to_its_metrics(store, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    store["transactions"].to_csv(data / "transactions.csv", index=False)
    store["products"].to_csv(data / "products.csv", index=False)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "new_products.yaml").write_text(CONFIG)
    result = clientele("evaluate", "new-products", "--data", data, "--test-days", "30", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report) == ["clientele", "random", "category_affinity", "attribute_popularity", "attribute_knn"]
    for metrics in report.values():
        assert 0 <= metrics["recall@20"] <= 1 and 0 <= metrics["ndcg@10"] <= 1
        assert metrics["customers"] == 50
    # Tastes are plain here: the model puts each customer's three new products of their kind first (NDCG@10
    # 0.71 when the one bought is anywhere among them), a random order does not.
    assert report["clientele"]["ndcg@10"] > 0.68 > report["random"]["ndcg@10"] + 0.1
    table = clientele("evaluate", "new-products", "--data", data, cwd=tmp_path)
    assert table.returncode == 0 and "clientele / category_affinity on ndcg@10" in table.stdout


def test_no_new_product_is_one_line_and_exit_2(store, tmp_path):
    tx = store["transactions"]
    path = tmp_path / "old.csv"
    tx[~tx["product_id"].isin(["a12", "a13", "a14", "b12", "b13", "b14"])].to_csv(path, index=False)
    result = clientele("evaluate", "new-products", "--data", path, "--test-days", "30")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: no product was first sold in [2024-10-14, 2024-11-13)")
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(DataError, match="test_days must be a positive integer"):
        new_product_split(store, 0)


def test_a_bad_setting_is_one_line_and_exit_2(store, tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "new_products.yaml").write_text("model: {dims: 1}\n")
    path = tmp_path / "tx.csv"
    store["transactions"].to_csv(path, index=False)
    result = clientele("evaluate", "new-products", "--data", path, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {tmp_path / 'configs' / 'new_products.yaml'}: model.dims: Input "
                                     f"should be greater than or equal to 2")
