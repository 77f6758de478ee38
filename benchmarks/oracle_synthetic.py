"""The ceiling of recommendation quality on a synthetic preset: rank by the true probability of purchase.

    .venv/bin/python benchmarks/oracle_synthetic.py --preset beauty [--customers 10000] [--seed 3]
                                                    [--redraws 200] [--test-days 30] [--json OUT]

The generator knows each customer's purchase process. This draws the test window's purchases again, ``--redraws``
times, from the same latent world (``features.synthetic.purchase_redraws``: the same tastes, rates, lifetimes,
favourites and regimens; new trips, baskets and jitter), and ranks each test customer's products by the share of
redraws in which they bought them: the probability of purchase in the window given the generator's parameters.
That list is scored exactly as the evaluation scores a model (``training/evaluate_recommender.py``: the same
tables as ``clientele generate --preset P --customers N --seed S``, the same window, test customers and targets).
Ranking by the true marginal probabilities maximises expected DCG; no model that sees only the history can beat
it in expectation, so its NDCG@10 and Recall@20 bound what any recommender can reach on that window.

Printed: the oracle's metrics with all redraws, the first half and the first quarter of them (how far the estimate
has converged: too few redraws tie and misorder the unlikely products, which only lowers the figure), and the share
of the realised target that the redrawn stages did not produce (campaign responses, planted occasions: the oracle
gives those their redrawn probability only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.columns import Columns as C  # noqa: E402
from features.io import load_dataset  # noqa: E402
from features.synthetic import generate, purchase_redraws, write_tables  # noqa: E402
from training.evaluate_recommender import TemporalSplit, ranking_metrics, temporal_split, window_start  # noqa: E402

K = 20
# Redraw counts are kept over all, the first half and the first quarter of the redraws: how far the ranking has
# converged.
FRACTIONS = (1, 2, 4)


def oracle_counts(preset: str, customers: int, seed: int, redraws: int, split: TemporalSplit
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """In how many redraws each test customer bought each product in the split's window: ``customer_id``,
    ``product_id`` and a count over the first quarter, half and all of the redraws (``count_4``, ``count_2``,
    ``count_1``); and the realised draw's pairs (the window's purchases before the stages that are not redrawn)."""
    test = pd.Index(split.customers)
    products: dict[str, int] = {}
    keys, realised = [], None
    for r, pairs in enumerate(purchase_redraws(preset, customers, seed, redraws, split.start, split.end,
                                               realised=True), start=-1):
        who = test.get_indexer(pairs[C.customer_id])
        pairs = pairs[who >= 0]
        if r < 0:
            realised = pairs
            continue
        # Integer keys: a thousand redraws of ten thousand customers stay small.
        what = np.fromiter((products.setdefault(p, len(products)) for p in pairs[C.product_id]), np.int64,
                           len(pairs))
        keys.append(who[who >= 0].astype(np.int64) << 32 | what)
    counts = {}
    for d in FRACTIONS:
        key, n = np.unique(np.concatenate(keys[: redraws // d]), return_counts=True)
        counts[d] = pd.Series(n, index=key)
    table = pd.concat({f"count_{d}": counts[d] for d in FRACTIONS}, axis=1).fillna(0)
    names = np.array(list(products))
    key = table.index.to_numpy()
    table = table.reset_index(drop=True).assign(**{C.customer_id: test.to_numpy()[key >> 32],
                                                   C.product_id: names[key & 0xFFFFFFFF]})
    return table, realised


def oracle_lists(counts: pd.DataFrame, column: str, k: int = K) -> pd.DataFrame:
    """Each customer's top ``k`` products by ``column`` (ties: the lower product id), as the evaluation reads a
    model's recommendations."""
    ranked = counts[counts[column] > 0].sort_values([C.customer_id, column, C.product_id],
                                                    ascending=[True, False, True], kind="stable")
    ranked = ranked.assign(rank=ranked.groupby(C.customer_id, observed=True).cumcount() + 1)
    return ranked[ranked["rank"] <= k][[C.customer_id, "rank", C.product_id]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="beauty")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--redraws", type=int, default=200)
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # Written and read back as the benchmark reads `clientele generate`'s folder: the very same split.
        write_tables(generate(args.preset, args.customers, args.seed), Path(tmp))
        tables = load_dataset(Path(tmp), None).tables
    start, end = window_start(tables, args.test_days)
    split = temporal_split(tables, start, end)
    counts, realised = oracle_counts(args.preset, args.customers, args.seed, args.redraws, split)
    results = {}
    for d in FRACTIONS:
        metrics = ranking_metrics(oracle_lists(counts, f"count_{d}"), split.target)
        results[f"redraws {args.redraws // d}"] = {"redraws": args.redraws // d, **metrics}
    later = split.target.merge(realised, how="left", indicator=True)
    later_share = float((later["_merge"] == "left_only").mean())
    repeat_share = len(split.repeat_target) / max(len(split.target), 1)

    print(f"{args.preset}: {args.customers:,} customers, seed {args.seed}, test window "
          f"[{start.date()}, {end.date()}), {len(split.customers):,} test customers, {len(split.target):,} "
          f"target pairs ({repeat_share:.1%} bought before)")
    print("| oracle (true purchase probability) | ndcg@10 | recall@20 | hit@10 |")
    print("|---|---:|---:|---:|")
    for label, m in results.items():
        print(f"| {label} | {m['ndcg@10']:.4f} | {m['recall@20']:.4f} | {m['hit@10']:.4f} |")
    print(f"target pairs from the stages that are not redrawn (campaign responses, planted occasions): "
          f"{later_share:.2%}")
    print(f"{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"preset": args.preset, "customers": args.customers, "seed": args.seed,
                                         "test_customers": len(split.customers), "oracle": results,
                                         "target_from_later_stages": later_share}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
