"""Quick reranker experiments on cached candidates: label windows built once, variants trained in seconds.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/experiment_reranker.py [--data PATH] [--mapping YAML|none]
        [--test-days 30] [--windows 10] [--stride 10] [--cache DIR] [--variant NAME=JSON ...] [--seeds 0 1]

The two-stage model's training rows (candidates, features, labels) of ``--windows`` label windows ``--stride``
days apart, plus the same weeks a season earlier, and the test window's rows (its customers' candidates, labelled
with what they bought) are built once by the model's own code and cached as .npz under ``--cache``. Each variant
then trains only the reranker on a choice of those windows and scores the test customers' candidates: NDCG@10 and
Recall@20 over every test customer (a customer whose purchases are all outside the candidates scores 0; the ideal
DCG counts every product bought, as the evaluation does). The figures are the reranked candidates' as ranked,
without the recommendation policy's new-arrival places, so they sit a little beside ``clientele evaluate``'s; they
are for comparing variants on one split. A variant is JSON: ``{"windows": [offsets in strides], "seasonal": bool,
"ranker": {RankerParams},
"held_out_by_customer": bool}`` (e.g. ``{"ranker": {"ensemble": 3}}``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.config import FeatureConfig  # noqa: E402
from features.io import load_dataset  # noqa: E402
from models.recommenders import registry  # noqa: E402  (before models.ranking: the package imports it)
from models.ranking.lambdarank import LambdaRanker, RankerParams  # noqa: E402
from models.recommenders.config import load_config  # noqa: E402
from models.recommenders.data import tables_before  # noqa: E402
from models.recommenders.two_stage import _GROUP_STRIDE, _first_purchase, _vocabularies  # noqa: E402
from training.evaluate_recommender import OWN, temporal_split, window_start  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "online_retail.parquet"
DEFAULT_MAPPING = ROOT / "configs" / "datasets" / "online_retail.yaml"


def build_rows(model: Any, tables: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp,
               interactions: Any, attributes: Any, offset: int, path: Path) -> dict[str, np.ndarray]:
    """One label window's candidate rows (cached at ``path``)."""
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    rows = model._training_rows(tables, start, end, interactions, group_offset=offset * _GROUP_STRIDE,
                                attributes=attributes)
    x, y, g, _ = rows
    out = {"x": x, "y": y, "g": g, "names": np.array(model.feature_names_), "categorical":
           np.array(model._categorical, dtype=str)}
    np.savez(path, **out)
    return out


def ranked_metrics(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, target_size: dict[int, int],
                   k_ndcg: int = 10, k_recall: int = 20) -> dict[str, float]:
    """Mean NDCG@k and Recall@k of the candidates ordered by ``scores`` per group, over every customer of
    ``target_size`` (group id -> distinct products bought)."""
    order = np.lexsort((-scores, groups))
    g, y = groups[order], labels[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    position = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    gain = np.where((position < k_ndcg) & (y > 0), 1.0 / np.log2(position + 2.0), 0.0)
    hit = ((position < k_recall) & (y > 0)).astype(np.float64)
    dcg = dict(zip(g[starts].tolist(), np.add.reduceat(gain, starts).tolist()))
    hits = dict(zip(g[starts].tolist(), np.add.reduceat(hit, starts).tolist()))
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k_ndcg + 2)))
    ndcg, recall = [], []
    for group, size in target_size.items():
        ndcg.append(dcg.get(group, 0.0) / discounts[min(size, k_ndcg) - 1])
        recall.append(hits.get(group, 0.0) / min(size, k_recall))
    return {"ndcg@10": float(np.mean(ndcg)), "recall@20": float(np.mean(recall)), "customers": len(target_size)}


