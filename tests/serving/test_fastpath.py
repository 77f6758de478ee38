"""The storefront's fast lane answers exactly as FastAPI's own handling of the same route does."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.helpers import CATEGORIES

VALUES = {
    "n": st.sampled_from(["1", "5", "10", "30", "100", "101", "0", "-1", "010", "abc", "", "7.0", " 5", "1e1"]),
    "exclude_bought": st.sampled_from(["true", "false", "1", "0", "yes", "off", "TRUE", "", "maybe"]),
    "in_stock_only": st.sampled_from(["true", "false", "1", "0", "on", "no", "", "x"]),
    "category": st.sampled_from(list(CATEGORIES) + ["", "unknown", "x" * 101, "é"]),
    "exclude_category": st.sampled_from(list(CATEGORIES) + ["", "unknown"]),
    "price_min": st.sampled_from(["0", "5", "10.5", "20", "-1", "1e3", "abc", "", "12.", "00"]),
    "price_max": st.sampled_from(["0", "15", "30.25", "99999", "-3", "nan", "inf", ""]),
    "new_only": st.sampled_from(["true", "false", "1", "x", ""]),
    "utm_source": st.sampled_from(["mail", ""]),
    "channel": st.sampled_from(["store", "online", "app", "web", "", "STORE"]),
    "store_id": st.sampled_from(["S1", "S2", "S9", "", "bad id", "x" * 300]),
    "availability": st.sampled_from(["in_store", "order_online", "online", ""]),
}
PAIRS = st.lists(st.sampled_from(sorted(VALUES)).flatmap(lambda k: st.tuples(st.just(k), VALUES[k])), max_size=6)
CUSTOMERS = st.sampled_from(["C0001", "C0003", "C0041", "C0010", "someone-new", "bad id", "x" * 65, "a.b:c-d_e"])
PRODUCTS = st.sampled_from(["P001", "P007", "P029", "P999", "bad id"])
KEYS = st.sampled_from(["storefront", "admin", "crm", "none", "garbage"])


def both_lanes(served, url: str, key: str):
    headers = {} if key == "none" else {"X-API-Key": "clt_0_x" if key == "garbage" else served.keys[key]}
    settings_ = served.services.settings
    answers = []
    for fast in (True, False):
        settings_.fast_path = fast
        r = served.client.get(url, headers=headers)
        answers.append((r.status_code, r.json()))
    settings_.fast_path = True
    return answers


@pytest.fixture
def fast_served(make_served):
    return make_served(rate_limit=1e9)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(customer=CUSTOMERS, pairs=PAIRS, key=KEYS)
def test_recommendations_fast_lane_equals_fastapi(fast_served, customer, pairs, key):
    url = f"/v1/customers/{quote(customer)}/recommendations?{urlencode(pairs)}"
    fast, slow = both_lanes(fast_served, url, key)
    assert fast == slow, url


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(product=PRODUCTS, pairs=PAIRS, key=KEYS)
def test_similar_fast_lane_equals_fastapi(fast_served, product, pairs, key):
    url = f"/v1/products/{quote(product)}/similar?{urlencode(pairs)}"
    fast, slow = both_lanes(fast_served, url, key)
    assert fast == slow, url


def test_the_fast_lane_is_taken_for_plain_requests_only(fast_served, monkeypatch):
    from fastapi.routing import APIRoute

    slow_lane = []
    handle = APIRoute.handle

    async def counting(self, scope, receive, send):
        slow_lane.append(scope["path"])
        await handle(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", counting)
    for query in ("", "n=10", "n=5&category=serum&category=mascara&price_min=1.5&price_max=20&in_stock_only=false"):
        assert fast_served.get(f"/v1/customers/C0001/recommendations?{query}", key="storefront").status_code == 200
    assert fast_served.get("/v1/products/P001/similar?n=3", key="storefront").status_code == 200
    assert slow_lane == []
    for query in ("n=abc", "in_stock_only=yes", "n=3&n=4", "new_only=true"):  # new arrivals: the FastAPI lane
        fast_served.get(f"/v1/customers/C0001/recommendations?{query}", key="storefront")
    fast_served.get("/v1/customers/C0001/recommendations", key="crm")  # 403 comes from the FastAPI lane
    fast_served.get("/v1/products/P999/similar", key="storefront")  # so does 404
    assert len(slow_lane) == 6
