"""Erasure everywhere the API reaches: any id the data contract accepts, events, export totals, `clientele erase`
and a rollback to a model version trained before the erasure (issue 11, finding 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import mlflow
import pytest
from fastapi.testclient import TestClient

from features.limits import MAX_ID_LENGTH
from features.privacy import pseudonymise
from serving.settings import ServingSettings
from tests.serving.conftest import Served, start_served
from tests.serving.helpers import create_keys, layout_tables, register, settings_for, share_installation, write_layouts
from training.register import promote
from features.settings import CHURN, CLV, RECOMMENDER

# Ids the data contract keeps (features/validation.py ID_PATTERN) that the API's old pattern refused.
HOSTILE = {"C0001": "zoë@shop/7", "C0002": "客户/42", "C0005": "a b@c", "C0006": "x" * MAX_ID_LENGTH}


def path(customer_id: str) -> str:
    return quote(customer_id, safe="")  # '/' travels as %2F


def renamed(tables: dict, names: dict[str, str]) -> dict:
    return {kind: {name: frame.assign(customer_id=frame["customer_id"].replace(names))
                   if "customer_id" in frame.columns else frame for name, frame in parts.items()}
            for kind, parts in tables.items()}


class OwnRegistry:
    """A registry of its own (tests here move the champion alias), version 1 of the three models."""

    def __init__(self, root: Path, names: dict[str, str] | None = None):
        self.root = root
        self.settings = settings_for(root)
        self.tables = renamed(layout_tables(), names or {})
        self.v1 = {kind: register(self.settings, kind, folder)
                   for kind, folder in write_layouts(root / "layouts-v1", self.tables,
                                                     installation=self.settings).items()}

    def serve(self, data: Path, clients: list[TestClient], keys: dict[str, str] | None = None) -> Served:
        """An app on this registry with its data folder ``data`` (a restart when ``keys`` of it are given)."""
        share_installation(self.root, data)
        settings = ServingSettings(data_dir=data, mlflow_tracking_uri=self.settings.tracking_uri,
                                   cache_path=self.root / "cache", poll_interval_s=3600)
        return start_served(settings, keys or create_keys(settings), clients)


@pytest.fixture
def clients():
    opened: list[TestClient] = []
    yield opened
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> OwnRegistry:
    return OwnRegistry(tmp_path_factory.mktemp("hostile"), HOSTILE)


def test_any_id_the_data_contract_keeps_is_served_and_erased(hostile, clients, tmp_path):
    served = hostile.serve(tmp_path / "app", clients)
    for customer_id in HOSTILE.values():
        scores = served.get(f"/v1/customers/{path(customer_id)}/scores", key="crm")
        assert scores.status_code == 200 and scores.json()["customer_id"] == customer_id, scores.text
        recs = served.get(f"/v1/customers/{path(customer_id)}/recommendations")
        assert recs.json()["strategy"] == "personal", recs.text
        assert served.get(f"/v1/customers/{path(customer_id)}/profile", key="crm").status_code == 200

        r = served.delete(f"/v1/customers/{path(customer_id)}")
        assert r.status_code == 200 and r.json()["customer_id"] == customer_id, r.text
        assert served.get(f"/v1/customers/{path(customer_id)}/scores", key="crm").status_code == 404
        assert served.get(f"/v1/customers/{path(customer_id)}/profile", key="crm").status_code == 404
        assert served.get(f"/v1/customers/{path(customer_id)}/recommendations").json()["strategy"] == \
            "non_personal"
        batch = served.post("/v1/recommendations/batch", json={"customer_ids": [customer_id]})
        assert batch.json()["results"][0]["strategy"] == "non_personal", batch.text
    erased = served.settings.erasure_file.read_text().split()
    assert erased == [pseudonymise(c, served.settings.pseudonym_key) for c in HOSTILE.values()]
    exported = {row.split(",")[0] for row in served.get("/v1/scores?format=csv", key="crm").text.splitlines()}
    assert not exported & set(HOSTILE.values()) and "C0003" not in exported and "C0004" in exported
    too_long = served.delete(f"/v1/customers/{'x' * (MAX_ID_LENGTH + 1)}")
    assert too_long.status_code == 422 and "128 characters" in too_long.json()["detail"]


def test_events_of_an_erased_customer_answer_410_and_are_not_journaled(served):
    event = {"customer_id": "C0006", "product_id": "P001", "event_type": "view"}
    assert served.post("/v1/events", json=event, key="ingest").status_code == 202
    served.delete("/v1/customers/C0006")
    journal = "".join(p.read_text() for p in served.settings.events_dir.glob("events-*.jsonl"))
    r = served.post("/v1/events", json=event, key="ingest")
    assert r.status_code == 410 and "erased" in r.json()["detail"], r.text
    assert "".join(p.read_text() for p in served.settings.events_dir.glob("events-*.jsonl")) == journal
    assert served.post("/v1/events", json={**event, "customer_id": "C0007"}, key="ingest").status_code == 202


def test_export_totals_leave_out_customers_erased_after_the_snapshot(served):
    before = served.get("/v1/scores?limit=5", key="crm").json()
    first = before["items"][0]["customer_id"]
    served.delete(f"/v1/customers/{first}")
    assert served.services.store.snapshot.erasures_applied == 0  # the snapshot was built before the erasure
    after = served.get("/v1/scores?limit=5", key="crm").json()
    assert after["total"] == before["total"] - 1
    assert first not in [row["customer_id"] for row in after["items"]]
    csv = served.get("/v1/scores", key="crm", headers={"Accept": "text/csv"})
    assert int(csv.headers["X-Total-Count"]) == before["total"] - 1
    assert len(csv.text.splitlines()) - 1 == before["total"] - 1
    high = served.get("/v1/scores?limit=1&risk_band=high", key="crm").json()["total"]
    assert high == len([r for r in csv.text.splitlines()[1:] if r.split(",")[2] == "high"])


def clientele(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_clientele_erase_writes_the_list_the_api_writes_and_a_running_server_forgets_at_once(served, tmp_path):
    env = {"CLIENTELE_DATA_DIR": str(served.settings.data_dir),
           "CLIENTELE_PSEUDONYM_KEY": served.settings.pseudonym_key}
    assert served.get("/v1/customers/C0008/scores", key="crm").status_code == 200
    ids = tmp_path / "ids.txt"
    ids.write_text("C0009\n\n  zoë@shop/7  \r\n" + "y" * MAX_ID_LENGTH + "\n", encoding="utf-8")
    result = clientele("erase", "--customer", "C0008", "--customer", "客户/42", "--file", str(ids), env=env)
    assert result.returncode == 0, result.stderr
    assert "erased 5 customers (5 new, 0 already erased)" in result.stderr
    key = served.settings.pseudonym_key
    listed = served.settings.erasure_file.read_text().split()
    assert listed == [pseudonymise(c, key) for c in ("C0008", "客户/42", "C0009", "zoë@shop/7", "y" * MAX_ID_LENGTH)]
    assert "C0008" not in served.settings.erasure_file.read_text()
    # Gone from the identity map too: no export can name them, whatever version is served.
    named = served.settings.identities().read()["customer_id"].tolist()
    assert "C0007" in named and not {"C0008", "C0009"} & set(named)
    # The running server (another process's erasure, read through the journal) forgets them now.
    assert served.get("/v1/customers/C0008/scores", key="crm").status_code == 404
    assert served.get("/v1/customers/C0009/recommendations").json()["strategy"] == "non_personal"
    # The API's DELETE writes the same list: the customer is already erased.
    assert served.delete("/v1/customers/C0008").json()["already_erased"] is True
    again = clientele("erase", "--customer", "C0009", env=env)
    assert again.returncode == 0 and "(0 new, 1 already erased)" in again.stderr


@pytest.mark.parametrize("args, fragment", [
    ((), "nothing to erase"),
    (("--customer", "x" * (MAX_ID_LENGTH + 1)), "longer than 128 characters"),
    (("--customer", " padded"), "surrounding whitespace"),
    (("--file", "missing.txt"), "missing.txt: no such file"),
])
def test_clientele_erase_refuses_bad_input_with_one_line_and_exit_2(tmp_path, args, fragment):
    result = subprocess.run([sys.executable, "-m", "serving.cli", "erase", *args], capture_output=True, text=True,
                            env={**os.environ, "CLIENTELE_DATA_DIR": str(tmp_path / "data")}, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and fragment in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "erasure").exists()


def test_a_rollback_to_a_version_trained_before_the_erasure_never_serves_the_customer(tmp_path, clients):
    registry = OwnRegistry(tmp_path / "registry")
    served = registry.serve(tmp_path / "app", clients)  # compiles version 1 into the serving cache
    v2 = {kind: register(registry.settings, kind, folder)
          for kind, folder in write_layouts(tmp_path / "layouts-v2", layout_tables(tag="v2"),
                                            installation=registry.settings).items()}
    assert served.post("/v1/admin/reload").json()["changed"] is True
    assert served.get("/v1/customers/C0005/scores", key="crm").status_code == 200

    assert served.delete("/v1/customers/C0005").status_code == 200
    mlflow.set_tracking_uri(registry.settings.tracking_uri)
    mlflow.set_registry_uri(registry.settings.tracking_uri)
    for kind in (RECOMMENDER, CHURN, CLV):  # `clientele promote MODEL 1`: back to the version trained before
        assert v2[kind] == "2"
        promote(registry.settings.model_name(kind), registry.v1[kind], registry.settings)
    assert served.post("/v1/admin/reload").json()["changed"] is True

    restarted = registry.serve(tmp_path / "app", clients, served.keys)
    for app in (served, restarted):
        assert set(app.services.store.snapshot.versions.values()) == {"1"}
        assert app.get("/v1/customers/C0005/scores", key="crm").status_code == 404
        assert app.get("/v1/customers/C0005/profile", key="crm").status_code == 404
        recs = app.get("/v1/customers/C0005/recommendations").json()
        assert recs["strategy"] == "non_personal" and recs["model_version"] == "recommender:1"
        exported = app.get("/v1/scores?format=csv", key="crm").text
        assert "C0005" not in exported and "C0006" in exported
        assert app.get("/v1/customers/C0006/scores", key="crm").status_code == 200


@pytest.mark.parametrize("sub", ["scores", "profile", "recommendations"])
def test_a_delete_on_a_customer_sub_resource_erases_nobody(served, sub):
    r = served.delete(f"/v1/customers/C0004/{sub}")
    assert r.status_code == 405, r.text
    assert not served.settings.erasure_file.exists()
    assert served.get("/v1/customers/C0004/scores", key="crm").status_code == 200
    # Percent-encoded, the same text is one customer's id, and can be erased.
    assert served.delete(f"/v1/customers/{path('C0004/' + sub)}").json()["customer_id"] == f"C0004/{sub}"


def test_ids_with_newlines_or_control_characters_reach_the_rule_not_a_404(served):
    assert served.delete(f"/v1/customers/{path('a' + chr(10) + 'b')}").status_code == 200
    assert served.delete(f"/v1/customers/{path('ab' + chr(10))}").status_code == 422
    assert served.get(f"/v1/customers/{path(chr(12) + 'x')}/scores", key="crm").status_code == 422
