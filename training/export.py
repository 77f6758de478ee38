"""Serving artefacts: the precomputed tables each registered model carries for the API to load, in the layout
that :mod:`training.layout` defines (file names, columns, manifest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.codes import factorize, texts
from features.columns import Columns as C
from features.progress import blocks
from training.layout import CHANNELS_FILE, INVENTORY_FILE, write_campaign_reports, write_manifest, write_moments

RISK_BANDS = ("low", "medium", "high")


def profiling_allowed(features: pd.DataFrame) -> pd.DataFrame:
    """The rows of customers whose scores may be produced: everyone but those who refused profiling (a missing
    flag counts as consent, as the validation report notes)."""
    if C.consent_profiling not in features.columns:
        return features
    return features[features[C.consent_profiling].fillna(True).to_numpy(dtype=bool)].reset_index(drop=True)


def risk_band(probability: np.ndarray, medium: float, high: float) -> np.ndarray:
    """low below ``medium``, high from ``high``, medium between."""
    probability = np.asarray(probability, float)
    return np.where(probability >= high, "high", np.where(probability >= medium, "medium", "low"))


def export_churn(scores: pd.DataFrame, out_dir: Path, cutoff: pd.Timestamp, horizon_days: int,
                 medium: float, high: float, pseudonym_check: str) -> Path:
    """``scores``: customer_id, churn_probability, churn_reasons (lists of text)."""
    frame = pd.DataFrame({
        C.customer_id: scores[C.customer_id].astype("str").to_numpy(),
        "churn_probability": scores["churn_probability"].to_numpy(dtype=float),
        "risk_band": risk_band(scores["churn_probability"].to_numpy(), medium, high),
        "churn_reasons": scores["churn_reasons"].to_numpy(),
    })
    write_manifest(out_dir, "churn", cutoff, pseudonym_check, horizon_days=horizon_days,
                   risk_bands={"medium": medium, "high": high})
    frame.to_parquet(out_dir / "scores.parquet", index=False)
    return out_dir


def export_uplift(scores: pd.DataFrame, out_dir: Path, cutoff: pd.Timestamp, pseudonym_check: str,
                  campaigns: dict[str, Any] | None = None, **manifest: Any) -> Path:
    """``scores``: customer_id, uplift, incremental_spend, expected_incremental_value, best_offer,
    consent_marketing (training.campaigns.UpliftScorer.score); ``campaigns``: the campaign reports
    (training.campaigns.campaign_reports); ``manifest``: what the manifest says of the model beyond the usual."""
    write_manifest(out_dir, "uplift", cutoff, pseudonym_check, **manifest)
    scores.to_parquet(out_dir / "scores.parquet", index=False)
    if campaigns is not None:
        write_campaign_reports(out_dir, campaigns)
    return out_dir


PROFILE_COLUMNS = {
    "frequency": "orders", "monetary_total": "total_spend", "monetary_avg_order": "avg_order_value",
    "distinct_products": "distinct_products", "distinct_categories": "distinct_categories", "region": "region",
    "member_tier": "member_tier", "share_store": "share_store", "share_online": "share_online",
    "share_app": "share_app", "consent_profiling": "consent_profiling", "consent_marketing": "consent_marketing",
}


def home_stores(transactions: pd.DataFrame | None, cutoff: pd.Timestamp) -> pd.DataFrame | None:
    """Each customer's home store: the store of most of their purchases before ``cutoff`` (orders when the log has
    order ids, else lines; ties to the store bought at last) and its share of their purchases in any channel
    (``home_store``, ``home_store_share``); None when the log has no ``store_id``."""
    if transactions is None or C.store_id not in transactions.columns:
        return None
    keep = (transactions[C.timestamp] < cutoff).to_numpy(dtype=bool)
    if C.is_return in transactions.columns:
        keep = keep & ~transactions[C.is_return].fillna(False).to_numpy(dtype=bool)
    rows = np.flatnonzero(keep)
    if C.order_id in transactions.columns:
        # each order's first row, found on the id columns' factor codes (worked out once per column) instead of
        # a drop_duplicates that hashes the text of every row
        customers, _ = factorize(transactions[C.customer_id])
        orders, _ = factorize(transactions[C.order_id])
        key = customers[rows].astype(np.int64) * (int(orders.max(initial=-1)) + 2) + orders[rows] + 1
        rows = rows[np.sort(np.unique(key, return_index=True)[1])]
    tx = transactions[[C.customer_id, C.store_id, C.timestamp]].take(rows)
    total = tx.groupby(C.customer_id, observed=True).size()
    in_store = tx[tx[C.store_id].notna()]
    counts = (in_store.groupby([C.customer_id, C.store_id], observed=True)
              .agg(n=(C.timestamp, "size"), last=(C.timestamp, "max")).reset_index()
              .sort_values([C.customer_id, "n", "last"], ascending=[True, False, False], kind="stable")
              .drop_duplicates(C.customer_id))
    return pd.DataFrame({C.customer_id: counts[C.customer_id].astype("str").to_numpy(),
                         "home_store": counts[C.store_id].astype("str").to_numpy(),
                         "home_store_share": (counts["n"].to_numpy()
                                              / total.reindex(counts[C.customer_id]).to_numpy()).round(4)})


def profiles(features: pd.DataFrame, cutoff: pd.Timestamp, transactions: pd.DataFrame | None = None) -> pd.DataFrame:
    """What the CRM shows on a customer page, from the same features the models saw (and the home store, from
    ``transactions``, :func:`home_stores`)."""
    out = pd.DataFrame({C.customer_id: features[C.customer_id].astype("str").to_numpy()})
    cutoff = pd.Timestamp(cutoff)
    for days, name in (("tenure_days", "first_purchase"), ("recency_days", "last_purchase")):
        if days in features.columns:
            out[name] = (cutoff - pd.to_timedelta(features[days].to_numpy(dtype=float), unit="D")).round("s")
    for source, target in PROFILE_COLUMNS.items():
        if source in features.columns:
            out[target] = features[source].to_numpy()
    homes = home_stores(transactions, cutoff)
    if homes is not None:
        out = out.merge(homes, on=C.customer_id, how="left")
    return out


def export_clv(values: pd.DataFrame, segments: pd.DataFrame, features: pd.DataFrame, out_dir: Path,
               cutoff: pd.Timestamp, pseudonym_check: str, moments: pd.DataFrame | None = None,
               transactions: pd.DataFrame | None = None) -> Path:
    """``values``: training.churn.clv_frame output; ``segments``: models.segments.segment_customers output;
    ``moments``: models.moments.detect.find_moments output (written as the optional moments table);
    ``transactions``: the log the profiles' home store is read from."""
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
    write_manifest(out_dir, "clv", cutoff, pseudonym_check)
    frame.to_parquet(out_dir / "scores.parquet", index=False)
    profiles(features, cutoff, transactions).to_parquet(out_dir / "profiles.parquet", index=False)
    if moments is not None:
        write_moments(out_dir, moments)
    return out_dir


