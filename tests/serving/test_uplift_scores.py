"""Uplift at the CRM's endpoints: per-customer uplift and best offer, the export sorted by expected incremental
value, and contact lists (`contactable=true`) that never hold a customer without marketing consent."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from features.settings import CHURN, CLV, UPLIFT
from tests.serving.helpers import customer, layout_tables, register, settings_for, write_layouts

N = 40  # customers of the layout tables


def uplift_table() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    uplift = np.round(rng.uniform(-0.05, 0.2, N), 4)
    return pd.DataFrame({
        "customer_id": [customer(c) for c in range(N)],
        "uplift": uplift, "incremental_spend": np.round(uplift * 40, 2),
        "expected_incremental_value": np.round(uplift * 120 - 0.5, 3),
        "best_offer": [("10_percent_off", "free_gift")[c % 2] for c in range(N)],
        "p_purchase_if_not": np.full(N, 0.2), "p_purchase_if_contacted": np.clip(0.2 + uplift, 0, 1),
        "uplift_basis": "customer",
        "uplift_reasons": [["no purchase for 45 days"] if u > 0 else [] for u in uplift],
        # Consent to marketing: yes for multiples of 3, unknown for 5, 10, ..., no otherwise.
        "consent_marketing": pd.array([True if c % 3 == 0 else (pd.NA if c % 5 == 0 else False) for c in range(N)],
                                      dtype="boolean"),
    })


@pytest.fixture(scope="module")
def with_uplift(registry):
    settings = settings_for(registry.root, model_prefix="uplifted")
    tables = layout_tables(tag="v1")
    tables.pop("recommender")
    tables[UPLIFT] = {"scores": uplift_table()}
    for kind, folder in write_layouts(registry.root / "layouts-uplift", tables, installation=settings).items():
        register(settings, kind, folder)
    return dict(model_prefix="uplifted", required_models=[CHURN, CLV])


def test_customer_scores_carry_uplift_best_offer_and_marketing_consent(make_served, with_uplift):
    served = make_served("uplift", **with_uplift)
    expected = uplift_table().set_index("customer_id")
    body = served.get("/v1/customers/C0006/scores", key="crm").json()
    assert body["uplift"] == pytest.approx(expected.loc["C0006", "uplift"])
    assert body["expected_incremental_value"] == pytest.approx(expected.loc["C0006", "expected_incremental_value"])
    assert body["best_offer"] == "10_percent_off" and body["consent_marketing"] is True
    assert body["p_purchase_if_contacted"] == pytest.approx(expected.loc["C0006", "p_purchase_if_contacted"])
    assert body["p_purchase_if_not"] == 0.2 and body["uplift_basis"] == "customer"
    assert body["uplift_reasons"] == expected.loc["C0006", "uplift_reasons"]
    assert body["model_versions"]["uplift"] == "uplift:1"
    assert served.get("/v1/customers/C0001/scores", key="crm").json()["consent_marketing"] is False
    # The uplift table is the consent of record (C0009 agreed there, not in the CLV profile); where it does not
    # know (C0005), the CLV profile says.
    assert served.get("/v1/customers/C0009/scores", key="crm").json()["consent_marketing"] is True
    assert served.get("/v1/customers/C0005/scores", key="crm").json()["consent_marketing"] is False


def test_contact_lists_hold_only_consenting_customers_by_expected_incremental_value(make_served, with_uplift):
    served = make_served("uplift", **with_uplift)
    everyone = served.get("/v1/scores?limit=1000", key="crm").json()
    page = served.get("/v1/scores?contactable=true&sort=expected_incremental_value&limit=1000", key="crm").json()
    rows = page["items"]
    assert rows and all(r["consent_marketing"] is True for r in rows)
    assert page["total"] == sum(r["consent_marketing"] is True for r in everyone["items"])
    values = [r["expected_incremental_value"] for r in rows]
    assert values == sorted(values, reverse=True)
    others = served.get("/v1/scores?contactable=false&limit=1000", key="crm").json()
    assert others["total"] + page["total"] == everyone["total"]
    assert all(r["consent_marketing"] is not True for r in others["items"])
    text = served.get("/v1/scores?contactable=true&sort=expected_incremental_value", key="crm",
                      headers={"Accept": "text/csv"}).text
    csv_rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["customer_id"] for r in csv_rows] == [r["customer_id"] for r in rows]
    assert {r["consent_marketing"] for r in csv_rows} == {"True"} and csv_rows[0]["best_offer"]
    # A cursor belongs to its contact list: the same cursor on another filter is refused.
    first = served.get("/v1/scores?contactable=true&limit=2", key="crm").json()
    assert served.get(f"/v1/scores?limit=2&cursor={first['next_cursor']}", key="crm").status_code == 422


def test_sorting_by_incremental_value_without_an_uplift_model_is_a_clear_422(served):
    r = served.get("/v1/scores?sort=expected_incremental_value", key="crm")
    assert r.status_code == 422 and "uplift model" in r.text


def test_an_uplift_that_ranks_no_one_is_not_sorted_by(registry, make_served):
    """A version trained on campaigns too small to tell customers apart says so, and the export refuses to rank a
    contact list by its constant."""
    import json

    settings = settings_for(registry.root, model_prefix="flat")
    tables = layout_tables(tag="v1")
    tables.pop("recommender")
    tables[UPLIFT] = {"scores": uplift_table().assign(uplift=0.05, expected_incremental_value=5.5,
                                                      uplift_basis="campaign_average",
                                                      uplift_reasons=[[] for _ in range(N)])}
    folders = write_layouts(registry.root / "layouts-flat", tables, installation=settings)
    manifest = json.loads((folders[UPLIFT] / "manifest.json").read_text())
    manifest.update(uplift_basis="campaign_average", uplift_note="the past campaigns (120 contacted, 80 held out) "
                                                                "are too few ...; the uplift ranks no one")
    (folders[UPLIFT] / "manifest.json").write_text(json.dumps(manifest))
    for kind, folder in folders.items():
        register(settings, kind, folder)
    served = make_served("flat", model_prefix="flat", required_models=[CHURN, CLV])
    assert served.get("/v1/customers/C0006/scores", key="crm").json()["uplift_basis"] == "campaign_average"
    r = served.get("/v1/scores?contactable=true&sort=expected_incremental_value", key="crm")
    assert r.status_code == 422 and "ranks no one" in r.text and "value_at_risk" in r.text
    assert served.get("/v1/scores?contactable=true", key="crm").status_code == 200
