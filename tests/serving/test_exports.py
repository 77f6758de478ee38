"""The CRM's CSV export (GET /v1/scores, Accept: text/csv) opens in a spreadsheet as data (issue 11)."""

from __future__ import annotations

import csv
import io

import pytest

from tests.serving.helpers import customer, layout_tables, register, settings_for, write_layouts
from features.settings import CHURN, CLV

# Customer ids the data contract accepts and a spreadsheet would run as formulas.
HOSTILE = {0: "=HYPERLINK(\"http://evil\",\"x\")", 1: "+cmd|' /C calc'!A0", 2: "-2+3", 4: "@SUM(A1:A9)",
           5: "\tTAB", 6: "\rCR"}


@pytest.fixture(scope="module")
def hostile(registry):
    """Churn and CLV models under their own names whose customers include formula-like ids."""
    settings = settings_for(registry.root, model_prefix="hostile")
    tables = layout_tables(tag="v1")
    tables.pop("recommender")
    rename = {customer(i): value for i, value in HOSTILE.items()}
    tables[CHURN]["scores"]["customer_id"] = tables[CHURN]["scores"]["customer_id"].replace(rename)
    tables[CHURN]["scores"].loc[0, "churn_reasons"] = ["=1+1 no purchase", "fewer visits"]
    for name in ("scores", "profiles"):
        tables[CLV][name]["customer_id"] = tables[CLV][name]["customer_id"].replace(rename)
    for kind, folder in write_layouts(registry.root / "layouts-hostile", tables, installation=settings).items():
        register(settings, kind, folder)
    return dict(model_prefix="hostile", required_models=[CHURN, CLV])


def test_csv_export_neutralises_formula_ids_and_reasons(make_served, hostile):
    served = make_served("hostile", **hostile)
    r = served.get("/v1/scores?sort=customer_id", key="crm", headers={"Accept": "text/csv"})
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    ids = {row["customer_id"] for row in rows}
    for value in HOSTILE.values():
        assert "'" + value in ids and value not in ids, value
        assert '"' + ("'" + value).replace('"', '""') + '"' in r.text  # quoted, as OWASP recommends
    first = next(row for row in rows if row["customer_id"] == "'" + HOSTILE[0])
    assert first["churn_reasons"].startswith("'=1+1 no purchase")
    # Numbers stay numbers; ordinary ids stay as they are.
    assert all(float(row["churn_probability"]) >= 0 for row in rows) and "C0007" in ids
    # The JSON export carries the ids unchanged: only the spreadsheet format is neutralised.
    items = served.get("/v1/scores?limit=1000&sort=customer_id", key="crm").json()["items"]
    assert set(HOSTILE.values()) <= {item["customer_id"] for item in items}
