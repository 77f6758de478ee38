"""Builders for serving tests: small synthetic serving layouts registered in a real MLflow registry."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from features.identities import IDENTITY_FILE, key_check, pseudonymise_column
from features.privacy import KEY_FILE
from training.layout import (write_churn_artifacts, write_clv_artifacts, write_recommender_artifacts,
                             write_uplift_artifacts)
from serving.auth import create_key
from serving.settings import ServingSettings
from features.settings import CHAMPION, CHURN, CLV, RECOMMENDER, UPLIFT, Settings

CATEGORIES = ("lipstick", "serum", "mascara")
STORES = ("S1", "S2")
REGIONS = ("London", "Leeds")
SCOPE_KEYS = {"storefront": "recommendations:read", "crm": "scores:read", "ingest": "events:write",
              "admin": "admin"}


def customer(i: int) -> str:
    return f"C{i:04d}"


def product(i: int) -> str:
    return f"P{i:03d}"


def layout_tables(n_customers: int = 40, n_products: int = 30, k: int = 20, seed: int = 0, tag: str = "v1"
                  ) -> dict[str, dict[str, pd.DataFrame]]:
    """Tables of the three serving folders. ``tag`` shows in every reason, so a response tells its version.

    Customers 0..n-1 have history; customer 3 has no profiling consent; products with an index divisible by 7
    are out of stock; customer i bought products i % n_products and (i + 1) % n_products. Store S1 has the even
    products on its shelf, store S2 the first half; products with an index divisible by 5 sell mostly online.
    """
    rng = np.random.default_rng(seed)
    products = pd.DataFrame({
        "product_id": [product(p) for p in range(n_products)],
        "name": [f"Item {p}" for p in range(n_products)],
        "category": [CATEGORIES[p % len(CATEGORIES)] for p in range(n_products)],
        "price": [5.0 + p for p in range(n_products)],
        "in_stock": [p % 7 != 0 for p in range(n_products)],
    })
    rec_rows = []
    for c in range(n_customers):
        items = rng.permutation(n_products)[:k]
        for rank, p in enumerate(items, start=1):
            rec_rows.append((customer(c), rank, product(int(p)), float(k - rank + 1) / k,
                             f"{tag}: bought with Item {c}"))
    recommendations = pd.DataFrame(rec_rows, columns=["customer_id", "rank", "product_id", "score", "reason"])
    bought = pd.DataFrame([(customer(c), product(p % n_products)) for c in range(n_customers) for p in (c, c + 1)],
                          columns=["customer_id", "product_id"]).drop_duplicates()
    sim_rows = []
    for p in range(n_products):
        for rank, q in enumerate([(p + d) % n_products for d in range(1, 11)], start=1):
            sim_rows.append((product(p), rank, product(q), 1.0 / rank, f"{tag}: similar to Item {p}"))
    similar = pd.DataFrame(sim_rows, columns=["product_id", "rank", "similar_product_id", "score", "reason"])
    pop_rows = []
    order = list(range(n_products - 1, -1, -1))
    for rank, p in enumerate(order, start=1):
        pop_rows.append(("all", "", rank, product(p), float(n_products - rank), f"{tag}: popular"))
    for region in REGIONS:
        for rank, p in enumerate(order[::2], start=1):
            pop_rows.append(("region", region, rank, product(p), float(n_products - rank),
                             f"{tag}: popular in {region}"))
    for cat_i, cat in enumerate(CATEGORIES):
        items = [p for p in order if p % len(CATEGORIES) == cat_i]
        for rank, p in enumerate(items, start=1):
            pop_rows.append(("category", cat, rank, product(p), float(n_products - rank), f"{tag}: popular in {cat}"))
    popular = pd.DataFrame(pop_rows, columns=["scope", "key", "rank", "product_id", "score", "reason"])
    # Customers n..n+4 are known (signed up) but have no history: cold start in their region.
    all_customers = list(range(n_customers + 5))
    customers = pd.DataFrame({
        "customer_id": [customer(c) for c in all_customers],
        "region": [REGIONS[c % 2] for c in all_customers],
        "consent_profiling": [c != 3 for c in all_customers],
    })
    churn_p = np.round(rng.uniform(0, 1, n_customers), 4)
    churn = pd.DataFrame({
        "customer_id": [customer(c) for c in range(n_customers)],
        "churn_probability": churn_p,
        "risk_band": np.where(churn_p >= 0.7, "high", np.where(churn_p >= 0.4, "medium", "low")),
        "churn_reasons": [[f"{tag}: no purchase for {c} days", "fewer visits"] for c in range(n_customers)],
    })
    clv_values = np.round(rng.uniform(10, 500, n_customers), 2)
    clv = pd.DataFrame({
        "customer_id": [customer(c) for c in range(n_customers)],
        "p_alive": np.round(rng.uniform(0, 1, n_customers), 4),
        "expected_purchases_12m": np.round(rng.uniform(0, 5, n_customers), 3),
        "expected_spend": np.round(rng.uniform(5, 50, n_customers), 2),
        "clv": clv_values,
        "value_tier": np.where(clv_values > 300, "high", np.where(clv_values > 100, "medium", "low")),
        "rfm_segment": [("champions", "at_risk", "loyal")[c % 3] for c in range(n_customers)],
        "r_score": [1 + c % 5 for c in range(n_customers)],
        "f_score": [1 + (c // 2) % 5 for c in range(n_customers)],
        "m_score": [1 + (c // 3) % 5 for c in range(n_customers)],
        "lifecycle_stage": [("active", "at_risk", "lapsed", "new")[c % 4] for c in range(n_customers)],
        "membership_tier": [("gold", None)[c % 2] for c in range(n_customers)],
    })
    profiles = pd.DataFrame({
        "customer_id": [customer(c) for c in range(n_customers)],
        "first_purchase": pd.to_datetime("2023-01-01") + pd.to_timedelta(np.arange(n_customers), unit="D"),
        "last_purchase": pd.to_datetime("2023-12-01") + pd.to_timedelta(np.arange(n_customers), unit="h"),
        "orders": np.arange(n_customers) + 1,
        "total_spend": np.round(rng.uniform(10, 900, n_customers), 2),
        "top_category": [CATEGORIES[c % 3] for c in range(n_customers)],
        "region": [REGIONS[c % 2] for c in range(n_customers)],
        "consent_profiling": [c != 3 for c in range(n_customers)],
        "consent_marketing": [c % 2 == 0 for c in range(n_customers)],
    })
    # Moments: customer c has one, of kind c % 4, on day (2c) % 60 after 2024-01-01.
    kinds = ("birthday", "replenishment", "occasion", "tier_upgrade")
    moments = pd.DataFrame({
        "customer_id": [customer(c) for c in range(n_customers)],
        "kind": [kinds[c % 4] for c in range(n_customers)],
        "name": [(None, product(c % n_products), "valentines", "gold")[c % 4] for c in range(n_customers)],
        "date": pd.to_datetime("2024-01-01") + pd.to_timedelta(np.arange(n_customers) * 2 % 60, unit="D"),
        "confidence": np.round(rng.uniform(0.5, 1, n_customers), 4),
        "description": [f"{tag}: moment of {customer(c)}" for c in range(n_customers)],
        "products": [[product(c % n_products), product((c + 5) % n_products)] for c in range(n_customers)],
        "reasons": [[f"{tag}: for you", f"{tag}: popular"] for c in range(n_customers)],
    }).sort_values(["date", "customer_id"], kind="stable").reset_index(drop=True)
    inventory = pd.DataFrame([(store, product(p)) for store in STORES for p in range(n_products)
                              if (p % 2 == 0 if store == "S1" else p < n_products // 2)],
                             columns=["store_id", "product_id"])
    channels = pd.DataFrame([(ch, product(p), (0.3 if p % 5 == 0 else -0.05) * (1 if ch != "store" else -1))
                             for ch in ("store", "online", "app") for p in range(n_products)],
                            columns=["channel", "product_id", "boost"])
    return {RECOMMENDER: dict(products=products, recommendations=recommendations, bought=bought, similar=similar,
                              popular=popular, customers=customers, inventory=inventory, channels=channels),
            CHURN: dict(scores=churn), CLV: dict(scores=clv, profiles=profiles, moments=moments)}


def write_layouts(folder: Path, tables: dict[str, dict[str, pd.DataFrame]], cutoff: str = "2024-01-01",
                  installation: Settings | None = None) -> dict[str, Path]:
    """The serving folders of ``tables``. With ``installation``, customer ids are replaced by their pseudonyms
    under its key and recorded in its identity map, as training does (what a served layout holds); without,
    the ids are written as they are (for tests of the layout format alone)."""
    check = None
    if installation is not None:
        tables = pseudonymised(tables, installation)
        check = key_check(installation.pseudonym_key)
    out = {}
    if RECOMMENDER in tables:
        out[RECOMMENDER] = write_recommender_artifacts(folder / RECOMMENDER, cutoff=cutoff, pseudonym_check=check,
                                                       **tables[RECOMMENDER])
    if CHURN in tables:
        out[CHURN] = write_churn_artifacts(folder / CHURN, cutoff=cutoff, pseudonym_check=check, **tables[CHURN])
    if CLV in tables:
        out[CLV] = write_clv_artifacts(folder / CLV, cutoff=cutoff, pseudonym_check=check, **tables[CLV])
    if UPLIFT in tables:
        out[UPLIFT] = write_uplift_artifacts(folder / UPLIFT, cutoff=cutoff, pseudonym_check=check, **tables[UPLIFT])
    return out


def pseudonymised(tables: dict[str, dict[str, pd.DataFrame]], installation: Settings
                  ) -> dict[str, dict[str, pd.DataFrame]]:
    """``tables`` with every customer id pseudonymised by ``installation``'s key (the function training uses),
    the pairs recorded in its identity map."""
    out: dict[str, dict[str, pd.DataFrame]] = {}
    pairs = []
    for kind, frames in tables.items():
        out[kind] = {}
        for name, frame in frames.items():
            if "customer_id" in frame.columns:
                column, met = pseudonymise_column(frame["customer_id"], installation.pseudonym_key)
                frame = frame.assign(customer_id=column)
                pairs.append(met)
            out[kind][name] = frame
    if pairs:
        installation.identities().record(pd.concat(pairs, ignore_index=True).drop_duplicates("pseudonym"))
    return out


def share_installation(source: Path, data_dir: Path) -> None:
    """Give ``data_dir`` the pseudonym key and identity map of the data folder at ``source``: a second data
    folder of the same installation (as the API and training share one in production)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in (KEY_FILE, IDENTITY_FILE):
        if (source / name).exists():
            shutil.copy2(source / name, data_dir / name)


