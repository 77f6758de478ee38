"""Every endpoint through TestClient on a real registry: results, filters, strategies, events, erasure."""

from __future__ import annotations

import pandas as pd
import pytest

from features.privacy import pseudonymise
from serving.schemas import (BatchRecommendationsResponse, CustomerProfile, CustomerScores, ModelsResponse,
                             RecommendationsResponse, ScoresPage, SimilarProductsResponse)
from tests.serving.helpers import CATEGORIES, customer, product

REC = "/v1/customers/{}/recommendations"


def out_of_stock(pid: str) -> bool:
    return int(pid[1:]) % 7 == 0


def bought(c: int, n_products: int = 30) -> set[str]:
    return {product(c % n_products), product((c + 1) % n_products)}


def raw_list(registry, c: int) -> pd.DataFrame:
    recs = registry.tables["recommender"]["recommendations"]
    return recs[recs.customer_id == customer(c)].sort_values("rank")


def test_personal_recommendations_follow_the_model_and_default_filters(served, registry):
    r = served.get(REC.format("C0001") + "?n=5")
    assert r.status_code == 200
    body = RecommendationsResponse.model_validate(r.json())
    assert body.strategy == "personal" and body.model_version == "recommender:1" and len(body.items) == 5
    expected = [p for p in raw_list(registry, 1).product_id if not out_of_stock(p) and p not in bought(1)][:5]
    assert [i.product_id for i in body.items] == expected
    assert all(i.reason.startswith("v1: ") for i in body.items)
    scores = [i.score for i in body.items]
    assert scores == sorted(scores, reverse=True)


def test_filters_off_give_the_raw_model_list(served, registry):
    r = served.get(REC.format("C0001") + "?n=20&exclude_bought=false&in_stock_only=false")
    raw = raw_list(registry, 1)
    assert [i["product_id"] for i in r.json()["items"]] == raw.product_id.tolist()
    assert [i["score"] for i in r.json()["items"]] == pytest.approx(raw.score.tolist())


def test_buy_again_share_mixes_bought_and_new_products_and_is_checked(served, registry):
    # C0001 bought two products; a share of 0.5 of four places gives them two, in the raw list's order.
    items = served.get(REC.format("C0001") + "?n=4&exclude_bought=false&in_stock_only=false&buy_again_share=0.5")
    ids = [i["product_id"] for i in items.json()["items"]]
    raw = raw_list(registry, 1).product_id.tolist()
    assert sum(p in bought(1) for p in ids) == 2 and len(ids) == 4
    assert ids == sorted(ids, key=raw.index)
    none = served.get(REC.format("C0001") + "?n=4&exclude_bought=false&in_stock_only=false&buy_again_share=0")
    assert not any(i["product_id"] in bought(1) for i in none.json()["items"])
    r = served.get(REC.format("C0001") + "?buy_again_share=1.5")
    assert r.status_code == 422 and "buy_again_share" in r.text


@pytest.mark.parametrize("query, check", [
    ("category=serum", lambda p: CATEGORIES[int(p[1:]) % 3] == "serum"),
    ("category=serum&category=mascara", lambda p: CATEGORIES[int(p[1:]) % 3] in ("serum", "mascara")),
    ("exclude_category=lipstick", lambda p: CATEGORIES[int(p[1:]) % 3] != "lipstick"),
    ("price_min=10&price_max=20", lambda p: 10 <= 5 + int(p[1:]) <= 20),
])
def test_filters_are_never_violated(served, query, check):
    for c in (0, 1, 2, 7, 41, 999):
        items = served.get(REC.format(customer(c)) + f"?n=30&{query}").json()["items"]
        assert items, query
        assert all(check(i["product_id"]) and not out_of_stock(i["product_id"]) for i in items), (c, query)
        assert len({i["product_id"] for i in items}) == len(items)


