"""Churn benchmark on UCI Online Retail: the project's model and its peers side by side in one run.

    .venv/bin/python benchmarks/bench_churn.py [--horizon 90] [--plots benchmarks/results/churn_plots]

Same protocol as `clientele evaluate churn`; prints the table, the margin over the best peer's ROC-AUC and the
Brier comparison with LightGBM on RFM, and writes benchmarks/results/churn.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "datasets" / "online_retail.parquet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--mapping", type=Path, default=ROOT / "configs" / "datasets" / "online_retail.yaml")
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--plots", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (the real datasets live in ../shared/datasets)")

    from features.io import load_dataset
    from training.evaluate_churn import evaluate_churn, evaluation_report, print_table, write_plots

    tables = load_dataset(args.data, args.mapping).tables
    evaluation = evaluate_churn(tables, args.horizon)
    report = evaluation_report(evaluation)
    print_table(report)
    info = report["_info"]
    own, rfm = report["clientele"], report["lightgbm_rfm"]
    print(f"ROC-AUC margin over the best peer: {info['roc_auc_margin_over_best_peer']:+.4f} (goal >= +0.02); "
          f"Brier {own['brier']:.4f} vs LightGBM on RFM {rfm['brier']:.4f} (goal: lower); "
          f"fit {info['fit_seconds']} s, whole evaluation {info['seconds']} s")
    if args.plots:
        write_plots(evaluation, args.plots)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "churn.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