def _products(catalog: Any, new_arrivals: np.ndarray) -> pd.DataFrame:
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
        "new": np.asarray(new_arrivals, dtype=bool),
    })


def _store_tables(catalog: Any, out_dir: Path) -> None:
    """The optional inventory and channel tables of the serving layout (:mod:`training.layout`)."""
    products = np.asarray(catalog.products.external_ids, dtype=object)
    stock = catalog.stock
    if stock is not None:
        counts = np.diff(np.asarray(stock.offsets))
        stores = np.asarray(stock.stores, dtype=object)
        empty = stores[counts == 0]  # listed with nothing on the shelf: one row without a product keeps them listed
        pd.DataFrame({"store_id": pd.Series(np.concatenate([np.repeat(stores, counts), empty]), dtype="str"),
                      C.product_id: pd.Series(np.concatenate([products[np.asarray(stock.items, dtype=np.int64)],
                                                              np.full(len(empty), None, dtype=object)]), dtype="str")}
                     ).to_parquet(out_dir / INVENTORY_FILE, index=False)
    if catalog.channel_boost is not None:
        n = len(products)
        pd.DataFrame({"channel": pd.Series(np.repeat(np.asarray(catalog.channels, dtype=object), n), dtype="str"),
                      C.product_id: pd.Series(np.tile(products, len(catalog.channels)), dtype="str"),
                      "boost": np.asarray(catalog.channel_boost, dtype=np.float32).ravel()}
                     ).to_parquet(out_dir / CHANNELS_FILE, index=False)


