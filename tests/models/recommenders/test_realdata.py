"""Smoke runs on UCI Online Retail (skipped when ../shared/datasets is absent)."""

from __future__ import annotations

import pytest

from features.io import load_dataset
from models.recommenders import BM25, Filters, RepeatPurchase
from tests.models.recommenders.conftest import ROOT, realdata
from training.evaluate_recommender import evaluate_model, tables_before, temporal_split, window_start

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def online_retail():
    path = realdata("online_retail.parquet")
    return load_dataset(path, ROOT / "configs" / "datasets" / "online_retail.yaml").tables


def test_protocol_and_a_peer_on_online_retail(online_retail):
    start, end = window_start(online_retail, 30)
    assert str(start.date()) == "2011-11-10"
    split = temporal_split(online_retail, start, end)
    assert 1000 < len(split.customers) < 2000
    model = RepeatPurchase(half_life_days=60).fit(tables_before(online_retail, start), cutoff=start)
    metrics = evaluate_model(model, split, new_variant=False)
    assert 0.25 < metrics["ndcg@10"] < 0.5 and 0.25 < metrics["recall@20"] < 0.5


def test_reasons_name_products_and_regions(online_retail):
    model = BM25(neighbours=100).fit(online_retail)
    customer = model.customers_.external_ids[model.active_][0]
    out = model.recommend([customer], n=10, filters=Filters(exclude_bought=True))
    together = out[out["reason"].str.startswith("bought together with ")]
    assert len(together) and not together["reason"].str.fullmatch(r"bought together with \d+\w*").any()
    cold = model.recommend(["unknown"], n=5)
    assert (cold["strategy"] == "cold_start").all()
    assert "United Kingdom" in set(model.regions_)  # regions come from the mapping's kept Country column
