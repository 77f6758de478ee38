"""Speed and memory of the synthetic data generator: wall and CPU time, rows per table, peak RSS.

Usage: ``.venv/bin/python benchmarks/bench_generate.py --customers 1000000 --preset beauty``. The tables are
generated in memory and written as Parquet to a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from features.columns import Tables  # noqa: E402
from features.presets import preset_names  # noqa: E402
from features.synthetic import generate, write_tables  # noqa: E402


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="beauty", choices=preset_names())
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # Other jobs on the machine slow every figure down; the load average says how busy it was.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    with tempfile.TemporaryDirectory(prefix="clientele-bench-") as tmp:
        cpu0, t0 = time.process_time(), time.perf_counter()
        tables = generate(args.preset, args.customers, args.seed)
        t1 = time.perf_counter()
        paths = write_tables(tables, Path(tmp))
        cpu2, t2 = time.process_time(), time.perf_counter()
        size = sum(p.stat().st_size for p in paths)

    print(f"preset={args.preset} customers={args.customers:,} seed={args.seed} "
          f"cores={_cores()} load-average={load:.1f}")
    for name, frame in tables.items():
        print(f"  {name:<13} {len(frame):>12,} rows")
    print(f"  transactions per customer: {len(tables[Tables.transactions]) / args.customers:.2f}")
    print(f"generate      {t1 - t0:8.1f} s")
    print(f"write parquet {t2 - t1:8.1f} s  ({size / 2**20:,.0f} MiB)")
    print(f"total         {t2 - t0:8.1f} s  (CPU time, all threads: {cpu2 - cpu0:.1f} s)")
    print(f"peak RSS      {_peak_rss_mib():8,.0f} MiB")


if __name__ == "__main__":
    main()