def _lists_frame(lists: Any, keys: np.ndarray, key: str, item: str, products: np.ndarray) -> pd.DataFrame:
    """Ranked lists (:class:`models.recommenders.base.CandidateLists`) as rows: key, rank (1 = best), item,
    score, reason."""
    counts = np.diff(lists.offsets)
    rank = np.arange(len(lists.items)) - np.repeat(lists.offsets[:-1], counts) + 1
    return pd.DataFrame({key: texts(keys, np.repeat(np.arange(len(keys)), counts)), "rank": rank.astype(np.int32),
                         item: texts(products, lists.items),
                         "score": lists.scores.astype(np.float32),
                         "reason": texts(lists.reasons)})


def export_recommender(model: Any, out_dir: Path, preset: str, pseudonym_check: str, batch: int = 5000) -> Path:
    """Write the model's lists in the serving layout: the very lists :meth:`Recommender.recommend` reads, so the
    API's policy (``models/recommenders/policy.py``) answers exactly what the model answers.

    Every personal customer's candidates (:meth:`candidate_lists`), every product's similar products
    (:meth:`similar_lists`), the popular lists, what each customer bought, the products and customers, and a
    manifest with the policy's settings (the default of ``exclude_bought`` and the event settings).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    customers = model.customers_.external_ids
    products = model.catalog_.products.external_ids
    personal = np.flatnonzero(model.active_ & model.consent_)
    # Batches of customers, each written as its own row group: memory does not grow with the customer count.
    writer = None
    try:
        for start in blocks("writing recommendations", len(personal), batch, "customers"):
            users = personal[start:start + batch]
            table = pa.Table.from_pandas(_lists_frame(model.candidate_lists(users), customers[users], C.customer_id,
                                                      C.product_id, products), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(out_dir / "recommendations.parquet", table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        _lists_frame(_empty_lists(), np.empty(0, dtype=object), C.customer_id, C.product_id, products).to_parquet(
            out_dir / "recommendations.parquet", index=False)
    codes = np.arange(len(products))
    similar = [_lists_frame(model.similar_lists(codes[start:start + batch]), products[start:start + batch],
                            C.product_id, "similar_product_id", products)
               for start in range(0, len(products), batch)]
    pd.concat(similar, ignore_index=True).to_parquet(out_dir / "similar.parquet", index=False)
    bought = model.bought_.tocoo()
    pd.DataFrame({C.customer_id: texts(customers, bought.row), C.product_id: texts(products, bought.col)}).to_parquet(
        out_dir / "bought.parquet", index=False)
    popular_frame(model).to_parquet(out_dir / "popular.parquet", index=False)
    _products(model.catalog_, model.new_arrivals()).to_parquet(out_dir / "products.parquet", index=False)
    _store_tables(model.catalog_, out_dir)
    region = np.asarray(model.region_)
    regions = np.append(np.asarray(model.regions_, dtype=object), None)
    pd.DataFrame({C.customer_id: pd.Series(customers, dtype="str"),
                  "region": pd.Series(regions[np.where(region >= 0, region, len(regions) - 1)], dtype="str"),
                  "consent_profiling": np.asarray(model.consent_, dtype=bool)}).to_parquet(
        out_dir / "customers.parquet", index=False)
    write_manifest(out_dir, "recommender", model.cutoff_, pseudonym_check, preset=preset,
                   exclude_bought_default=bool(model.params.exclude_bought),
                   buy_again_share_default=model.params.buy_again_share,
                   new_arrival_share_default=model.params.new_arrival_share, k=model.params.serve_depth,
                   events=model.event_settings().as_dict())
    return out_dir


def _empty_lists() -> Any:
    from models.recommenders.base import CandidateLists

    return CandidateLists(offsets=np.zeros(1, dtype=np.int64), items=np.empty(0, dtype=np.int64),
                          scores=np.empty(0, dtype=np.float32), reasons=np.empty(0, dtype=object), bought=None)


def popular_frame(model: Any) -> pd.DataFrame:
    """The model's popular lists (overall, per region, per category) as rows of the serving layout."""
    products = model.catalog_.products.external_ids
    frames = []
    for (scope, key), ranked in model.popular_lists().items():
        frames.append(pd.DataFrame({"scope": scope, "key": key, "rank": np.arange(1, len(ranked) + 1, dtype=np.int32),
                                    C.product_id: pd.Series(products[ranked.items], dtype="str"),
                                    "score": np.asarray(ranked.scores, dtype=np.float32),
                                    "reason": pd.Series(ranked.reasons, dtype="str")}))
    return pd.concat(frames, ignore_index=True)
