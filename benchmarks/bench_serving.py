"""Serving speed and memory: the recommendations endpoint against a bare FastAPI endpoint, in the same run.

    .venv/bin/python benchmarks/bench_serving.py --customers 1000000 --products 50000 --k 100 --workers 2

1. Writes a synthetic serving layout of the given size (the same files `clientele train` registers: 1M
   customers x top-100 over 50k products is 100M recommendation rows), registers the three models in a
   local MLflow registry and creates an API key.
2. Starts the real server (`clientele serve --workers N`, uvicorn + uvloop + httptools) and, beside it, a bare
   FastAPI app under the same uvicorn settings whose one endpoint returns a fixed JSON body of the same size
   (same path shape, same orjson rendering, no auth, no lookup). Records load time and memory of each worker
   (RSS, and PSS: the memory-mapped arrays are shared between workers, PSS splits them fairly).
3. wrk on loopback against each, same connections and duration, a random customer per request:
   saturated throughput; then latency at half the saturated rate of the real server (wrk has no fixed-rate
   mode and wrk2 is not packaged here: each connection waits an exponentially distributed pause before its
   next request, which gives an open-ish Poisson arrival stream at the target rate; the achieved rate is
   printed next to the target).

Writes benchmarks/results/serving.json and prints a Markdown table for benchmarks/README_serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# ------------------------------------------------------------------------------------------- the bare endpoint

def bare_app():
    """A FastAPI app with one endpoint returning a fixed body (uvicorn factory: bench_serving:bare_app)."""
    from fastapi import FastAPI
    from starlette.responses import Response

    import orjson

    body = orjson.dumps(json.loads(os.environ["BENCH_FIXED_BODY"]))
    app = FastAPI()

    @app.get("/v1/customers/{customer_id}/recommendations")
    async def bare(customer_id: str) -> Response:
        return Response(body, media_type="application/json")

    return app


# ----------------------------------------------------------------------------------------------- the layout

def _dict_array(indices: np.ndarray, values: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), pa.array(values, pa.string()))


def write_layout(folder: Path, customers: int, products: int, k: int, settings: Any, seed: int = 0
                 ) -> dict[str, Path]:
    """Three serving folders of the given size (see training/layout.py for the layout), customers by pseudonym
    under ``settings``' key, as training writes them, their own ids (``C0000000``...) in its identity map."""
    from features.identities import PSEUDONYM, key_check
    from features.privacy import pseudonymise_many
    from training.layout import FORMAT_VERSION, PSEUDONYM_CHECK

    rng = np.random.default_rng(seed)
    own = [f"C{i:07d}" for i in range(customers)]
    cids = pseudonymise_many(own, settings.pseudonym_key).tolist()
    settings.identities().record(pd.DataFrame({PSEUDONYM: cids, "customer_id": own}))
    check = key_check(settings.pseudonym_key)
    pids = [f"P{i:06d}" for i in range(products)]
    categories = [f"category-{i}" for i in range(50)]
    regions = [f"region-{i}" for i in range(10)]
    out = {}

    def manifest(path: Path, kind: str, **extra) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "manifest.json").write_text(json.dumps({"kind": kind, "format_version": FORMAT_VERSION,
                                                        "cutoff": "2024-06-01", "created_at": "2024-06-02T00:00:00",
                                                        PSEUDONYM_CHECK: check, **extra}))

    rec = folder / "recommender"
    manifest(rec, "recommender", preset="beauty", exclude_bought_default=True, k=k)
    pq.write_table(pa.table({
        "product_id": pa.array(pids), "name": pa.array([f"Product {i}" for i in range(products)]),
        "category": _dict_array(rng.integers(0, len(categories), products), categories),
        "price": pa.array(np.round(rng.lognormal(3, 0.8, products), 2)),
        "in_stock": pa.array(rng.random(products) > 0.1)}), rec / "products.parquet")
    reasons = [f"bought with Product {i}" for i in range(5000)] + ["you buy this every ~30 days",
                                                                   "popular with customers like you"]
    chunk_customers = max(1, 4_000_000 // k)
    with pq.ParquetWriter(rec / "recommendations.parquet", pa.schema([
            ("customer_id", pa.dictionary(pa.int32(), pa.string())), ("rank", pa.int32()),
            ("product_id", pa.dictionary(pa.int32(), pa.string())), ("score", pa.float32()),
            ("reason", pa.dictionary(pa.int32(), pa.string()))])) as writer:
        for start in range(0, customers, chunk_customers):
            stop = min(customers, start + chunk_customers)
            m = (stop - start) * k
            cust = np.repeat(np.arange(start, stop), k)
            rank = np.tile(np.arange(1, k + 1, dtype=np.int32), stop - start)
            # Popularity-skewed items, like real top-k lists.
            items = np.minimum((rng.pareto(1.2, m) * products / 50).astype(np.int64), products - 1)
            score = (1.0 - rank / (k + 1) + rng.random(m) * 0.001).astype(np.float32)
            writer.write_table(pa.table({
                "customer_id": pa.DictionaryArray.from_arrays(pa.array((cust - start).astype(np.int32)),
                                                              pa.array(cids[start:stop])),
                "rank": pa.array(rank), "product_id": _dict_array(items, pids), "score": pa.array(score),
                "reason": _dict_array(rng.integers(0, len(reasons), m), reasons)}))
    nb = customers * 5
    pq.write_table(pa.table({"customer_id": _dict_array(np.repeat(np.arange(customers), 5), cids),
                             "product_id": _dict_array(rng.integers(0, products, nb), pids)}),
                   rec / "bought.parquet")
    ns = 50
    pq.write_table(pa.table({
        "product_id": _dict_array(np.repeat(np.arange(products), ns), pids),
        "rank": pa.array(np.tile(np.arange(1, ns + 1, dtype=np.int32), products)),
        "similar_product_id": _dict_array(rng.integers(0, products, products * ns), pids),
        "score": pa.array(np.tile(np.linspace(1, 0.1, ns, dtype=np.float32), products)),
        "reason": _dict_array(rng.integers(0, 5000, products * ns), reasons)}), rec / "similar.parquet")
    pop = []
    for scope, keys, size in (("all", [""], 1000), ("region", regions, 500), ("category", categories, 200)):
        for key in keys:
            for rank in range(1, size + 1):
                pop.append((scope, key, rank, pids[int(rng.integers(products))], float(size - rank),
                            f"popular in {key}" if key else "popular right now"))
    scope, key, rank, pid, score, reason = zip(*pop)
    pq.write_table(pa.table({"scope": list(scope), "key": list(key), "rank": list(rank), "product_id": list(pid),
                             "score": list(score), "reason": list(reason)}), rec / "popular.parquet")
    pq.write_table(pa.table({"customer_id": pa.array(cids),
                             "region": _dict_array(rng.integers(0, len(regions), customers), regions),
                             "consent_profiling": pa.array(rng.random(customers) > 0.05)}),
                   rec / "customers.parquet")
    out["recommender"] = rec

    churn = folder / "churn"
    manifest(churn, "churn", horizon_days=90)
    p = rng.random(customers)
    band = np.where(p >= 0.7, 2, np.where(p >= 0.4, 1, 0))
    reason_lists = [["no purchase for longer than usual", "fewer store visits"], ["spend falling"], []]
    pq.write_table(pa.table({
        "customer_id": pa.array(cids), "churn_probability": pa.array(p),
        "risk_band": _dict_array(band, ["low", "medium", "high"]),
        "churn_reasons": pa.array([reason_lists[i] for i in rng.integers(0, 3, customers)],
                                  pa.list_(pa.string()))}), churn / "scores.parquet")
    out["churn"] = churn

    clv = folder / "clv"
    manifest(clv, "clv")
    value = rng.lognormal(4, 1, customers)
    pq.write_table(pa.table({
        "customer_id": pa.array(cids), "p_alive": pa.array(rng.random(customers)),
        "expected_purchases_12m": pa.array(rng.random(customers) * 5),
        "expected_spend": pa.array(rng.random(customers) * 80), "clv": pa.array(value),
        "value_tier": _dict_array(rng.integers(0, 3, customers), ["low", "medium", "high"]),
        "rfm_segment": _dict_array(rng.integers(0, 6, customers), ["champions", "loyal", "potential", "at_risk",
                                                                     "hibernating", "lost"]),
        "r_score": pa.array(rng.integers(1, 6, customers)), "f_score": pa.array(rng.integers(1, 6, customers)),
        "m_score": pa.array(rng.integers(1, 6, customers)),
        "lifecycle_stage": _dict_array(rng.integers(0, 5, customers), ["new", "active", "at_risk", "lapsed",
                                                                         "won_back"]),
        "membership_tier": _dict_array(rng.integers(0, 3, customers), ["none", "silver", "gold"])}),
        clv / "scores.parquet")
    pq.write_table(pa.table({
        "customer_id": pa.array(cids),
        "first_purchase": pa.array(np.datetime64("2020-01-01") + rng.integers(0, 1500, customers).astype(
            "timedelta64[D]")),
        "orders": pa.array(rng.integers(1, 50, customers)), "total_spend": pa.array(rng.random(customers) * 2000),
        "region": _dict_array(rng.integers(0, len(regions), customers), regions),
        "consent_profiling": pa.array(np.ones(customers, bool))}), clv / "profiles.parquet")
    out["clv"] = clv
    return out


# -------------------------------------------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, expect: int = 200) -> float:
    import httpx

    started = time.time()
    while time.time() - started < timeout:
        try:
            if httpx.get(url, timeout=2).status_code == expect:
                return time.time() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not {expect} after {timeout} s")


def worker_memory(parent: int) -> list[dict[str, float]]:
    import psutil

    out = []
    for child in psutil.Process(parent).children(recursive=True):
        try:
            info = child.memory_full_info()
        except psutil.Error:
            continue
        if info.rss > 50e6:  # the multiprocessing resource tracker is not a worker
            out.append({"pid": child.pid, "rss_mb": round(info.rss / 1e6), "pss_mb": round(info.pss / 1e6),
                        "uss_mb": round(info.uss / 1e6)})
    return out


LUA = """
math.randomseed(os.time())
local n = {customers}
local pause = {pause_ms}
request = function()
  local path = string.format("/v1/customers/C%07d/recommendations?n=10", math.random(0, n - 1))
  return wrk.format("GET", path, {{["X-API-Key"] = "{key}"}})
end
if pause > 0 then
  delay = function()
    return -math.log(1 - math.random()) * pause
  end
end
"""


def wrk(url: str, script: Path, connections: int, seconds: int, threads: int) -> dict[str, float]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
        value, unit = float(m.group(1)), m.group(2)
        result[f"p{pct}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    result["socket_errors"] = socket_errors.group(1) if socket_errors else ""
    return result


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def write_script(folder: Path, name: str, customers: int, key: str, pause_ms: float) -> Path:
    path = folder / name
    path.write_text(LUA.format(customers=customers, key=key, pause_ms=pause_ms))
    return path


# ---------------------------------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--paced-connections", type=int, default=16,
                    help="connections of the half-rate run (each waits ~connections/rate between requests)")
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (it shares the machine's cores)")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3, help="alternating saturated runs of each; the median is kept")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serving")
    ap.add_argument("--reuse", action="store_true", help="keep the layout and registry of a previous run")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk)")

    from serving.auth import create_key
    from serving.settings import ServingSettings
    from tests.serving.helpers import register

    data = args.out / f"{args.customers}x{args.products}x{args.k}"
    settings = ServingSettings(data_dir=data, mlflow_tracking_uri=f"sqlite:///{data / 'mlflow' / 'mlflow.db'}")
    report: dict = {"load_average_before": os.getloadavg()[0], "customers": args.customers, "products": args.products,
                    "k": args.k, "workers": args.workers, "connections": args.connections,
                    "paced_connections": args.paced_connections, "seconds": args.seconds, "cpus": os.cpu_count()}
    if not (args.reuse and (data / "mlflow" / "mlflow.db").exists()):
        shutil.rmtree(data, ignore_errors=True)
        started = time.time()
        folders = write_layout(data / "layout", args.customers, args.products, args.k, settings)
        report["write_layout_s"] = round(time.time() - started, 1)
        print(f"layout written in {report['write_layout_s']} s", flush=True)
        for kind, folder in folders.items():
            register(settings, kind, folder)
    shutil.rmtree(data / "serving", ignore_errors=True)  # compile afresh: load time is part of the result
    (data / "keys.json").unlink(missing_ok=True)
    _, key = create_key(settings.keys_file, "bench", "recommendations:read", rate_limit=1e9)

    env = {**os.environ, "CLIENTELE_DATA_DIR": str(data), "CLIENTELE_MLFLOW_TRACKING_URI": settings.tracking_uri,
           "CLIENTELE_LOG_LEVEL": "warning", "OPENBLAS_NUM_THREADS": "1"}
    port, bare_port = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-m", "serving.cli", "serve", "--port", str(port), "--workers",
                               str(args.workers)], cwd=ROOT, env=env, start_new_session=True)
    bare = None
    try:
        report["load_s"] = round(wait_http(f"http://127.0.0.1:{port}/readyz", 3600), 1)
        print(f"server ready in {report['load_s']} s", flush=True)
        import httpx

        sample = httpx.get(f"http://127.0.0.1:{port}/v1/customers/C0000001/recommendations?n=10",
                           headers={"X-API-Key": key}).json()
        report["body_bytes"] = len(json.dumps(sample, separators=(",", ":")))
        time.sleep(2)
        report["memory"] = worker_memory(server.pid)
        print("memory", report["memory"], flush=True)

        bare_env = {**env, "BENCH_FIXED_BODY": json.dumps(sample)}
        bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "bench_serving:bare_app", "--app-dir",
                                 str(ROOT / "benchmarks"), "--port", str(bare_port), "--workers", str(args.workers),
                                 "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level",
                                 "warning", "--no-server-header"], cwd=ROOT, env=bare_env, start_new_session=True)
        wait_http(f"http://127.0.0.1:{bare_port}/v1/customers/C1/recommendations", 60)

        scripts = args.out / "scripts"
        scripts.mkdir(parents=True, exist_ok=True)
        flat = write_script(scripts, "flat.lua", args.customers, key, 0)
        targets = {"clientele": f"http://127.0.0.1:{port}", "bare": f"http://127.0.0.1:{bare_port}"}
        for name, url in targets.items():  # warm up: page in the arrays, fill caches
            wrk(url, flat, args.connections, 5, args.threads)
        # Alternate the two, several rounds, and keep the median: other load on the machine drifts.
        rounds: dict[str, list[dict]] = {"clientele": [], "bare": []}
        for i in range(args.rounds):
            for name, url in targets.items():
                rounds[name].append(wrk(url, flat, args.connections, args.seconds, args.threads))
                print(name, "saturated", rounds[name][-1], flush=True)
        for name in targets:
            report[f"{name}_saturated_rounds"] = rounds[name]
            report[f"{name}_saturated"] = median_run(rounds[name])
        report["throughput_ratio_rounds"] = [round(c["rps"] / b["rps"], 3)
                                             for c, b in zip(rounds["clientele"], rounds["bare"])]
        target = report["clientele_saturated"]["rps"] / 2
        # Each connection sends about 1/pause requests a second once latency is small against the pause.
        pause_ms = args.paced_connections / target * 1000
        paced = write_script(scripts, "paced.lua", args.customers, key, pause_ms)
        for name, url in targets.items():
            result = wrk(url, paced, args.paced_connections, args.seconds, args.threads)
            result["target_rps"] = round(target)
            report[f"{name}_half_rate"] = result
            print(name, "half rate", result, flush=True)
        report["throughput_ratio"] = round(report["clientele_saturated"]["rps"] / report["bare_saturated"]["rps"], 3)
        report["memory_after"] = worker_memory(server.pid)
        report["load_average_after"] = os.getloadavg()[0]
    finally:
        for proc in (server, bare):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out.parent / "serving.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    mem = report["memory"]
    print("\n| endpoint | saturated req/s | p50 ms | p99 ms | req/s at half rate (target) | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for name in ("clientele", "bare"):
        s, h = report[f"{name}_saturated"], report[f"{name}_half_rate"]
        print(f"| {name} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {h['rps']:.0f} "
              f"({h['target_rps']}) | {h['p50_ms']:.2f} | {h['p99_ms']:.2f} |")
    print(f"\nthroughput ratio {report['throughput_ratio']}; workers RSS {[m['rss_mb'] for m in mem]} MB, "
          f"PSS total {sum(m['pss_mb'] for m in mem)} MB")


if __name__ == "__main__":
    main()
