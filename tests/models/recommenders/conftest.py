"""Small synthetic retail data and tiny configurations, so the whole recommender suite runs in about a minute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.synthetic import generate

DATASETS = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"
ROOT = Path(__file__).resolve().parents[3]

# Small but real-looking: every model sees repeat buyers, categories, regions, events and a products table.
SYNTHETIC_CUSTOMERS = 400
SEED = 11

# Hyperparameters small enough for CI; every model still does its real work.
TINY = {
    "popularity": {},
    "trending": {"window_days": 60},
    "repeat": {},
    "itemknn": {"neighbours": 20},
    "bm25": {"neighbours": 20},
    "als": {"factors": 8, "iterations": 3},
    "bpr": {"factors": 8, "iterations": 5},
    "ease": {"l2": 50.0, "max_items": 300},
    "tifu_knn": {"neighbours": 20},
    "recanet": {"epochs": 1, "hidden": 4, "item_dims": 4, "batch_size": 256},
}


# The attribute model behind the new-arrivals generator, small enough for CI.
TINY_TOWER = {"dims": 8, "steps": 30, "batch_size": 64, "history": 10}


def tiny_two_stage(**overrides) -> dict:
    """Parameters of a small ``clientele`` model (five generators, a short reranker)."""
    params = {
        "window_days": 60,
        "serve_depth": 30,
        "fold_in": "knn",
        "similar": "knn",
        "generators": {
            "repeat": {"model": "repeat", "candidates": 20},
            "knn": {"model": "bm25", "candidates": 20, "params": TINY["bm25"]},
            "ease": {"model": "ease", "candidates": 20, "params": TINY["ease"]},
            "popularity": {"model": "popularity", "candidates": 10, "params": {"by_region": True}},
            "arrivals": {"model": "attributes", "candidates": 10, "params": {"tower": TINY_TOWER}},
        },
        "ranker": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 5, "threads": 1},
    }
    params.update(overrides)
    return params


@pytest.fixture(scope="session")
def synthetic() -> dict[str, pd.DataFrame]:
    """A synthetic beauty retailer: all five tables, three years."""
    return generate("beauty", customers=SYNTHETIC_CUSTOMERS, seed=SEED)


@pytest.fixture(scope="session")
def cutoff(synthetic) -> pd.Timestamp:
    """A cutoff three months before the end of the synthetic data."""
    return synthetic["transactions"]["timestamp"].max().normalize() - pd.Timedelta(days=90)


@pytest.fixture
def handmade() -> dict[str, pd.DataFrame]:
    """Four customers, five products, two regions, two categories: small enough to reason about by hand."""
    rows = [
        # customer, product, day, quantity
        ("c1", "p1", 1, 1), ("c1", "p2", 1, 1), ("c1", "p1", 31, 1), ("c1", "p1", 61, 1),
        ("c2", "p1", 5, 1), ("c2", "p2", 5, 2), ("c2", "p3", 40, 1),
        ("c3", "p3", 10, 1), ("c3", "p4", 10, 1), ("c3", "p5", 50, 1),
        ("c4", "p2", 20, 1), ("c4", "p3", 20, 1),
    ]
    tx = pd.DataFrame(rows, columns=["customer_id", "product_id", "day", "quantity"])
    tx["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(tx.pop("day"), unit="D")
    tx["amount"] = tx["quantity"] * 10.0
    tx["quantity"] = tx["quantity"].astype(float)
    tx["is_return"] = False
    tx["order_id"] = tx["customer_id"] + "-" + tx["timestamp"].dt.strftime("%Y%m%d")
    customers = pd.DataFrame({"customer_id": ["c1", "c2", "c3", "c4", "c5"],
                              "region": ["north", "north", "south", "south", "south"],
                              "consent_profiling": pd.array([True, True, True, False, True], dtype="boolean")})
    products = pd.DataFrame({"product_id": ["p1", "p2", "p3", "p4", "p5"],
                             "category": ["skin", "skin", "hair", "hair", "hair"],
                             "price": [10.0, 20.0, 30.0, 40.0, 50.0],
                             "in_stock": pd.array([True, True, True, False, True], dtype="boolean")})
    return {"transactions": tx, "customers": customers, "products": products}


def realdata(name: str) -> Path:
    path = DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def all_ids(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].astype(str).to_numpy()
