"""New-products benchmark: the attribute two-tower model against its peers, side by side in one run per dataset.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_new_products.py [--seeds 0 1 2]
        [--synthetic jewellery:300000 beauty:100000] [--synthetic-test-days 90] [--no-online-retail]

Same protocol and peers as `clientele evaluate new-products` (training/evaluate_new_products.py). Datasets: UCI
Online Retail (names only: the product type is read from the name) with the mapping in configs/datasets, and
synthetic stores of the industry presets (category hierarchy, brand, price, launch dates, free attributes; by
default sized for a few hundred test customers each: a jewellery customer buys about once in two years). The
project's model is fitted once per seed (``--seeds``) and its mean and range are reported, the peers once.
Prints Markdown tables and writes benchmarks/results/new_products.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "datasets" / "online_retail.parquet"
MAPPING = ROOT / "configs" / "datasets" / "online_retail.yaml"


def run(name: str, tables: dict, test_days: int, seeds: list[int]) -> dict:
    from models.recommenders.attribute_tower import NewProductsConfig
    from training.evaluate_new_products import OWN, PEERS, evaluate_new_products

    def progress(line: str) -> None:
        print(f"[{name}] {line}", file=sys.stderr, flush=True)

    config = NewProductsConfig.load()
    started = time.perf_counter()
    results = evaluate_new_products(tables, test_days, config, models=list(PEERS), progress=progress)
    own = []
    for seed in seeds:
        own.append(evaluate_new_products(tables, test_days, config.with_seed(seed), models=[OWN],
                                         progress=progress)[OWN])
    mean = {key: sum(r[key] for r in own) / len(own) for key in ("recall@20", "ndcg@10", "hit@10", "fit_seconds")}
    mean.update(customers=own[0]["customers"], ndcg_by_seed=[round(r["ndcg@10"], 4) for r in own])
    return {"dataset": name, "test_days": test_days, "seconds": round(time.perf_counter() - started, 1),
            "models": {OWN: mean, **results}}


def table(result: dict) -> str:
    models = result["models"]
    own = models["clientele"]
    lines = [f"**{result['dataset']}** ({result['test_days']}-day window, {own['customers']:,} test customers)", "",
             "| model | recall@20 | ndcg@10 | hit@10 | fit s |", "|---|---:|---:|---:|---:|"]
    for name, m in models.items():
        label = f"**{name}** (mean of seeds {', '.join(map(str, own['ndcg_by_seed']))})" if name == "clientele" \
            else name
        lines.append(f"| {label} | {m['recall@20']:.4f} | {m['ndcg@10']:.4f} | {m['hit@10']:.4f} | "
                     f"{m['fit_seconds']:.1f} |")
    peers = {k: v for k, v in models.items() if k != "clientele"}
    best = max(peers, key=lambda k: peers[k]["ndcg@10"])
    affinity = peers["category_affinity"]["ndcg@10"]
    lines += ["", f"clientele / category_affinity on ndcg@10: {own['ndcg@10'] / affinity:.3f}; "
                  f"clientele / best peer ({best}): {own['ndcg@10'] / peers[best]['ndcg@10']:.3f}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--synthetic", nargs="*", default=["jewellery:300000", "beauty:100000"],
                        help="preset:customers of synthetic stores to add")
    parser.add_argument("--synthetic-test-days", type=int, default=90,
                        help="a longer window: a synthetic store launches fewer products a month")
    parser.add_argument("--no-online-retail", action="store_true")
    args = parser.parse_args()

    from features.io import load_dataset
    from features.synthetic import generate

    results = []
    if not args.no_online_retail:
        if not args.data.exists():
            sys.exit(f"{args.data}: not found (the real datasets live in ../shared/datasets)")
        tables = load_dataset(args.data, MAPPING).tables
        results.append(run("UCI Online Retail", tables, args.test_days, args.seeds))
    for spec in args.synthetic:
        preset, customers = spec.split(":")
        tables = generate(preset, int(customers), seed=1)
        results.append(run(f"synthetic {preset}, {int(customers):,} customers", tables, args.synthetic_test_days,
                           args.seeds))
    for result in results:
        print(table(result))
        print()
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "new_products.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
