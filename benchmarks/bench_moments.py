"""Occasion detection on synthetic jewellery data with planted occasions: recall and false-alarm rate.

Usage: ``.venv/bin/python benchmarks/bench_moments.py --customers 20000 --seed 1 [--min-confidence 0.8]``
(cutoff 2025-06-01, halfway through the preset's last year).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from features.synthetic import simulate  # noqa: E402
from models.moments.config import OccasionConfig  # noqa: E402
from training.evaluate_moments import evaluate_occasions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cutoff", default="2025-06-01")
    parser.add_argument("--min-confidence", type=float, nargs="*", default=[0.5, 0.8, 0.9])
    args = parser.parse_args()
    sim = simulate("jewellery", args.customers, args.seed)
    print("min_confidence  planted  recall  others  false_alarms  seconds")
    for value in args.min_confidence:
        started = time.perf_counter()
        result = evaluate_occasions(sim, pd.Timestamp(args.cutoff), OccasionConfig(min_confidence=value))
        print(f"{value:14.2f}  {result['planted']:7d}  {result['recall']:6.3f}  {result['others']:6d}  "
              f"{result['false_alarms']:12.4f}  {time.perf_counter() - started:7.1f}")


if __name__ == "__main__":
    main()
