"""Strict input limits: 422 with a one-line message naming the field, 413 past the body cap."""

from __future__ import annotations

import pytest

from serving.schemas import CUSTOMER_ID_RULE, ID_RULE

REC = "/v1/customers/{}/recommendations"


@pytest.mark.parametrize("url, detail", [
    (REC.format("C0001") + "?n=101", "n: must be at most 100"),
    (REC.format("C0001") + "?n=0", "n: must be at least 1"),
    (REC.format("C0001") + "?n=ten", "n: Input should be a valid integer, unable to parse string as an integer"),
    # Customer ids follow the data contract (any text up to 128 characters, stripped), not the product id rule.
    (REC.format("x" * 129), f"customer_id: must be {CUSTOMER_ID_RULE}"),
    (REC.format("%20bad-id"), f"customer_id: must be {CUSTOMER_ID_RULE}"),
    (REC.format("C0001") + "?price_min=-1", "price_min: must be at least 0"),
    (REC.format("C0001") + "?price_min=30&price_max=10", "price_min: must not exceed price_max (10)"),
    (REC.format("C0001") + "?" + "&".join(["category=a"] * 21), "category: must have at most 20 items"),
    ("/v1/products/P%2F1/similar", None),  # a slash never reaches the route: 404
    ("/v1/products/" + "p" * 65 + "/similar", f"product_id: must be {ID_RULE}"),
    ("/v1/scores?limit=1001", "limit: must be at most 1000"),
    ("/v1/scores?sort=name", "sort: Input should be 'value_at_risk', 'churn_probability', 'clv', 'p_alive', "
                             "'customer_id' or 'expected_incremental_value'"),
])
def test_invalid_query_and_path(served, url, detail):
    r = served.get(url)
    if detail is None:
        assert r.status_code == 404
        return
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == detail


@pytest.mark.parametrize("body, detail", [
    ({"customer_ids": []}, "customer_ids: must have at least 1 item"),
    ({"customer_ids": ["C1"] * 1001}, "customer_ids: must have at most 1000 items"),
    ({"customer_ids": ["C1", "no surrounding spaces "]}, f"customer_ids.1: must be {CUSTOMER_ID_RULE}"),
    ({"customer_ids": ["C1"], "n": 500}, "n: must be at most 100"),
    ({"customer_ids": ["C1"], "limit": 5}, "limit: is not a field of this request"),
    ({"customer_ids": ["C1"], "price_min": 5, "price_max": 1}, "price_min: must not exceed price_max (1)"),
])
def test_invalid_batch(served, body, detail):
    r = served.post("/v1/recommendations/batch", json=body)
    assert r.status_code == 422 and r.json()["detail"] == detail, r.text


@pytest.mark.parametrize("body, detail", [
    ({"customer_id": "C1", "product_id": "P1", "event_type": "like"},
     "event_type: Input should be 'view', 'cart', 'wishlist', 'try_on' or 'purchase'"),
    ({"customer_id": "C1", "event_type": "view"}, "product_id: is required"),
    ({"customer_id": "C" * 129, "product_id": "P1", "event_type": "view"},
     f"customer_id: must be {CUSTOMER_ID_RULE}"),
    ({"customer_id": "C1", "product_id": "P 1", "event_type": "view"}, f"product_id: must be {ID_RULE}"),
    ({"customer_id": "C1", "product_id": "P1", "event_type": "view", "timestamp": "2999-01-01T00:00:00Z"},
     "timestamp: lies in the future"),
    ({"customer_id": "C1", "product_id": "P1", "event_type": "view", "timestamp": "yesterday"},
     "timestamp: Input should be a valid datetime or date, input is too short"),
    ({"customer_id": "C1", "product_id": "P1", "event_type": "view", "timestamp": 1714560000},
     "timestamp: must be an ISO 8601 date and time, e.g. 2024-05-01T12:30:00Z"),
    ({"customer_ids": ["C1"], "n": True}, None),
])
def test_invalid_event(served, body, detail):
    if detail is None:  # a batch body, checked here for strict types
        r = served.post("/v1/recommendations/batch", json=body)
        assert r.status_code == 422 and r.json()["detail"] == "n: Input should be a valid integer"
        return
    r = served.post("/v1/events", json=body)
    assert r.status_code == 422 and r.json()["detail"] == detail, r.text


def test_every_422_lists_its_errors(served):
    r = served.get(REC.format("x" * 129) + "?n=0")
    body = r.json()
    assert {tuple(e["loc"]) for e in body["errors"]} == {("customer_id",), ("n",)}
    assert body["detail"].count(";") == 1


def test_invalid_json_body(served):
    r = served.client.post("/v1/events", content=b"{not json", headers={"X-API-Key": served.keys["admin"],
                                                                        "Content-Type": "application/json"})
    assert r.status_code == 422 and "is not valid JSON" in r.json()["detail"]


def test_body_size_cap(make_served):
    served = make_served(max_body_bytes=2048)
    ids = [f"C{i:06d}" for i in range(400)]  # about 4 kB
    r = served.post("/v1/recommendations/batch", json={"customer_ids": ids})
    assert r.status_code == 413 and r.json()["detail"] == "request body is larger than the limit of 2048 bytes"

    def chunks():  # no Content-Length: the cap counts what arrives
        for _ in range(10):
            yield b" " * 500
    r = served.client.post("/v1/events", content=chunks(), headers={"X-API-Key": served.keys["admin"],
                                                                     "Content-Type": "application/json"})
    assert r.status_code == 413