def test_short_personal_lists_are_topped_up_from_popular(served):
    items = served.get(REC.format("C0001") + "?n=40").json()["items"]
    # 30 products, 5 out of stock, 2 bought before: everything else, personal first, then popular.
    assert len(items) == len({i["product_id"] for i in items}) == 23
    reasons = [i["reason"] for i in items]
    assert reasons[0].startswith("v1: bought with") and reasons[-1] == "v1: popular"
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)


def test_cold_start_known_customer_gets_popular_in_their_region(served):
    body = served.get(REC.format("C0041") + "?n=3").json()  # signed up, no history, region Leeds
    assert body["strategy"] == "cold_start"
    assert all(i["reason"] == "v1: popular in Leeds" for i in body["items"])


def test_unknown_customer_gets_cold_start_popular(served):
    body = served.get(REC.format("nobody-we-know") + "?n=3").json()
    assert body["strategy"] == "cold_start" and [i["reason"] for i in body["items"]] == ["v1: popular"] * 3


def test_customer_without_profiling_consent_gets_non_personal_results(served):
    body = served.get(REC.format("C0003") + "?n=5").json()
    assert body["strategy"] == "non_personal"
    assert all(i["reason"] == "v1: popular" for i in body["items"])
    # Her history is not used either: a product she bought may be shown like to anyone else.
    assert served.get(REC.format("C0003") + "?n=5&exclude_bought=true").json() == body


def test_recent_views_fold_in_for_a_new_customer(served):
    r = served.post("/v1/events", json={"customer_id": "new-shopper", "product_id": "P010", "event_type": "view"})
    assert r.status_code == 202 and r.json()["status"] == "accepted"
    body = served.get(REC.format("new-shopper") + "?n=5").json()
    assert body["strategy"] == "cold_start"
    assert [i["product_id"] for i in body["items"]] == ["P011", "P012", "P013", "P015", "P016"]  # P014 out of stock
    assert all(i["reason"] == "similar to Item 10 you viewed" for i in body["items"])


def test_views_boost_related_items_for_a_known_customer(served):
    def ranks(body):
        return {i["product_id"]: r for r, i in enumerate(body["items"])}

    def related(p: int) -> list[str]:  # the layout's similar lists: p + 1, p + 2, ... (7, 14, 21, 28 out of stock)
        return [product((p + d) % 30) for d in (1, 2, 3) if (p + d) % 30 % 7]

    before = ranks(served.get(REC.format("C0005") + "?n=20").json())
    # The product whose related items the list ranks lowest: a cart event must lift them.
    touched = max(range(30), key=lambda p: sum(before.get(q, 20) for q in related(p)))
    served.post("/v1/events", json={"customer_id": "C0005", "product_id": product(touched), "event_type": "cart"})
    after_body = served.get(REC.format("C0005") + "?n=20").json()
    after = ranks(after_body)
    assert after_body["strategy"] == "personal"
    lifted = related(touched)
    assert sum(after.get(q, 20) for q in lifted) < sum(before.get(q, 20) for q in lifted), (before, after)
    assert any(i["reason"] == f"goes with Item {touched} in your cart" for i in after_body["items"])


def test_a_purchase_is_excluded_from_the_next_recommendations_without_retraining(served):
    top = served.get(REC.format("C0001") + "?n=1").json()["items"][0]["product_id"]
    r = served.post("/v1/events", json={"customer_id": "C0001", "product_id": top, "event_type": "purchase"})
    assert r.status_code == 202
    items = served.get(REC.format("C0001") + "?n=20").json()["items"]
    assert top not in {i["product_id"] for i in items}
    # Even with exclude_bought=false: it was bought minutes ago.
    items = served.get(REC.format("C0001") + "?n=20&exclude_bought=false").json()["items"]
    assert top not in {i["product_id"] for i in items}


