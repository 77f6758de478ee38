"""Any id of a linked person (a member card, an app id) reaches the person at the API, and erasing one erases all."""

from __future__ import annotations

import pandas as pd

from features.identities import PERSON, PSEUDONYM
from features.privacy import pseudonymise
from serving.settings import ServingSettings
from tests.serving.conftest import start_served
from tests.serving.helpers import create_keys, share_installation


def test_a_linked_id_is_answered_as_its_person_and_erasing_it_erases_the_person(registry, tmp_path):
    data = tmp_path / "linked"
    share_installation(registry.root, data)
    settings = ServingSettings(data_dir=data, mlflow_tracking_uri=registry.settings.tracking_uri,
                               cache_path=registry.root / "cache", poll_interval_s=3600)
    key = settings.pseudonym_key
    # Training linked the app id "app-0002" to customer C0002 (features.linking): its row in the identity map.
    settings.identities().record(pd.DataFrame({PSEUDONYM: [pseudonymise("app-0002", key)],
                                               "customer_id": ["app-0002"], PERSON: [pseudonymise("C0002", key)]}))
    clients = []
    try:
        served = start_served(settings, create_keys(settings), clients)
        person = served.get("/v1/customers/C0002/scores", key="crm")
        by_app = served.get("/v1/customers/app-0002/scores", key="crm")
        assert person.status_code == by_app.status_code == 200
        assert by_app.json()["churn_probability"] == person.json()["churn_probability"]
        assert served.get("/v1/customers/app-0002/recommendations").json()["strategy"] == "personal"
        # An event sent with the app id is the person's.
        sent = served.post("/v1/events", key="ingest", json={"customer_id": "app-0002", "product_id": "P005",
                                                            "event_type": "view"})
        assert sent.status_code == 202
        journal = "".join(p.read_text() for p in settings.events_dir.glob("events-*.jsonl"))
        assert pseudonymise("C0002", key) in journal and "app-0002" not in journal
        # Erasing the app id erases the person: every id of theirs, at once and in the identity map.
        assert served.delete("/v1/customers/app-0002").status_code == 200
        assert served.get("/v1/customers/C0002/scores", key="crm").status_code == 404
        assert served.get("/v1/customers/C0002/recommendations").json()["strategy"] == "non_personal"
        listed = set(settings.erasure_file.read_text().split())
        assert {pseudonymise("app-0002", key), pseudonymise("C0002", key)} <= listed
        assert not {"app-0002", "C0002"} & set(settings.identities().read()["customer_id"])
        exported = served.get("/v1/scores?limit=1000", key="crm").json()["items"]
        assert "C0002" not in {row["customer_id"] for row in exported}
    finally:
        for client in clients:
            client.__exit__(None, None, None)
