"""API keys: the scope matrix, 401 / 403 / 429, hashes only on disk, revocation, the keys commands."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from serving.auth import KeyFile, KeysError, KeyStore, create_key, revoke_key

# Route, method, body, the keys that may call it (admin may call everything).
ROUTES = [
    ("GET", "/v1/customers/C0001/recommendations", None, {"storefront"}),
    ("POST", "/v1/recommendations/batch", {"customer_ids": ["C0001"]}, {"storefront"}),
    ("GET", "/v1/products/P001/similar", None, {"storefront"}),
    ("GET", "/v1/customers/C0001/scores", None, {"crm"}),
    ("GET", "/v1/customers/C0001/profile", None, {"crm"}),
    ("GET", "/v1/scores?limit=2", None, {"crm"}),
    ("POST", "/v1/events", {"customer_id": "C0001", "product_id": "P001", "event_type": "view"}, {"ingest"}),
    ("GET", "/v1/models", None, {"storefront", "crm", "ingest"}),
    ("POST", "/v1/admin/reload", None, set()),
    ("DELETE", "/v1/customers/C0009", None, set()),
]
KEYS = ("storefront", "crm", "ingest", "admin")


def call(served, method, url, body, headers):
    return served.client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("method, url, body, allowed", ROUTES, ids=[f"{m} {u}" for m, u, _, _ in ROUTES])
def test_scope_matrix(served, method, url, body, allowed):
    assert call(served, method, url, body, {}).status_code == 401
    r = call(served, method, url, body, {"X-API-Key": "clt_00000000_not-a-real-key"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked API key"
    for name in KEYS:
        r = call(served, method, url, body, {"X-API-Key": served.keys[name]})
        if name in allowed or name == "admin":
            assert r.status_code in (200, 202), (name, r.text)
        else:
            assert r.status_code == 403, (name, r.text)
            assert f"the key {name!r} lacks the scope" in r.json()["detail"]


def test_open_endpoints_need_no_key(served):
    for url in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert served.client.get(url).status_code == 200


def test_missing_key_message(served):
    r = served.client.get("/v1/customers/C0001/recommendations")
    assert r.json()["detail"] == "missing API key: send it in the X-API-Key header"


def test_rate_limit_answers_429_with_retry_after(make_served):
    served = make_served(rate_limit_per_s=1, rate_limit_burst=2)
    codes = [served.get("/v1/customers/C0001/recommendations", key="storefront").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = served.get("/v1/customers/C0001/recommendations", key="storefront")
    assert r.status_code == 429 and r.headers["retry-after"] == "1" and "rate limit" in r.json()["detail"]
    # Per key: another key still passes, on the slow lane too.
    assert served.get("/v1/customers/C0001/recommendations?n=3&category=serum", key="admin").status_code == 200
    assert 'clientele_rate_limited_total{key="storefront"}' in served.get("/metrics", key=None).text


def test_a_key_own_rate_limit_overrides_the_default(make_served):
    served = make_served(rate_limit=0.5, rate_limit_burst=1)
    assert [served.get("/v1/models", key="crm").status_code for _ in range(2)] == [200, 429]


def test_keys_file_holds_hashes_only_and_is_private(tmp_path):
    path = tmp_path / "keys.json"
    record, key = create_key(path, "storefront", "recommendations:read")
    text = path.read_text()
    assert key not in text and key.split("_")[-1] not in text and record.sha256 in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store = KeyStore(path)
    assert store.authenticate(key) == record
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.authenticate("clt_" + record.id + "_") is None


def test_revoked_keys_stop_working_without_restart(served):
    assert served.get("/v1/models", key="crm").status_code == 200
    revoke_key(served.settings.keys_file, "crm")
    served.services.keys.refresh()  # what the background thread does every second
    assert served.get("/v1/models", key="crm").status_code == 401
    assert served.get("/v1/models", key="storefront").status_code == 200


def test_key_creation_rules(tmp_path):
    path = tmp_path / "keys.json"
    with pytest.raises(KeysError, match="unknown scope 'scores:write'"):
        create_key(path, "crm", "scores:write")
    with pytest.raises(KeysError, match="--name"):
        create_key(path, "a b", "admin")
    create_key(path, "crm", "scores:read")
    with pytest.raises(KeysError, match="exists"):
        create_key(path, "crm", "scores:read")
    revoke_key(path, "crm")
    create_key(path, "crm", "scores:read,events:write")
    assert [k.scopes for k in KeyFile.read(path).keys] == [("scores:read",), ("scores:read", "events:write")]


def clientele(tmp_path, *args):
    env = {"CLIENTELE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "serving.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_keys_commands(tmp_path):
    created = clientele(tmp_path, "keys", "create", "--name", "crm", "--scopes", "scores:read,events:write")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("clt_") and "shown only now" in created.stderr
    assert KeyStore(tmp_path / "keys.json").authenticate(key).scopes == ("scores:read", "events:write")
    listed = clientele(tmp_path, "keys", "list", "--json")
    rows = json.loads(listed.stdout)
    assert rows[0]["name"] == "crm" and key not in listed.stdout and "sha256" not in rows[0]
    bad = clientele(tmp_path, "keys", "create", "--name", "x", "--scopes", "everything")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "unknown scope" in bad.stderr
    assert clientele(tmp_path, "keys", "revoke", "crm").returncode == 0
    assert KeyStore(tmp_path / "keys.json").authenticate(key) is None