def settings_for(data_dir: Path, **overrides) -> ServingSettings:
    return ServingSettings(data_dir=data_dir, mlflow_tracking_uri=f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
                           poll_interval_s=overrides.pop("poll_interval_s", 3600), **overrides)


def register(settings: ServingSettings, kind: str, folder: Path, champion: bool = True) -> str:
    """Log ``folder`` as the serving artefacts of a pyfunc model version in the real registry; its version."""
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient

    class ServingFolder(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: list[str], params=None) -> list[str]:
            return model_input

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings.data_dir.joinpath("mlflow").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    experiment = client.get_experiment_by_name("clientele-serving-tests")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        "clientele-serving-tests", artifact_location=settings.artifact_root.as_uri())
    name = settings.model_name(kind)
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=ServingFolder(), artifacts={"serving": str(folder)},
                                       registered_model_name=name, pip_requirements=[])
    version = str(info.registered_model_version)
    if champion:
        client.set_registered_model_alias(name, CHAMPION, version)
    return version


def create_keys(settings: ServingSettings, rate_limit: float | None = None) -> dict[str, str]:
    """One key per scope, named storefront, crm, ingest and admin; returns name -> key."""
    keys = {}
    for name, scope in SCOPE_KEYS.items():
        _, keys[name] = create_key(settings.keys_file, name, scope, rate_limit=rate_limit)
    return keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_every_worker_ready(proc: subprocess.Popen, url: str, workers: int, log: Path,
                                  seconds: float = 90) -> None:
    """Return once /readyz answers 200 many times in a row: each worker loads its models on its own, and one
    worker's 200 says nothing of the others (fresh connections reach every worker)."""
    deadline = time.time() + seconds
    ready_in_a_row = 0
    while ready_in_a_row < 4 * workers:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.time() < deadline, log.read_text()[-3000:]
        try:
            ok = httpx.get(url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ok = False
        ready_in_a_row = ready_in_a_row + 1 if ok else 0
        time.sleep(0.05 if ok else 0.3)