def test_events_before_the_model_cutoff_change_nothing(served):
    before = served.get(REC.format("C0002") + "?n=5").json()
    served.post("/v1/events", json={"customer_id": "C0002", "product_id": before["items"][0]["product_id"],
                                    "event_type": "purchase", "timestamp": "2023-06-01T10:00:00Z"})
    assert served.get(REC.format("C0002") + "?n=5").json() == before


def test_batch_equals_single_calls_and_names_one_version(served):
    ids = ["C0001", "C0003", "C0041", "unknown-1"]
    r = served.post("/v1/recommendations/batch", json={"customer_ids": ids, "n": 4, "category": ["serum"]})
    assert r.status_code == 200
    body = BatchRecommendationsResponse.model_validate(r.json())
    assert body.model_version == "recommender:1"
    singles = [served.get(REC.format(c) + "?n=4&category=serum").json() for c in ids]
    assert [x.model_dump() for x in body.results] == singles


def test_similar_products(served):
    r = served.get("/v1/products/P005/similar?n=4")
    body = SimilarProductsResponse.model_validate(r.json())
    assert [i.product_id for i in body.items] == ["P006", "P008", "P009", "P010"]  # P007 is out of stock
    assert body.items[0].reason == "v1: similar to Item 5"
    assert served.get("/v1/products/P005/similar?n=4&in_stock_only=false").json()["items"][1]["product_id"] == "P007"
    r = served.get("/v1/products/P999/similar")
    assert r.status_code == 404 and "P999" in r.json()["detail"]


def test_customer_scores_join_churn_and_clv(served, registry):
    r = served.get("/v1/customers/C0001/scores", key="crm")
    body = CustomerScores.model_validate(r.json())
    churn = registry.tables["churn"]["scores"].set_index("customer_id").loc["C0001"]
    clv = registry.tables["clv"]["scores"].set_index("customer_id").loc["C0001"]
    assert body.model_versions == {"churn": "churn:1", "clv": "clv:1"}
    assert body.churn_probability == pytest.approx(churn.churn_probability)
    assert body.risk_band == churn.risk_band and body.churn_reasons == list(churn.churn_reasons)
    assert body.clv == pytest.approx(clv.clv) and body.p_alive == pytest.approx(clv.p_alive)
    assert body.value_at_risk == pytest.approx(churn.churn_probability * clv.clv)
    assert body.rfm_segment == clv.rfm_segment and body.lifecycle_stage == clv.lifecycle_stage
    assert body.value_tier == clv.value_tier and body.r_score == clv.r_score and body.membership_tier is None


def test_scores_of_unknown_and_non_consenting_customers_are_404(served):
    assert served.get("/v1/customers/C9999/scores", key="crm").status_code == 404
    r = served.get("/v1/customers/C0003/scores", key="crm")
    assert r.status_code == 404 and "consented" in r.json()["detail"]


def test_profile(served):
    r = served.get("/v1/customers/C0002/profile", key="crm")
    body = CustomerProfile.model_validate(r.json())
    assert body.model_version == "clv:1"
    assert body.profile["first_purchase"] == "2023-01-03T00:00:00" and body.profile["orders"] == 3
    assert body.profile["top_category"] == "mascara" and body.profile["consent_marketing"] is True
    assert served.get("/v1/customers/C9999/profile", key="crm").status_code == 404


