"""Where the two-stage recommender wins and loses against a peer: per-customer NDCG@10 on the test window, split
by what the customer went on to buy (products bought before vs new to them), how heavy a customer they are
(orders before the window) and their basket cadence (median days between purchase days).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/profile_recommender.py [--data PATH] [--mapping YAML|none]
        [--test-days 30] [--peer tifu_knn] [--peer-params '{"group_size": 3, ...}'] [--clientele '{...}']

The peer is fitted with the given parameters (default: its ``models:`` section; the evaluation's tuned choice is
what ``bench_recommender.py --json`` lists under ``params``); ``--clientele`` overrides the two-stage model's
parameters (e.g. its generators) to profile a variant. DCG is additive over hits, so each customer's NDCG@10 splits
exactly into the part earned by repeat purchases and the part earned by new products.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.columns import Columns as C  # noqa: E402
from features.columns import Tables  # noqa: E402
from features.config import FeatureConfig  # noqa: E402
from features.io import load_dataset  # noqa: E402
from models.recommenders import Filters, registry  # noqa: E402
from models.recommenders.config import load_config, model_section  # noqa: E402
from models.recommenders.data import tables_before  # noqa: E402
from training.evaluate_recommender import OWN, temporal_split, window_start  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "online_retail.parquet"
DEFAULT_MAPPING = ROOT / "configs" / "datasets" / "online_retail.yaml"
K = 10


def per_customer_dcg(recs: pd.DataFrame, target: pd.DataFrame, seen: pd.DataFrame) -> pd.DataFrame:
    """Per test customer: NDCG@K, and its repeat / new parts (hits on products bought before or not)."""
    size = target.groupby(C.customer_id).size()
    top = recs[recs["rank"] <= K][[C.customer_id, "rank", C.product_id]].astype({C.customer_id: str,
                                                                                   C.product_id: str})
    hits = top.merge(target.assign(_hit=1), on=[C.customer_id, C.product_id])
    hits = hits.merge(seen.assign(_seen=1), how="left", on=[C.customer_id, C.product_id])
    gain = 1.0 / np.log2(hits["rank"].to_numpy() + 1.0)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, K + 2)))[np.minimum(size.to_numpy(), K) - 1]
    ideal = pd.Series(ideal, index=size.index)
    repeat = hits["_seen"].notna().to_numpy()
    out = pd.DataFrame(index=size.index)
    for part, mask in (("repeat", repeat), ("new", ~repeat)):
        dcg = pd.Series(gain[mask]).groupby(hits[C.customer_id].to_numpy()[mask]).sum()
        out[part] = dcg.reindex(size.index, fill_value=0.0) / ideal
    out["ndcg"] = out["repeat"] + out["new"]
    return out


def describe_customers(train: dict[str, pd.DataFrame], split) -> pd.DataFrame:
    """Orders before the window, median days between purchase days, and the repeat share of the target."""
    tx = train[Tables.transactions]
    tx = tx[tx[C.customer_id].astype(str).isin(split.customers)]
    key = C.order_id if C.order_id in tx.columns else C.timestamp
    orders = tx.groupby(tx[C.customer_id].astype(str))[key].nunique()
    days = tx[C.timestamp].dt.normalize()
    gaps = (pd.DataFrame({"c": tx[C.customer_id].astype(str), "d": days}).drop_duplicates().sort_values(["c", "d"])
            .groupby("c")["d"].apply(lambda d: d.diff().dt.days.median()))
    target = split.target.merge(split.seen.assign(_seen=1), how="left", on=[C.customer_id, C.product_id])
    repeat_share = target["_seen"].notna().groupby(target[C.customer_id]).mean()
    return pd.DataFrame({"orders": orders, "cadence_days": gaps, "target_repeat_share": repeat_share})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--mapping", type=Path, default=DEFAULT_MAPPING)
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--peer", default="tifu_knn")
    parser.add_argument("--peer-params", type=json.loads, default={})
    parser.add_argument("--clientele", type=json.loads, default={}, help="overrides of the two-stage model")
    args = parser.parse_args(argv)

    features = FeatureConfig.load()
    tables = load_dataset(args.data, None if str(args.mapping).lower() == "none" else args.mapping).tables
    start, end = window_start(tables, args.test_days)
    split = temporal_split(tables, start, end)
    train = tables_before(tables, start)
    config = load_config()
    recs = {}
    started = time.perf_counter()
    own = registry()[OWN].from_config(config, feature_config=features, window_days=args.test_days, **args.clientele)
    own.fit(train, cutoff=start, interactions=features.interactions, listed=split.customers)
    print(f"{OWN} fit {time.perf_counter() - started:.0f} s", file=sys.stderr)
    peer = registry()[args.peer](**{**model_section(args.peer, config), **args.peer_params})
    peer.fit(train, cutoff=start, interactions=features.interactions)
    everything = Filters(exclude_bought=False, in_stock_only=False)
    for name, model in ((OWN, own), (args.peer, peer)):
        recs[name] = model.recommend(split.customers, n=K, filters=everything, explain=False)
    who = describe_customers(train, split)
    scores = {name: per_customer_dcg(r, split.target, split.seen) for name, r in recs.items()}
    both = pd.concat({name: s for name, s in scores.items()}, axis=1)
    both.columns = [f"{name}:{part}" for name, part in both.columns]
    frame = who.join(both)
    bands = {
        "all": pd.Series("all", index=frame.index),
        "orders before": pd.qcut(frame["orders"], 3, duplicates="drop").astype(str),
        "cadence days": pd.qcut(frame["cadence_days"].fillna(frame["cadence_days"].max()), 3,
                                duplicates="drop").astype(str),
        "target repeat share": pd.cut(frame["target_repeat_share"], [-0.01, 0.0, 0.5, 0.99, 1.0],
                                      labels=["0", "(0, .5]", "(.5, 1)", "1"]).astype(str),
    }
    o, p = OWN, args.peer
    print(f"| split | band | customers | {o} ndcg@10 (repeat + new) | {p} ndcg@10 (repeat + new) | ratio |")
    print("|---|---|---:|---|---|---:|")
    for split_name, band in bands.items():
        for value, group in frame.groupby(band):
            ratio = group[f"{o}:ndcg"].mean() / max(group[f"{p}:ndcg"].mean(), 1e-12)
            print(f"| {split_name} | {value} | {len(group):,} | {group[f'{o}:ndcg'].mean():.4f} "
                  f"({group[f'{o}:repeat'].mean():.4f} + {group[f'{o}:new'].mean():.4f}) | "
                  f"{group[f'{p}:ndcg'].mean():.4f} ({group[f'{p}:repeat'].mean():.4f} + "
                  f"{group[f'{p}:new'].mean():.4f}) | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
