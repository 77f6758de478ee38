"""Recommendation quality on UCI Online Retail: the project's two-stage recommender against its peers.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_recommender.py [--data PATH] [--mapping YAML|none]
                                                                            [--test-days 30] [--json OUT]

``--mapping none`` reads canonical tables as they are (a folder from ``clientele generate``).

Runs the evaluation protocol of ``clientele evaluate recommender`` (training/evaluate_recommender.py) in one
process: every model is fitted on the data before the test window (peers tuned on a validation window carved
from that data), then scored on the window. Prints the table, each model's fit time, and the ratios
clientele / best peer for NDCG@10 and Recall@20 (the goal: >= 1.25 and >= 1.00), and how long fitting the
whole recommender took (the goal: within 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# implicit's ALS slows down badly when OpenBLAS runs its own threads; set before numpy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from features.config import FeatureConfig  # noqa: E402
from features.io import load_dataset  # noqa: E402
from training.evaluate_recommender import OWN, best_peer_ratios, evaluate_recommenders, format_table  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "online_retail.parquet"
DEFAULT_MAPPING = ROOT / "configs" / "datasets" / "online_retail.yaml"
GOALS = {"ndcg@10": 1.25, "recall@20": 1.00}
FIT_BUDGET_SECONDS = 180


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--mapping", type=Path, default=DEFAULT_MAPPING)
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    features = FeatureConfig.load()  # the project's features.yaml, as `clientele evaluate recommender` reads it
    mapping = None if str(args.mapping).lower() == "none" else args.mapping
    dataset = load_dataset(args.data, mapping)
    results = evaluate_recommenders(dataset.tables, args.test_days, features=features,
                                    progress=lambda line: print(line, file=sys.stderr, flush=True))
    total = time.perf_counter() - started
    print(f"data: {args.data.name} (mapping {mapping.name if mapping else 'none'}), test window: last {args.test_days} days, "
          f"{results[OWN]['customers']:,} test customers; {os.cpu_count()} cores, {platform.processor() or '?'}")
    print()
    print(format_table(results))
    print()
    print("fit seconds (on the pre-window data; peers after tuning): "
          + ", ".join(f"{name} {m['fit_seconds']:.1f}" for name, m in results.items()))
    for step, seconds in results[OWN].get("fit_steps", {}).items():
        print(f"  {OWN} fit step: {step}: {seconds:.1f} s")
    ok = True
    for metric, info in best_peer_ratios(results).items():
        passed = info["ratio"] >= GOALS[metric]
        ok &= passed
        print(f"{OWN}/{info['best_peer']} {metric}: {info['ratio']:.3f} (goal >= {GOALS[metric]:.2f}: "
              f"{'met' if passed else 'NOT met'})")
    fit_ok = results[OWN]["fit_seconds"] <= FIT_BUDGET_SECONDS
    ok &= fit_ok
    print(f"{OWN} fit: {results[OWN]['fit_seconds']:.0f} s (goal <= {FIT_BUDGET_SECONDS} s: "
          f"{'met' if fit_ok else 'NOT met'}); whole benchmark {total:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
