"""Serving artefacts: the precomputed tables each registered model carries for the API to load.

Layout of one model's ``serving/`` folder (the contract with :mod:`serving.artifacts`):

recommender
    ``manifest.json`` {"kind": "recommender", "format_version": 1, "cutoff", "preset", "exclude_bought_default",
    "k", "created_at"}; ``products.parquet`` (product_id, name, category, price, in_stock);
    ``recommendations.parquet`` (customer_id, rank, product_id, score, reason: top-k personal recommendations,
    already-bought products included, sorted by customer then rank); ``bought.parquet`` (customer_id,
    product_id); ``similar.parquet`` (product_id, rank, similar_product_id, score, reason);
    ``popular.parquet`` (scope all/region/category, key, rank, product_id, score, reason);
    ``customers.parquet`` (customer_id, region, consent_profiling).
churn
    ``manifest.json`` {"kind": "churn", "format_version": 1, "cutoff", "horizon_days", "created_at"};
    ``scores.parquet`` (customer_id, churn_probability, risk_band, churn_reasons).
clv
    ``manifest.json`` {"kind": "clv", "format_version": 1, "cutoff", "created_at"}; ``scores.parquet``
    (customer_id, p_alive, expected_purchases_12m, expected_spend, clv, value_tier, rfm_segment, r_score,
    f_score, m_score, lifecycle_stage, membership_tier); ``profiles.parquet`` (customer_id, first_purchase,
    last_purchase, orders, total_spend, avg_order_value, distinct_products, region, member_tier, channel
    shares, consent flags).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.columns import Tables

FORMAT_VERSION = 1
RISK_BANDS = ("low", "medium", "high")


def profiling_allowed(features: pd.DataFrame) -> pd.DataFrame:
    """The rows of customers whose scores may be produced: everyone but those who refused profiling (a missing
    flag counts as consent, as the validation report notes)."""
    if C.consent_profiling not in features.columns:
        return features
    return features[features[C.consent_profiling].fillna(True).to_numpy(dtype=bool)].reset_index(drop=True)


def write_manifest(out_dir: Path, kind: str, cutoff: pd.Timestamp, **extra: Any) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"kind": kind, "format_version": FORMAT_VERSION, "cutoff": pd.Timestamp(cutoff).isoformat(),
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))


def risk_band(probability: np.ndarray, medium: float, high: float) -> np.ndarray:
    """low below ``medium``, high from ``high``, medium between."""
    probability = np.asarray(probability, float)
    return np.where(probability >= high, "high", np.where(probability >= medium, "medium", "low"))


def export_churn(scores: pd.DataFrame, out_dir: Path, cutoff: pd.Timestamp, horizon_days: int,
                 medium: float, high: float) -> Path:
    """``scores``: customer_id, churn_probability, churn_reasons (lists of text)."""
    frame = pd.DataFrame({
        C.customer_id: scores[C.customer_id].astype("str").to_numpy(),
        "churn_probability": scores["churn_probability"].to_numpy(dtype=float),
        "risk_band": risk_band(scores["churn_probability"].to_numpy(), medium, high),
        "churn_reasons": scores["churn_reasons"].to_numpy(),
    })
    write_manifest(out_dir, "churn", cutoff, horizon_days=horizon_days, risk_bands={"medium": medium, "high": high})
    frame.to_parquet(out_dir / "scores.parquet", index=False)
    return out_dir


PROFILE_COLUMNS = {
    "frequency": "orders", "monetary_total": "total_spend", "monetary_avg_order": "avg_order_value",
    "distinct_products": "distinct_products", "distinct_categories": "distinct_categories", "region": "region",
    "member_tier": "member_tier", "share_store": "share_store", "share_online": "share_online",
    "share_app": "share_app", "consent_profiling": "consent_profiling", "consent_marketing": "consent_marketing",
}


def profiles(features: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """What the CRM shows on a customer page, from the same features the models saw."""
    out = pd.DataFrame({C.customer_id: features[C.customer_id].astype("str").to_numpy()})
    cutoff = pd.Timestamp(cutoff)
    for days, name in (("tenure_days", "first_purchase"), ("recency_days", "last_purchase")):
        if days in features.columns:
            out[name] = (cutoff - pd.to_timedelta(features[days].to_numpy(dtype=float), unit="D")).round("s")
    for source, target in PROFILE_COLUMNS.items():
        if source in features.columns:
            out[target] = features[source].to_numpy()
    return out


def export_clv(values: pd.DataFrame, segments: pd.DataFrame, features: pd.DataFrame, out_dir: Path,
               cutoff: pd.Timestamp) -> Path:
    """``values``: training.churn.clv_frame output; ``segments``: models.segments.segment_customers output."""
    seg = segments.set_index(C.customer_id)
    frame = pd.DataFrame({
        C.customer_id: values[C.customer_id].astype("str").to_numpy(),
        "p_alive": values["p_alive"].to_numpy(dtype=float),
        "expected_purchases_12m": values["expected_purchases_12m"].to_numpy(dtype=float),
        "expected_spend": values["expected_spend"].to_numpy(dtype=float),
        "clv": values["clv"].to_numpy(dtype=float),
    })
    for col in ("value_tier", "rfm_segment", "r_score", "f_score", "m_score", "lifecycle_stage", "membership_tier"):
        column = seg[col].reindex(frame[C.customer_id])
        frame[col] = column.astype("str").where(column.notna()).to_numpy() if isinstance(
            column.dtype, pd.CategoricalDtype) else column.to_numpy()
    write_manifest(out_dir, "clv", cutoff)
    frame.to_parquet(out_dir / "scores.parquet", index=False)
    profiles(features, cutoff).to_parquet(out_dir / "profiles.parquet", index=False)
    return out_dir


def _products(catalog: Any) -> pd.DataFrame:
    """Catalogue attributes the API filters on, for every product the recommender knows."""
    category = np.asarray(catalog.category, dtype=np.int64)
    names = np.asarray(catalog.categories, dtype=object)
    return pd.DataFrame({
        C.product_id: pd.Series(catalog.products.external_ids, dtype="str"),
        "name": pd.Series(catalog.names, dtype="str"),
        "category": pd.Series(np.where(category >= 0, names[np.clip(category, 0, None)] if len(names) else None,
                                       None), dtype="str"),
        "price": np.asarray(catalog.price, dtype=float),
        "in_stock": np.asarray(catalog.in_stock, dtype=bool),
    })


def _customers(tables: dict[str, pd.DataFrame], customer_ids: np.ndarray) -> pd.DataFrame:
    out = pd.DataFrame({C.customer_id: pd.Series(customer_ids, dtype="str")})
    customers = tables.get(Tables.customers)
    tx = tables[Tables.transactions]
    region = None
    if customers is not None and C.region in customers.columns:
        region = customers.drop_duplicates(C.customer_id).set_index(C.customer_id)[C.region]
    elif C.region in tx.columns:
        region = tx.drop_duplicates(C.customer_id, keep="last").set_index(C.customer_id)[C.region]
    out["region"] = region.reindex(out[C.customer_id]).to_numpy() if region is not None else None
    consent = None
    if customers is not None and C.consent_profiling in customers.columns:
        consent = customers.drop_duplicates(C.customer_id).set_index(C.customer_id)[C.consent_profiling]
    out["consent_profiling"] = (consent.reindex(out[C.customer_id]).fillna(True).astype(bool).to_numpy()
                                if consent is not None else True)
    return out


def _long(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    frame = frame.copy()
    frame["rank"] = frame["rank"].astype(np.int32) - 1  # the API's ranks count from 0 within a list
    return frame.sort_values([key, "rank"], kind="stable").reset_index(drop=True)


def export_recommender(model: Any, tables: dict[str, pd.DataFrame], out_dir: Path, k: int, similar_k: int,
                       preset: str, exclude_bought_default: bool, batch: int = 5000) -> Path:
    """Precompute every known customer's top-k, every product's similar products and the popular lists."""
    from models.recommenders.filters import Filters

    out_dir.mkdir(parents=True, exist_ok=True)
    customers = model.customers_.external_ids
    products = model.catalog_.products.external_ids
    everything = Filters(exclude_bought=False, in_stock_only=False)
    parts = []
    for start in range(0, len(customers), batch):
        recs = model.recommend(list(customers[start:start + batch]), n=k, filters=everything)
        parts.append(recs[recs["strategy"] == "personal"][[C.customer_id, "rank", C.product_id, "score", "reason"]])
    recommendations = _long(pd.concat(parts, ignore_index=True), C.customer_id)
    recommendations.to_parquet(out_dir / "recommendations.parquet", index=False)
    similar = []
    for start in range(0, len(products), batch):
        similar.append(model.similar(list(products[start:start + batch]), n=similar_k, filters=everything))
    _long(pd.concat(similar, ignore_index=True), C.product_id).to_parquet(out_dir / "similar.parquet", index=False)
    bought = model.bought_.tocoo()
    pd.DataFrame({C.customer_id: customers[bought.row], C.product_id: products[bought.col]}).to_parquet(
        out_dir / "bought.parquet", index=False)
    popular_lists(model, k).to_parquet(out_dir / "popular.parquet", index=False)
    _products(model.catalog_).to_parquet(out_dir / "products.parquet", index=False)
    _customers(tables, customers).to_parquet(out_dir / "customers.parquet", index=False)
    write_manifest(out_dir, "recommender", model.cutoff_, preset=preset, exclude_bought_default=exclude_bought_default,
                   k=k)
    return out_dir


def popular_lists(model: Any, k: int) -> pd.DataFrame:
    """Popular products overall, per region and per category, ranked by the model's own cold-start fallback."""
    products = model.catalog_.products.external_ids
    ok = np.ones(len(products), dtype=bool)
    lists = [("all", "", model._popular(-1, ok, k))]
    lists += [("region", str(name), model._popular(i, ok, k)) for i, name in enumerate(model.regions_)]
    lists += [("category", str(name), model._popular_in_category(i, ok, k))
              for i, name in enumerate(model.catalog_.categories)]
    frames = []
    for scope, key, (picks, scores, why) in lists:
        picks = np.asarray(picks, dtype=np.int64)
        frames.append(pd.DataFrame({"scope": scope, "key": key, "rank": np.arange(len(picks), dtype=np.int32),
                                    C.product_id: products[picks], "score": np.asarray(scores, float),
                                    "reason": np.broadcast_to(np.asarray(why, dtype=object), len(picks))}))
    return pd.concat(frames, ignore_index=True)
