"""Does the sequence model earn its place? The two-stage recommender with and without a SASRec generator.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sasrec.py [--data PATH] [--mapping YAML]
        [--test-days 30] [--candidates 20]

Same protocol as `clientele evaluate recommender` (test window = the last 30 days, fits on the rows before it), the
project's recommender only, twice in one process: the default generators of configs/recommender.yaml, then the same
plus ``sasrec`` (hyperparameters from ``models.sasrec``) proposing ``--candidates`` products. Prints NDCG@10,
Recall@20 (and their "new to the customer" variants) and the fit time of each.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from features.config import FeatureConfig  # noqa: E402
from features.io import load_dataset  # noqa: E402
from models.recommenders.config import load_config  # noqa: E402
from training.evaluate_recommender import OWN, evaluate_recommenders  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "online_retail.parquet"
MAPPING = ROOT / "configs" / "datasets" / "online_retail.yaml"
COLUMNS = ("ndcg@10", "recall@20", "ndcg@10_new", "recall@20_new", "fit_seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--mapping", type=Path, default=MAPPING)
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--candidates", type=int, default=20)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data}: not found (the real datasets live in ../shared/datasets)")
    tables = load_dataset(args.data, args.mapping).tables
    features = FeatureConfig.load()
    base = load_config()
    with_sasrec = copy.deepcopy(base)
    with_sasrec[OWN]["generators"]["sasrec"] = {"model": "sasrec", "candidates": args.candidates}
    print("| two-stage recommender | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for label, config in (("default generators", base), (f"+ SASRec ({args.candidates} candidates)", with_sasrec)):
        result = evaluate_recommenders(tables, args.test_days, config, models=[OWN], features=features,
                                       progress=lambda line: print(line, file=sys.stderr, flush=True))[OWN]
        print(f"| {label} | " + " | ".join(f"{result[c]:.1f}" if c == "fit_seconds" else f"{result[c]:.4f}"
                                           for c in COLUMNS) + " |", flush=True)


if __name__ == "__main__":
    main()
