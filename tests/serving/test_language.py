"""Reasons and labels in the reader's language (Accept-Language), codes the same in every language."""

from __future__ import annotations

import csv
import io

import pytest

from features.i18n import label, message
from features.settings import CHURN, CLV
from tests.serving.helpers import layout_tables, product, register, settings_for, write_layouts

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


@pytest.fixture(scope="module")
def worded(registry):
    """Models under their own names whose reasons are messages, as training writes them."""
    settings = settings_for(registry.root, model_prefix="worded")
    tables = layout_tables(tag="v1")
    rec = tables["recommender"]
    rec["recommendations"]["reason"] = [message("rec.due_in", every_days=30, due_days=d % 5 + 1)
                                        if d % 2 else message("rec.bought_together", product="Rose ring")
                                        for d in range(len(rec["recommendations"]))]
    rec["similar"]["reason"] = message("rec.also_bought", product="Rose ring")
    rec["popular"]["reason"] = message("rec.popular")
    tables[CHURN]["scores"]["churn_reasons"] = [[message("churn.recency", days=40 + c), message("churn.channel")]
                                                for c in range(len(tables[CHURN]["scores"]))]
    moments = tables[CLV]["moments"]
    moments["description"] = [message("moment.birthday", day=str(d.date())) for d in moments["date"]]
    moments["reasons"] = [[message("rec.popular"), message("rec.bought_before")] for _ in range(len(moments))]
    for kind, folder in write_layouts(registry.root / "layouts-worded", tables, installation=settings).items():
        register(settings, kind, folder)
    return dict(model_prefix="worded")


@pytest.fixture
def served_worded(make_served, worded):
    return make_served("worded", **worded)


def test_recommendations_speak_the_readers_language_with_the_same_items_and_codes(served_worded):
    for fast in (True, False):  # the storefront's fast lane and FastAPI's own handling
        served_worded.services.settings.fast_path = fast
        en = served_worded.get("/v1/customers/C0001/recommendations?n=6", key="storefront")
        zh = served_worded.get("/v1/customers/C0001/recommendations?n=6", key="storefront", headers=ZH)
        assert en.status_code == zh.status_code == 200
        assert en.headers["content-language"] == "en" and zh.headers["content-language"] == "zh-CN"
        assert "accept-language" in zh.headers["vary"].lower()
        e, z = en.json()["items"], zh.json()["items"]
        assert [(i["product_id"], i["score"], i["reason_code"]) for i in e] == \
               [(i["product_id"], i["score"], i["reason_code"]) for i in z]
        assert {i["reason_code"] for i in e} == {"rec.due_in", "rec.bought_together"}
        assert "bought together with Rose ring" in [i["reason"] for i in e]
        assert "常与 Rose ring 一起购买" in [i["reason"] for i in z]
        assert any(i["reason"].startswith("您大约每30天购买一次") for i in z)
    similar = served_worded.get("/v1/products/P001/similar?n=3", key="storefront", headers=ZH).json()["items"]
    assert [i["reason"] for i in similar] == ["购买了 Rose ring 的顾客也购买了此商品"] * 3


def test_live_event_reasons_and_batches_are_worded_too(served_worded):
    url = "/v1/customers/C0005/recommendations?n=20"
    before = {i["product_id"]: r for r, i in enumerate(served_worded.get(url, key="storefront").json()["items"])}
    # The product whose related items (the layout's similar lists: p + 1, p + 2, ...) rank lowest.
    touched = max(range(30), key=lambda p: sum(before.get(product((p + d) % 30), 20) for d in (1, 2, 3)))
    served_worded.post("/v1/events", json={"customer_id": "C0005", "product_id": product(touched),
                                           "event_type": "cart"}, key="admin")
    zh = served_worded.get(url, key="storefront", headers=ZH).json()
    assert any(i["reason_code"] == "rec.event_cart" and i["reason"] == f"与您购物车中的 Item {touched} 相配"
               for i in zh["items"]), zh
    batch = served_worded.post("/v1/recommendations/batch", json={"customer_ids": ["C0001", "stranger"], "n": 3},
                               key="storefront", headers=ZH).json()
    assert all(i["reason"] and i["reason"].isascii() is False for r in batch["results"] for i in r["items"])


def test_scores_give_codes_reasons_and_labels_per_language(served_worded):
    en = served_worded.get("/v1/customers/C0005/scores", key="crm").json()
    zh = served_worded.get("/v1/customers/C0005/scores", key="crm", headers=ZH).json()
    assert en["churn_reason_codes"] == zh["churn_reason_codes"] == ["churn.recency", "churn.channel"]
    assert en["churn_reasons"] == ["no purchase for 45 days", "shops through one channel only"]
    assert zh["churn_reasons"] == ["已45天未购买", "只通过一个渠道购物"]
    assert en["risk_band"] == zh["risk_band"] and zh["labels"]["risk_band"] in {"低", "中", "高"}
    assert en["rfm_segment"] == zh["rfm_segment"]
    assert zh["labels"]["rfm_segment"] == label("segment", zh["rfm_segment"], "zh-CN")
    assert zh["labels"]["lifecycle_stage"] == label("lifecycle", zh["lifecycle_stage"], "zh-CN") != \
        en["labels"]["lifecycle_stage"]

    page = served_worded.get("/v1/scores?limit=5&sort=customer_id", key="crm", headers=ZH).json()
    assert all(row["churn_reasons"][0].startswith("已") and row["labels"]["risk_band"] in {"低", "中", "高"}
               for row in page["items"])
    text = served_worded.get("/v1/scores?sort=customer_id", key="crm",
                             headers={**ZH, "Accept": "text/csv"}).text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows and all(r["risk_band"] in {"low", "medium", "high"} for r in rows)
    assert all(r["risk_band_label"] in {"低", "中", "高"} and r["churn_reasons"].startswith("已") for r in rows)


def test_unknown_or_hostile_languages_fall_back_to_english(served_worded):
    for header in ("fr-FR", "x" * 400, "zh;q=nope, en", ";;;,,,"):
        r = served_worded.get("/v1/customers/C0001/recommendations?n=2", key="storefront",
                              headers={"Accept-Language": header})
        assert r.status_code == 200 and r.headers["content-language"] == "en", header
        assert all(i["reason"].isascii() for i in r.json()["items"])


def test_openapi_documents_the_language_header(served_worded):
    spec = served_worded.get("/openapi.json", key=None).json()
    params = spec["paths"]["/v1/customers/{customer_id}/recommendations"]["get"]["parameters"]
    assert any(p["name"] == "Accept-Language" and p["in"] == "header" for p in params)


def test_moments_are_described_in_the_readers_language(served_worded):
    en = served_worded.get("/v1/moments?limit=3", key="crm").json()["items"]
    zh = served_worded.get("/v1/moments?limit=3", key="crm", headers=ZH).json()["items"]
    assert en and [m["customer_id"] for m in en] == [m["customer_id"] for m in zh]
    assert all(m["description_code"] == "moment.birthday" for m in zh)
    assert all(e["description"].startswith("birthday on ") and z["description"].endswith("生日")
               for e, z in zip(en, zh))
    assert all(z["reasons"] == ["当下热销", "您以前购买过"] for z in zh)
    text = served_worded.get("/v1/moments", key="crm", headers={**ZH, "Accept": "text/csv"}).text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows and all(r["description"].endswith("生日") and r["description_code"] == "moment.birthday"
                        for r in rows)
