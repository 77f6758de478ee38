"""Feature pipeline benchmark: about 10M synthetic transactions -> features for every customer, pandas and Dask.

    .venv/bin/python benchmarks/bench_features.py --customers 1000000

Each engine runs in its own process so its peak resident memory is its own; the Dask figure is the client's
plus its worker processes'. Prints one table and writes benchmarks/results/features.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_rss_mib(children: bool = False) -> float:
    """Peak resident memory of this process (or the largest of its finished children) in MiB.

    This process's own figure is VmHWM: getrusage's ru_maxrss carries over the parent's peak through fork and
    exec, so a child started after generating the data would report the generator's memory."""
    if not children:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def run_engine(engine: str, data: Path, cutoff: str, horizon: int, workers: int) -> dict:
    """One engine, in this process: load + validate + features (+ labels)."""
    import pandas as pd

    from features.config import FeatureConfig

    started = time.perf_counter()
    if engine == "pandas":
        from features.io import load_dataset
        from features.pipeline import feature_frame

        dataset = load_dataset(data)
        loaded = time.perf_counter()
        frame = feature_frame(dataset.tables, pd.Timestamp(cutoff), horizon, FeatureConfig())
        rows = dataset.reports["transactions"].rows_kept
    else:
        from features.dask_engine import features_on_dask

        loaded = started
        frame, reports = features_on_dask(data, None, pd.Timestamp(cutoff), horizon, FeatureConfig(),
                                          workers=workers)
        rows = reports["transactions"].rows_kept
    done = time.perf_counter()
    return {"engine": engine, "transactions": rows, "customers": len(frame), "columns": frame.shape[1],
            "load_s": round(loaded - started, 1), "features_s": round(done - loaded, 1),
            "total_s": round(done - started, 1), "peak_rss_mib": round(_peak_rss_mib(), 0),
            "peak_rss_workers_mib": round(_peak_rss_mib(children=True), 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--preset", default="beauty")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cutoff", default="2025-10-01")
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, help="Use this dataset folder instead of generating one.")
    parser.add_argument("--engine", choices=["pandas", "dask"], help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()

    if args.engine:
        print(json.dumps(run_engine(args.engine, args.data, args.cutoff, args.horizon, args.workers)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from features.synthetic import generate, write_tables

            data = Path(tmp) / "data"
            started = time.perf_counter()
            write_tables(generate(args.preset, args.customers, args.seed), data)
            print(f"generated {args.customers:,} {args.preset} customers in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
        results = []
        for engine in ("pandas", "dask"):
            out = subprocess.run([sys.executable, __file__, "--engine", engine, "--data", str(data),
                                  "--cutoff", args.cutoff, "--horizon", str(args.horizon),
                                  "--workers", str(args.workers)], capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                sys.exit(f"{engine} engine failed:\n{out.stderr[-3000:]}")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'engine':8} {'transactions':>12} {'customers':>10} {'load s':>7} {'features s':>10} {'total s':>8} "
          f"{'peak RSS MiB':>12} {'workers MiB':>11}")
    for r in results:
        print(f"{r['engine']:8} {r['transactions']:>12,} {r['customers']:>10,} {r['load_s']:>7} {r['features_s']:>10} "
              f"{r['total_s']:>8} {r['peak_rss_mib']:>12,.0f} {r['peak_rss_workers_mib']:>11,.0f}")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "features.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