def split_oracle(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, bought: np.ndarray,
                 target_size: dict[int, int], shifts: np.ndarray) -> dict[str, float]:
    """Upper bound of a per-customer repeat/explore split: every customer's already-bought candidates moved up
    or down by the one shift of ``shifts`` (in units of the customer's score spread) that serves them best."""
    spread = pd.Series(scores).groupby(groups).transform("std").fillna(1.0).to_numpy() + 1e-9
    best: dict[int, float] = {}
    for shift in shifts:
        shifted = scores + shift * spread * bought
        order = np.lexsort((-shifted, groups))
        g, y = groups[order], labels[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        position = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
        gain = np.where((position < 10) & (y > 0), 1.0 / np.log2(position + 2.0), 0.0)
        for group, dcg in zip(g[starts].tolist(), np.add.reduceat(gain, starts).tolist()):
            best[group] = max(best.get(group, 0.0), dcg)
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, 12)))
    return {"ndcg@10": float(np.mean([best.get(gr, 0.0) / discounts[min(n, 10) - 1]
                                      for gr, n in target_size.items()]))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--mapping", type=Path, default=DEFAULT_MAPPING)
    parser.add_argument("--test-days", type=int, default=30)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--stride", type=float, default=10.0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/clientele-reranker-cache"))
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--split-oracle", action="store_true",
                        help="also the best per-customer shift of already-bought candidates (an upper bound)")
    parser.add_argument("--clientele", type=json.loads, default={}, help="overrides of the two-stage model")
    args = parser.parse_args(argv)

    features = FeatureConfig.load()
    mapping = None if str(args.mapping).lower() == "none" else args.mapping
    tables = load_dataset(args.data, mapping).tables
    start, end = window_start(tables, args.test_days)
    split = temporal_split(tables, start, end)
    config = load_config()
    model = registry()[OWN].from_config(config, feature_config=features, window_days=args.test_days,
                                        **{"max_train_rows": 10**9, **args.clientele})
    key = hashlib.sha1(json.dumps([str(args.data), args.test_days, args.clientele, config[OWN]], sort_keys=True,
                                  default=str).encode()).hexdigest()[:12]
    cache = args.cache / key
    cache.mkdir(parents=True, exist_ok=True)
    train = tables_before(tables, start)
    model._vocab = _vocabularies(train)
    window = pd.Timedelta(days=args.test_days)
    stride = pd.Timedelta(days=args.stride)
    first = _first_purchase(train)
    starts = {k: start - window - k * stride for k in range(args.windows)}
    starts = {k: s for k, s in starts.items() if s - first >= window}
    season = start - pd.Timedelta(days=model.params.features.season_lag_days)
    began = time.perf_counter()
    attributes = model._attribute_models(train, list(starts.values()) + ([season] if season - first >= window
                                                                          else []), start)
    parts = {}
    for k, s in starts.items():
        parts[k] = build_rows(model, train, s, s + window, features.interactions, attributes, k + 1,
                              cache / f"window-{s.date()}.npz")
        print(f"window {k} from {s.date()}: {len(parts[k]['y']):,} rows ({time.perf_counter() - began:.0f} s)",
              file=sys.stderr, flush=True)
    if season - first >= window:
        parts["season"] = build_rows(model, train, season, season + window, features.interactions, attributes,
                                     999, cache / f"window-{season.date()}.npz")
    whole = tables_before(tables, end)
    test = build_rows(model, whole, start, end, features.interactions, attributes, 0, cache / "test.npz")
    names = test["names"].tolist()
    categorical = test["categorical"].tolist()
    # Every test customer's target size, keyed by the test rows' group id (the customer's internal index).
    from models.recommenders.data import TrainingData
    data = TrainingData.build(whole, start, features.interactions)
    size = split.target.groupby("customer_id").size()
    internal = data.customers.to_internal(size.index.to_numpy(dtype=object), unknown="missing")
    target_size = {int(u): int(n) for u, n in zip(internal, size.to_numpy()) if u >= 0}
    print(f"test customers {len(target_size):,} (evaluation: {len(split.customers):,}); rows {len(test['y']):,}",
          file=sys.stderr)
    oracle = ranked_metrics(test["y"].astype(np.float64), test["y"], test["g"], target_size)
    print(f"oracle (candidates bought first): {oracle}", file=sys.stderr)

    variants = {}
    for text in args.variant or ["default={}"]:
        name, _, change = text.partition("=")
        variants[name] = json.loads(change or "{}")
    print("| variant | seed | ndcg@10 | recall@20 | rows | trees | s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, change in variants.items():
        chosen = [k for k in change.get("windows", [0, 3, 6, 9]) if k in parts]
        if change.get("seasonal", True) and "season" in parts:
            chosen.append("season")
        x = np.concatenate([parts[k]["x"] for k in chosen])
        y = np.concatenate([parts[k]["y"] for k in chosen])
        g = np.concatenate([parts[k]["g"] for k in chosen])
        params = RankerParams(**{**model.params.ranker.model_dump(), **change.get("ranker", {})})
        for seed in args.seeds:
            t = time.perf_counter()
            by = g % _GROUP_STRIDE if change.get("held_out_by_customer") else None
            ranker = LambdaRanker(params, seed).fit(x, y, g, names, categorical, held_out_by=by)
            predicted = ranker.predict(test["x"])
            result = ranked_metrics(predicted, test["y"], test["g"], target_size)
            print(f"| {name} | {seed} | {result['ndcg@10']:.4f} | {result['recall@20']:.4f} | {len(y):,} | "
                  f"{ranker.num_trees()} | {time.perf_counter() - t:.0f} |", flush=True)
            if args.split_oracle:
                bought = (test["x"][:, names.index("x_days")] > 0).astype(np.float64)
                shifts = np.array([-1e3, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 1e3])
                print(f"  per-customer repeat/explore split, oracle: "
                      f"{split_oracle(predicted, test['y'], test['g'], bought, target_size, shifts)}",
                      file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
