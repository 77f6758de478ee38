"""Shared fixtures: the real datasets beside the checkout (skipped when absent) and tiny canonical tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
ROOT = Path(__file__).resolve().parents[1]


def real_dataset(name: str) -> Path:
    """Path of a file in ../shared/datasets, or skip the test when it is not there."""
    path = DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture
def online_retail() -> Path:
    return real_dataset("online_retail.parquet")


@pytest.fixture
def online_retail_mapping() -> Path:
    return ROOT / "configs" / "datasets" / "online_retail.yaml"


@pytest.fixture
def tiny_transactions() -> pd.DataFrame:
    """Five canonical purchase lines of three customers."""
    return pd.DataFrame({
        "customer_id": ["c1", "c1", "c2", "c3", "c3"],
        "product_id": ["p1", "p2", "p1", "p3", "p1"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-15", "2024-03-01", "2024-03-05"]),
        "amount": [10.0, 20.0, 10.0, 5.0, 10.0],
    })
