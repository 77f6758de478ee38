"""Shared fixtures: the real datasets beside the checkout (skipped when absent) and tiny canonical tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _mlflow_uris_per_file():
    """Each test file starts from the process's MLflow stores: a file that points MLflow at its own temporary
    store (training does, globally) leaves neither that store nor an open run to the next file of the worker."""
    import os
    import sys

    before = os.environ.get("MLFLOW_TRACKING_URI"), os.environ.get("MLFLOW_REGISTRY_URI")
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
        if before[1] is None:  # MLflow keeps the variable it set when the registry is reset to none
            os.environ.pop("MLFLOW_REGISTRY_URI", None)


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
