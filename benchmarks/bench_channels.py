"""What stores and channels change in the recommendations, on synthetic data with channels and store stock.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_channels.py [--preset beauty] [--customers 3000]
        [--seed 7] [--test-days 60] [--json]

The two-stage model (``configs/recommender.yaml``, the preset's defaults) is fitted on the generated data up to
``test-days`` before its end. For every customer the model knows who bought through a channel in the test window,
the top 10 with ``channel=<that channel>`` is compared with the top 10 without a channel: hit rate (any product
bought through that channel in the window among the ten) and recall@10 of those products. For store purchases,
the list asked for the store they bought in (``channel=store&store_id=...``, ``availability=in_store``) is
compared too, with the share of the channel-blind list that the store does not have on its shelf. The fit is timed
with and without the ``channel`` column (the channel boosts are a count over the purchase lines).
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
from features.synthetic import generate  # noqa: E402
from models.recommenders import Filters, registry  # noqa: E402
from models.recommenders.config import load_config  # noqa: E402
from models.recommenders.policy import shelf  # noqa: E402

K = 10


def scores(recs: pd.DataFrame, target: pd.DataFrame) -> tuple[float, float]:
    """Hit rate and mean recall@K of ``recs`` (customer_id, product_id) against ``target`` (the same columns)."""
    size = target.groupby(C.customer_id).size()
    hits = recs.merge(target, on=[C.customer_id, C.product_id]).groupby(C.customer_id).size()
    hits = hits.reindex(size.index, fill_value=0)
    return float((hits > 0).mean()), float((hits / size).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="beauty")
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-days", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tables = generate(args.preset, customers=args.customers, seed=args.seed)
    tx = tables[Tables.transactions]
    cutoff = tx[C.timestamp].max().normalize() - pd.Timedelta(days=args.test_days)
    model_cls = registry()["clientele"]
    config = load_config()
    started = time.perf_counter()
    blind = model_cls.from_config(config, preset=args.preset).fit(
        {**tables, Tables.transactions: tx.drop(columns=[C.channel])}, cutoff=cutoff)
    fit_blind = time.perf_counter() - started
    started = time.perf_counter()
    model = model_cls.from_config(config, preset=args.preset).fit(tables, cutoff=cutoff)
    fit_channels = time.perf_counter() - started
    del blind

    test = tx[(tx[C.timestamp] >= cutoff) & ~tx[C.is_return].astype(bool)]
    known = set(model.customers_.external_ids[model.active_ & model.consent_])
    test = test[test[C.customer_id].isin(known)]
    rows = []
    for channel in ("store", "online", "app"):
        target = test.loc[test[C.channel] == channel, [C.customer_id, C.product_id]].drop_duplicates()
        customers = sorted(target[C.customer_id].unique())
        plain = model.recommend(customers, n=K, locale=None)[[C.customer_id, C.product_id]]
        asked = model.recommend(customers, n=K, filters=Filters(channel=channel), locale=None)
        (hit0, rec0), (hit1, rec1) = scores(plain, target), scores(asked[[C.customer_id, C.product_id]], target)
        rows.append({"list": f"channel={channel}", "customers": len(customers), "hit@10 without": round(hit0, 4),
                     "hit@10 with": round(hit1, 4), "recall@10 without": round(rec0, 4),
                     "recall@10 with": round(rec1, 4)})

    # In store: each store purchase's store asks for its customer; one store per customer (their most used).
    bought = test[test[C.channel] == "store"]
    store_of = bought.groupby(C.customer_id)[C.store_id].agg(lambda s: s.value_counts().index[0])
    target = bought[bought[C.store_id].to_numpy() == store_of.reindex(bought[C.customer_id]).to_numpy()][
        [C.customer_id, C.product_id]].drop_duplicates()
    products = model.catalog_.table()
    plain, asked, missing = [], [], []
    for customer, store in store_of.items():
        base = model.recommend([customer], n=K, locale=None)
        on_shelf = shelf(products, store)[model.catalog_.products.to_internal(base[C.product_id])]
        missing.append(1.0 - on_shelf.mean() if len(on_shelf) else 0.0)
        plain.append(base)
        asked.append(model.recommend([customer], n=K, filters=Filters(channel="store", store_id=store),
                                     locale=None))
    plain_f = pd.concat(plain)[[C.customer_id, C.product_id]]
    asked_f = pd.concat(asked)[[C.customer_id, C.product_id]]
    (hit0, rec0), (hit1, rec1) = scores(plain_f, target), scores(asked_f, target)
    rows.append({"list": "channel=store&store_id=<their store>", "customers": len(store_of),
                 "hit@10 without": round(hit0, 4), "hit@10 with": round(hit1, 4),
                 "recall@10 without": round(rec0, 4), "recall@10 with": round(rec1, 4),
                 "not on the shelf without": round(float(np.mean(missing)), 4)})
    result = {"preset": args.preset, "customers": args.customers, "seed": args.seed, "test_days": args.test_days,
              "fit_s_without_channel": round(fit_blind, 1), "fit_s_with_channel": round(fit_channels, 1),
              "rows": rows}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{args.preset}, {args.customers} customers, seed {args.seed}, last {args.test_days} days held out; "
          f"fit {fit_blind:.1f} s without the channel column, {fit_channels:.1f} s with it")
    columns = list(rows[-1])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


if __name__ == "__main__":
    main()
