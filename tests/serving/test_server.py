"""`clientele serve` as a real process: HTTP to every endpoint, several workers, hot swap, kill -9, logs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import httpx
import pytest

from features.privacy import pseudonymise
from serving.auth import create_key, revoke_key
from tests.serving.conftest import Registry
from tests.serving.helpers import (create_keys, free_port, layout_tables, register, settings_for,
                                   share_installation, wait_until_every_worker_ready, write_layouts)

ROOT = Path(__file__).resolve().parents[2]


class Server:
    """`python -m serving.cli serve` in its own process group, logging to a file."""

    def __init__(self, data: Path, registry: Registry, workers: int = 1, **env: str):
        self.data, self.registry, self.workers, self.env = data, registry, workers, env
        self.settings = settings_for(data)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "Server":
        share_installation(self.registry.root, self.data)
        env = {**os.environ, "CLIENTELE_DATA_DIR": str(self.data),
               "CLIENTELE_MLFLOW_TRACKING_URI": self.registry.settings.tracking_uri,
               "CLIENTELE_CACHE_PATH": str(self.registry.root / "cache"), "CLIENTELE_POLL_INTERVAL_S": "3600",
               "CLIENTELE_ACCESS_LOG": "true", "CLIENTELE_LOG_LEVEL": "info",
               "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", **self.env}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "serving.cli", "serve", "--port", str(self.port),
                                          "--workers", str(self.workers)], cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            wait_until_every_worker_ready(self.proc, self.url, self.workers, self.log)
        return self

    def worker_pids(self) -> set[int]:
        """The uvicorn workers: the server process's children started by multiprocessing's spawn."""
        pids = set()
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"spawn_main" in cmdline:
                    pids.add(int(child))
        return pids

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture
def server_factory(tmp_path):
    servers: list[Server] = []

    def make(registry: Registry, name: str = "server", workers: int = 1, **env: str) -> Server:
        server = Server(tmp_path / name, registry, workers, **env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def test_every_endpoint_over_http_with_two_workers(registry, server_factory):
    server = server_factory(registry, workers=2)
    keys = create_keys(server.settings)
    server.start()
    admin = {"X-API-Key": keys["admin"]}

    def get(path: str, key: str = "admin", **kw) -> httpx.Response:
        return httpx.get(server.url + path, headers={"X-API-Key": keys[key], **kw.pop("headers", {})}, **kw)

    recs = get("/v1/customers/C0001/recommendations?n=5", "storefront").json()
    assert recs["strategy"] == "personal" and recs["model_version"] == "recommender:1" and len(recs["items"]) == 5
    assert len(get("/v1/products/P003/similar?n=3", "storefront").json()["items"]) == 3
    batch = httpx.post(server.url + "/v1/recommendations/batch", json={"customer_ids": ["C0001", "C0002"]},
                       headers={"X-API-Key": keys["storefront"]})
    assert [r["customer_id"] for r in batch.json()["results"]] == ["C0001", "C0002"]
    assert get("/v1/customers/C0001/scores", "crm").json()["risk_band"] in ("low", "medium", "high")
    assert get("/v1/customers/C0001/profile", "crm").json()["profile"]["orders"] == 2
    page = get("/v1/scores?limit=10&risk_band=high", "crm").json()
    assert page["items"] and all(r["risk_band"] == "high" for r in page["items"])
    csv = get("/v1/scores", "crm", headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv") and len(csv.text.strip().split("\n")) == 40
    assert {m["label"] for m in get("/v1/models", "crm").json()["models"]} == {"recommender:1", "churn:1", "clv:1"}
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}

    # An event accepted by one worker shows in the next recommendations from any worker.
    top = recs["items"][0]["product_id"]
    event = httpx.post(server.url + "/v1/events", headers={"X-API-Key": keys["ingest"]},
                       json={"customer_id": "C0001", "product_id": top, "event_type": "purchase"})
    assert event.status_code == 202
    for _ in range(12):  # a new connection each time: the kernel spreads them over the workers
        items = get("/v1/customers/C0001/recommendations?n=5", "storefront").json()["items"]
        assert top not in {i["product_id"] for i in items}

    # An erasure on one worker is honoured by all at once.
    assert httpx.delete(server.url + "/v1/customers/C0004", headers=admin).status_code == 200
    for _ in range(12):
        assert get("/v1/customers/C0004/scores", "crm").status_code == 404

    metrics = httpx.get(server.url + "/metrics").text
    version_lines = [line for line in metrics.splitlines()
                     if line.startswith('clientele_model_version{kind="recommender"')]
    assert len(version_lines) == 2 and all(line.endswith(" 1.0") for line in version_lines)  # one per worker
    time.sleep(1.2)  # workers add their request counts about once a second
    metrics = httpx.get(server.url + "/metrics").text
    route = "/v1/customers/{customer_id}/recommendations"
    assert f'clientele_request_duration_seconds_count{{method="GET",route="{route}"}}' in metrics

    server.stop()
    log = server.log.read_text()
    assert "GET /v1/customers/{customer_id}/recommendations 200" in log  # the access log is on
    for raw in ("C0001", "C0002", "C0004"):
        assert raw not in log, f"raw customer id {raw} in the server log"
    assert pseudonymise("C0004", server.settings.pseudonym_key) in log


def test_hot_swap_under_load_drops_nothing_and_never_mixes_versions(registry, tmp_path, server_factory):
    # Models of their own (another name prefix in the same registry): this test moves the champion.
    own = settings_for(tmp_path / "swap", model_prefix="swap")
    own.mlflow_tracking_uri = registry.settings.tracking_uri
    v1 = write_layouts(tmp_path / "layouts-v1", {"recommender": registry.tables["recommender"]},
                       installation=registry.settings)
    register(own, "recommender", v1["recommender"])
    server = server_factory(registry, workers=2, CLIENTELE_MODEL_PREFIX="swap",
                            CLIENTELE_REQUIRED_MODELS="recommender")
    keys = create_keys(server.settings, rate_limit=1e6)
    server.start()
    headers = {"X-API-Key": keys["storefront"]}
    results: list[tuple[int, str, list[str]]] = []
    errors: list[str] = []
    stop = threading.Event()

    def hammer(seed: int) -> None:
        customers = [f"C{(seed * 7 + i) % 45:04d}" for i in range(45)]  # personal, cold start, no consent
        i = 0
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            while not stop.is_set():
                try:
                    r = client.get(f"/v1/customers/{customers[i % 45]}/recommendations?n=8")
                    body = r.json() if r.status_code == 200 else {}
                    results.append((r.status_code, body.get("model_version", ""),
                                    [item["reason"] for item in body.get("items", [])]))
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                i += 1

    threads = [threading.Thread(target=hammer, args=(s,), daemon=True) for s in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        v2 = write_layouts(tmp_path / "layouts-v2", {"recommender": layout_tables(tag="v2", seed=1)["recommender"]},
                           installation=registry.settings)
        assert register(own, "recommender", v2["recommender"]) == "2"
        reload = httpx.post(server.url + "/v1/admin/reload", headers={"X-API-Key": keys["admin"]}, timeout=120)
        assert reload.status_code == 200 and reload.json()["changed"] is True
        deadline = time.time() + 30
        labels: set[str] = set()
        while labels != {"recommender:2"} and time.time() < deadline:  # the other worker follows within a second
            time.sleep(0.2)
            labels = {next(m["label"] for m in httpx.get(server.url + "/v1/models", headers=headers).json()["models"]
                           if m["kind"] == "recommender") for _ in range(8)}
        assert labels == {"recommender:2"}
        seen = len(results)
        while len(results) < seen + 200 and time.time() < deadline + 30:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(10)

    assert errors == []
    assert Counter(status for status, _, _ in results) == Counter({200: len(results)})
    versions = Counter(version for _, version, _ in results)
    assert set(versions) == {"recommender:1", "recommender:2"}, versions
    assert all(version == "recommender:2" for _, version, _ in results[-100:])
    for _, version, reasons in results:
        tag = "v" + version.split(":")[1] + ": "
        assert reasons and all(reason.startswith(tag) for reason in reasons), (version, reasons)


def test_an_acknowledged_event_survives_kill_9(registry, server_factory):
    first = server_factory(registry, workers=1)
    keys = create_keys(first.settings)
    first.start()
    headers = {"X-API-Key": keys["admin"]}
    top = httpx.get(first.url + "/v1/customers/C0002/recommendations?n=1", headers=headers).json()["items"][0]
    r = httpx.post(first.url + "/v1/events", headers=headers,
                   json={"customer_id": "C0002", "product_id": top["product_id"], "event_type": "purchase"})
    assert r.status_code == 202
    first.kill9()  # no shutdown, no flush: only what was durable before the 202 is left
    journal = "".join(p.read_text() for p in (first.data / "events").glob("events-*.jsonl"))
    assert r.json()["event_id"] in journal

    again = Server(first.data, registry, workers=1)
    try:
        again.start()
        items = httpx.get(again.url + "/v1/customers/C0002/recommendations?n=10", headers=headers).json()["items"]
        assert top["product_id"] not in {i["product_id"] for i in items}
    finally:
        again.stop()


def test_keys_take_effect_on_the_next_request_in_every_worker(registry, server_factory):
    # Issue 11: a new key was refused (401) for about 2 s after `keys create`.
    server = server_factory(registry, workers=2)
    create_keys(server.settings)
    server.start()
    _, key = create_key(server.settings.keys_file, "late", "scores:read")
    for _ in range(12):  # a new connection each time: the kernel spreads them over the workers
        assert httpx.get(server.url + "/v1/models", headers={"X-API-Key": key}).status_code == 200
    revoke_key(server.settings.keys_file, "late")
    for _ in range(12):
        assert httpx.get(server.url + "/v1/models", headers={"X-API-Key": key}).status_code == 401


def test_one_worker_reports_metrics_and_serves_the_docs_offline(registry, server_factory):
    server = server_factory(registry, workers=1)  # the demo's default
    keys = create_keys(server.settings)
    server.start()
    assert httpx.get(server.url + "/v1/models", headers={"X-API-Key": keys["crm"]}).status_code == 200
    # Issue 11: /metrics was empty with one worker (the multiprocess folder was set after prometheus_client was
    # imported, so the worker counted in memory while /metrics read the empty folder).
    metrics = httpx.get(server.url + "/metrics").text
    assert 'clientele_model_version{kind="churn"} 1.0' in metrics, metrics[:2000]
    assert 'clientele_requests_total{method="GET",route="/v1/models",status="200"} 1.0' in metrics

    # /docs and /redoc load their scripts and styles from this server, not from a CDN.
    for page in ("/docs", "/redoc"):
        html = httpx.get(server.url + page).text
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
        assert assets, html
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
            r = httpx.get(server.url + asset)
            assert r.status_code == 200 and len(r.content) > 10_000, (asset, r.status_code)


def test_no_worker_takes_a_request_before_its_models_are_loaded(registry, server_factory, tmp_path):
    # A cache of its own: every worker downloads and builds the models, the slow start of a real deployment.
    server = server_factory(registry, workers=2, CLIENTELE_CACHE_PATH=str(tmp_path / "cold-cache"))
    keys = create_keys(server.settings, rate_limit=1e6)
    server.start(wait=False)
    headers = {"X-API-Key": keys["storefront"]}
    deadline = time.time() + 90
    while True:  # the first 200, from whichever worker loaded first
        assert server.proc.poll() is None and time.time() < deadline, server.log.read_text()[-3000:]
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.02)

    statuses: list[int] = []  # list.append is atomic across threads; a Counter's += is not
    errors: list[str] = []

    def hammer(stop: threading.Event, limit: int) -> None:
        # A new connection per request: the kernel hands each to whichever worker is accepting.
        while not stop.is_set() and len(statuses) + len(errors) < limit:
            try:
                r = httpx.get(server.url + "/v1/customers/C0001/recommendations?n=3", headers=headers, timeout=10)
                statuses.append(r.status_code)
            except httpx.HTTPError as exc:
                errors.append(repr(exc))

    def burst(limit: int, until: Callable[[], bool] = lambda: False, seconds: float = 60) -> None:
        stop = threading.Event()
        threads = [threading.Thread(target=hammer, args=(stop, limit), daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        end = time.time() + seconds
        while any(t.is_alive() for t in threads) and time.time() < end and not until():
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(15)

    burst(300)  # at start: the worker still loading must not be the one answering
    assert len(statuses) >= 300 and set(statuses) == {200}, (Counter(statuses), errors[:3])
    assert errors == []

    workers = server.worker_pids()
    assert len(workers) == 2
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)

    statuses.clear()
    # Requests all the while the supervisor notices, respawns and the new worker loads, then until it has
    # answered 20 of them itself.
    burst(100_000, until=lambda: _answered_by(server, workers) >= 20, seconds=60)
    new = server.worker_pids() - workers
    assert len(new) == 1, (workers, server.worker_pids())
    assert _answered_by(server, workers) >= 20, server.log.read_text()[-3000:]
    assert 503 not in statuses, (Counter(statuses), server.log.read_text()[-2000:])
    assert set(statuses) == {200}, Counter(statuses)
    assert len(errors) <= 4, errors[:5]  # at most the requests in flight on the killed worker


def _answered_by(server: Server, old: set[int]) -> int:
    """/v1 answers with 200 logged by workers other than ``old`` (the access log names the process)."""
    lines = re.findall(r"\[(\d+)\] GET /v1/customers/\{customer_id\}/recommendations 200", server.log.read_text())
    return sum(1 for pid in lines if int(pid) not in old)
