"""Evaluation speed: `clientele evaluate recommender` (the two-stage model and every tuned peer) on a grocery log.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_evaluate.py --rows 800000
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_evaluate.py --rows 75000

The log is a transaction-only export like a grocer's: the synthetic grocery preset with a 24,000-product
catalogue (40,000 customers drawn), thinned to about ``--rows`` lines by keeping whole orders at random (so
baskets stay baskets) and, below 800,000 rows, by keeping a random share of customers. It is written once under
data/bench/. The command runs in its own process; its wall time and peak resident memory are reported with the
metrics it printed. Results: benchmarks/results/evaluate-<rows>.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRODUCTS = 24_000
CUSTOMERS = 40_000
BASE_ROWS = 800_000


def grocery_log(rows: int, root: Path) -> Path:
    """The thinned grocery log of about ``rows`` lines (written once)."""
    out = root / f"grocery-log-{rows}.parquet"
    if out.exists():
        return out
    import pandas as pd

    from features.presets import load_preset
    from features.synthetic import generate

    preset = copy.deepcopy(dict(load_preset("grocery")))
    preset["generator"]["catalog"]["products"] = PRODUCTS
    tx = generate(preset, customers=CUSTOMERS, seed=7)["transactions"]
    rng = np.random.default_rng(0)
    orders = tx["order_id"].unique()
    log = tx[tx["order_id"].isin(orders[rng.random(len(orders)) < min(1.0, BASE_ROWS / len(tx))])]
    if rows < len(log):
        customers = np.sort(log["customer_id"].unique())
        keep = rng.choice(customers, int(len(customers) * rows / len(log)), replace=False)
        log = log[log["customer_id"].isin(keep)]
    root.mkdir(parents=True, exist_ok=True)
    log.reset_index(drop=True).to_parquet(out, index=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=BASE_ROWS)
    parser.add_argument("--data-root", type=Path, default=ROOT / "data" / "bench")
    args = parser.parse_args()
    data = grocery_log(args.rows, args.data_root)
    import pandas as pd

    log = pd.read_parquet(data, columns=["customer_id", "product_id"])
    shape = {"rows": len(log), "customers": int(log["customer_id"].nunique()),
             "products": int(log["product_id"].nunique())}
    del log
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "training.cli", "evaluate", "recommender", "--data", str(data),
                           "--json", "--quiet"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    results = json.loads(done.stdout)
    command = f"OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_evaluate.py --rows {args.rows}"
    print(f"`{command}`: {shape['rows']:,} rows, {shape['customers']:,} customers, {shape['products']:,} products: "
          f"{seconds / 60:.1f} min, peak {peak / 1e9:.2f} GB")
    print("| model | ndcg@10 | recall@20 | grid s | fit s | in all s |\n|---|---:|---:|---:|---:|---:|")
    for name, metrics in results.items():
        timing = metrics["timing"]
        print(f"| {name} | {metrics['ndcg@10']:.4f} | {metrics['recall@20']:.4f} | {timing['tuning']:.1f} | "
              f"{timing['fit']:.1f} | {timing['all']:.1f} |")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"evaluate-{args.rows}.json").write_text(json.dumps(
        {**shape, "seconds": round(seconds, 1), "peak_bytes": peak, "results": results}, indent=1))


if __name__ == "__main__":
    main()