def _export(served, query: str = "", limit: int = 7) -> list[dict]:
    rows, cursor = [], None
    while True:
        url = f"/v1/scores?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        page = ScoresPage.model_validate(served.get(url, key="crm").json())
        rows += [r.model_dump() for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return rows


def test_export_pages_cover_every_consenting_customer_once_by_value_at_risk(served):
    rows = _export(served)
    ids = [r["customer_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 39 and "C0003" not in ids
    var = [r["value_at_risk"] for r in rows]
    assert var == sorted(var, reverse=True)
    assert served.get("/v1/scores?limit=5", key="crm").json()["total"] == 39


def test_export_filters_and_sorts(served):
    high = _export(served, "risk_band=high")
    assert high and all(r["risk_band"] == "high" for r in high)
    both = _export(served, "segment=loyal&segment=champions&sort=customer_id", limit=4)
    assert {r["rfm_segment"] for r in both} == {"loyal", "champions"}
    assert [r["customer_id"] for r in both] == sorted(r["customer_id"] for r in both)
    by_clv = _export(served, "sort=clv", limit=50)
    assert [r["clv"] for r in by_clv] == sorted((r["clv"] for r in by_clv), reverse=True)


def test_export_filters_are_enumerated_and_unknown_values_are_422(served):
    # Issue 11: `?risk_band=purple` answered 200 with nothing (filters were free text in OpenAPI).
    r = served.get("/v1/scores?risk_band=purple", key="crm")
    assert r.status_code == 422 and "risk_band" in r.json()["detail"] and "high" in r.json()["detail"], r.text
    assert served.get("/v1/scores?lifecycle_stage=sleeping", key="crm").status_code == 422
    r = served.get("/v1/scores?segment=loyal&segment=nonexistent", key="crm", headers={"Accept": "text/csv"})
    assert r.status_code == 422
    assert r.json()["detail"] == ("segment: unknown value 'nonexistent' (the served scores have: "
                                  "at_risk, champions, loyal)")
    assert served.get("/v1/scores?value_tier=platinum", key="crm").status_code == 422
    params = {p["name"]: p["schema"] for p in
              served.client.get("/openapi.json").json()["paths"]["/v1/scores"]["get"]["parameters"]}
    enum = lambda name: next(s for s in params[name]["anyOf"] if s.get("type") == "array")["items"]["enum"]  # noqa
    assert enum("risk_band") == ["low", "medium", "high"]
    assert set(enum("lifecycle_stage")) >= {"new", "active", "at_risk", "lapsed"}
    assert params["sort"]["enum"][0] == "value_at_risk"


def test_export_csv_streams_the_same_rows(served):
    json_rows = _export(served, "risk_band=medium&risk_band=high")
    r = served.get("/v1/scores?risk_band=medium&risk_band=high", key="crm", headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["x-total-count"] == str(len(json_rows))
    lines = r.text.strip().split("\n")
    assert lines[0].startswith("customer_id,churn_probability,risk_band,clv,value_at_risk")
    assert [line.split(",")[0] for line in lines[1:]] == [row["customer_id"] for row in json_rows]
    assert served.get("/v1/scores?format=csv&limit=3", key="crm").text.count("\n") == 4


def test_export_cursor_belongs_to_its_filters(served):
    cursor = served.get("/v1/scores?limit=2", key="crm").json()["next_cursor"]
    r = served.get(f"/v1/scores?limit=2&risk_band=high&cursor={cursor}", key="crm")
    assert r.status_code == 422 and "cursor" in r.json()["detail"]
    r = served.get("/v1/scores?cursor=not-a-cursor", key="crm")
    assert r.status_code == 422 and "cursor" in r.json()["detail"]


def test_erasure_removes_the_customer_everywhere_at_once(served):
    assert served.get("/v1/customers/C0006/scores", key="crm").status_code == 200
    served.post("/v1/events", json={"customer_id": "C0006", "product_id": "P001", "event_type": "view"})
    r = served.delete("/v1/customers/C0006")
    assert r.status_code == 200 and r.json()["erased"] and not r.json()["already_erased"]
    assert served.get("/v1/customers/C0006/scores", key="crm").status_code == 404
    assert served.get("/v1/customers/C0006/profile", key="crm").status_code == 404
    assert served.get(REC.format("C0006")).json()["strategy"] == "non_personal"
    assert "C0006" not in [r["customer_id"] for r in _export(served, limit=100)]
    erased = served.settings.erasure_file.read_text().split()
    assert erased == [pseudonymise("C0006", served.settings.pseudonym_key)]
    journal = "".join(p.read_text() for p in served.settings.events_dir.glob("events-*.jsonl"))
    assert "C0006" not in journal and pseudonymise("C0006", served.settings.pseudonym_key) in journal
    assert served.delete("/v1/customers/C0006").json()["already_erased"] is True


def test_snapshots_built_after_an_erasure_leave_the_customer_out(served):
    from serving.snapshot import assemble

    key = served.settings.pseudonym_key
    assert "C0007" in served.services.store.snapshot.own_ids.tolist()
    served.delete("/v1/customers/C0007")
    snap = served.services.store.snapshot
    rebuilt = assemble(snap.models, {"recommender": snap.recommender, "churn": snap.churn, "clv": snap.clv},
                       set(served.services.erasures.pseudonyms), served.settings.identities())
    gone, kept = pseudonymise("C0007", key), pseudonymise("C0008", key)
    assert gone not in rebuilt.customer_index and kept in rebuilt.customer_index
    assert not rebuilt.active[snap.customer_index[gone]]
    # The erasure took the customer out of the identity map: no export can name them again.
    assert rebuilt.own_ids[snap.customer_index[gone]] is None
    assert rebuilt.own_ids[snap.customer_index[kept]] == "C0008"
    assert "C0007" not in rebuilt.own_ids[rebuilt.export().codes].tolist()


def test_models_and_reload(served):
    body = ModelsResponse.model_validate(served.get("/v1/models", key="crm").json())
    assert body.ready and {m.label for m in body.models} == {"recommender:1", "churn:1", "clv:1"}
    assert body.last_error is None
    r = served.post("/v1/admin/reload")
    assert r.status_code == 200 and r.json()["changed"] is False


def test_health_readiness_and_metrics(served):
    assert served.get("/healthz", key=None).json() == {"status": "ok"}
    ready = served.get("/readyz", key=None)
    assert ready.status_code == 200 and ready.json()["missing"] == []
    served.get(REC.format("C0001"))
    text = served.get("/metrics", key=None).text
    assert 'route="/v1/customers/{customer_id}/recommendations"' in text
    assert "C0001" not in text
    assert 'clientele_model_version{kind="recommender"} 1.0' in text
    assert 'clientele_model_reloads_total{outcome="swapped"}' in text


def test_not_ready_until_models_load(registry, tmp_path):
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.settings import ServingSettings
    from tests.serving.helpers import create_keys

    settings = ServingSettings(data_dir=tmp_path, mlflow_tracking_uri=registry.settings.tracking_uri,
                               cache_path=registry.root / "cache")
    keys = create_keys(settings)
    with TestClient(create_app(settings, start_background=False)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["missing"] == ["recommender", "churn", "clv"]
        r = client.get(REC.format("C0001"), headers={"X-API-Key": keys["storefront"]})
        assert r.status_code == 503 and r.headers["retry-after"]
        assert client.get("/v1/models", headers={"X-API-Key": keys["crm"]}).json()["ready"] is False


def test_a_500_is_logged_without_the_raw_customer_id(served, caplog):
    import asyncio

    from serving.app import LoggedErrorsStayLogged

    app = served.client.app

    @app.get("/v1/customers/{customer_id}/explode")
    async def explode(customer_id: str):
        raise KeyError(f"no row for {customer_id}")

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/v1/customers/C0001/explode", "raw_path": b"/v1/customers/C0001/explode", "query_string": b"",
             "root_path": "", "headers": [(b"host", b"test")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "app": app}
    with caplog.at_level("ERROR"):
        asyncio.run(LoggedErrorsStayLogged(app)(scope, receive, send))  # nothing escapes for uvicorn to log
    assert sent[0]["status"] == 500
    text = caplog.text
    assert "KeyError" in text and "C0001" not in text
    assert pseudonymise("C0001", served.settings.pseudonym_key) in text
