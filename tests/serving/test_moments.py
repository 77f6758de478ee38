"""GET /v1/moments against the served CLV model's moments table: filters, pages, CSV, consent and erasure."""

from __future__ import annotations

import csv
import io

import pytest

from tests.serving.helpers import customer, layout_tables, register, settings_for, write_layouts
from features.settings import CHURN, CLV

MOMENTS = layout_tables()[CLV]["moments"]
PROFILES = layout_tables()[CLV]["profiles"].set_index("customer_id")
CLV_SCORES = layout_tables()[CLV]["scores"].set_index("customer_id")


def expected(kinds=None, start="2024-01-01", end="2024-12-31", segment=None, contactable=None) -> list[str]:
    """Customers (in export order) the API should list: customer 3 refused profiling and is never listed."""
    rows = MOMENTS[(MOMENTS["date"] >= start) & (MOMENTS["date"] <= end) & (MOMENTS["customer_id"] != customer(3))]
    if kinds:
        rows = rows[rows["kind"].isin(kinds)]
    if segment:
        rows = rows[rows["customer_id"].map(CLV_SCORES["rfm_segment"]) == segment]
    if contactable is not None:
        rows = rows[rows["customer_id"].map(PROFILES["consent_marketing"]) == contactable]
    return rows["customer_id"].tolist()


def ids(items) -> list[str]:
    return [item["customer_id"] for item in items]


def test_moments_list_by_date_with_value_consent_and_suggestions(served):
    r = served.get("/v1/moments?limit=1000", key="crm")
    assert r.status_code == 200, r.text
    body = r.json()
    assert ids(body["items"]) == expected() and body["total"] == len(expected())
    assert body["model_versions"] == {"clv": "clv:1"}
    first = body["items"][0]
    own = first["customer_id"]
    assert first["clv"] == pytest.approx(CLV_SCORES.loc[own, "clv"])
    assert first["rfm_segment"] == CLV_SCORES.loc[own, "rfm_segment"]
    assert first["consent_marketing"] == bool(PROFILES.loc[own, "consent_marketing"])
    assert first["products"] and len(first["products"]) == len(first["reasons"])
    assert first["description"] == f"v1: moment of {own}"


@pytest.mark.parametrize("query, want", [
    ("from=2024-01-10&to=2024-01-20", dict(start="2024-01-10", end="2024-01-20")),
    ("kind=birthday&kind=occasion", dict(kinds=["birthday", "occasion"])),
    ("segment=at_risk", dict(segment="at_risk")),
    ("contactable=true", dict(contactable=True)),
    ("contactable=false&kind=tier_upgrade", dict(contactable=False, kinds=["tier_upgrade"])),
])
def test_filters(served, query, want):
    body = served.get(f"/v1/moments?{query}&limit=1000", key="crm").json()
    assert ids(body["items"]) == expected(**want) and body["total"] == len(expected(**want))


def test_pages_follow_the_cursor_and_csv_streams_the_same_rows(served):
    seen, url = [], "/v1/moments?kind=birthday&kind=replenishment&limit=3"
    page = served.get(url, key="crm").json()
    while True:
        seen += ids(page["items"])
        if not page["next_cursor"]:
            break
        page = served.get(f"{url}&cursor={page['next_cursor']}", key="crm").json()
    assert seen == expected(kinds=["birthday", "replenishment"])
    other = served.get(f"/v1/moments?kind=birthday&limit=3&cursor={served.get(url, key='crm').json()['next_cursor']}",
                       key="crm")
    assert other.status_code == 422 and "other filters" in other.json()["detail"]
    r = served.get("/v1/moments?kind=birthday&kind=replenishment", key="crm", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert [row["customer_id"] for row in rows] == seen and r.headers["x-total-count"] == str(len(seen))
    assert rows[0]["products"].count("; ") == 1 and rows[0]["reasons"] == "v1: for you; v1: popular"


@pytest.mark.parametrize("query, field", [
    ("from=2024-13-01", "from"), ("to=yesterday", "to"), ("from=2024-02-01&to=2024-01-01", "to"),
    ("kind=holiday", "kind"), ("segment=nobody", "segment"), ("limit=1001", "limit"), ("cursor=abc", "cursor"),
])
def test_bad_parameters_are_one_line_422s(served, query, field):
    r = served.get(f"/v1/moments?{query}", key="crm")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert field in detail and "\n" not in detail


def test_scope_and_openapi(served):
    assert served.get("/v1/moments", key="storefront").status_code == 403
    assert served.get("/v1/moments", key=None).status_code == 401
    spec = served.get("/openapi.json").json()["paths"]["/v1/moments"]["get"]
    names = {p["name"] for p in spec["parameters"]}
    assert {"from", "to", "kind", "segment", "contactable", "cursor", "limit"} <= names


def test_erased_customers_leave_the_list_at_once(served):
    victim = expected()[0]
    assert served.delete(f"/v1/customers/{victim}").status_code in (200, 202, 204)
    body = served.get("/v1/moments?limit=1000", key="crm").json()
    assert victim not in ids(body["items"]) and body["total"] == len(expected()) - 1


def test_formula_like_text_is_neutralised_in_csv(registry, make_served):
    settings = settings_for(registry.root, model_prefix="momentcsv")
    tables = layout_tables()
    tables.pop("recommender")
    tables[CLV]["moments"].loc[0, "description"] = "=HYPERLINK(\"http://evil\")"
    for kind, folder in write_layouts(registry.root / "layouts-momentcsv", tables, installation=settings).items():
        register(settings, kind, folder)
    served = make_served("momentcsv", model_prefix="momentcsv", required_models=[CHURN, CLV])
    r = served.get("/v1/moments", key="crm", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert any(row["description"] == "'=HYPERLINK(\"http://evil\")" for row in rows)
    assert all(not row["description"].startswith("=") for row in rows)
