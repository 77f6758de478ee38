"""What stores and channels change in the recommendations, on synthetic data with channels and store stock.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_channels.py [--preset beauty] [--customers 1500]
        [--seed 7] [--test-days 60] [--json]

The two-stage model (``configs/recommender.yaml``, the preset's defaults) is fitted on the generated data up to
``test-days`` before its end. For every customer the model knows who bought through a channel in the test window,
the top 10 with ``channel=<that channel>`` is compared with the top 10 without a channel: hit rate (any product
bought through that channel in the window among the ten) and recall@10 of those products. For store purchases,
the list asked for the store they bought in (``channel=store&store_id=...``, ``availability=in_store``) is
compared too, with the share of the channel-blind list that the store does not have on its shelf. The training
data is built (CPU seconds) with and without the ``channel`` column: the channel boosts are a count over the
purchase lines, the only part of the fit that reads the channel.
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
from models.recommenders.data import TrainingData  # noqa: E402
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
    parser.add_argument("--customers", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-days", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tables = generate(args.preset, customers=args.customers, seed=args.seed)
    tx = tables[Tables.transactions]
    cutoff = tx[C.timestamp].max().normalize() - pd.Timedelta(days=args.test_days)
    blind_tables = {**tables, Tables.transactions: tx.drop(columns=[C.channel])}
    # What the channel column costs the fit: the training data built with and without it (the boosts are a count
    # over the purchase lines; nothing else of the fit reads the channel), best of three, after a warm-up.
    TrainingData.build(blind_tables, cutoff)
    build = {}
    for name, source in (("without", blind_tables), ("with", tables)):
        runs = []
        for _ in range(3):
            started = time.process_time()
            TrainingData.build(source, cutoff)
            runs.append(time.process_time() - started)
        build[name] = min(runs)
    started = time.process_time()
    model = registry()["clientele"].from_config(load_config(), preset=args.preset).fit(tables, cutoff=cutoff)
    fit = time.process_time() - started

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
    plain = model.recommend(list(store_of.index), n=K, locale=None)
    codes = model.catalog_.products.to_internal(plain[C.product_id])
    stores = store_of.reindex(plain[C.customer_id]).to_numpy()
    on = np.zeros(len(codes), dtype=bool)
    for store in np.unique(stores):
        at = stores == store
        on[at] = shelf(products, store)[codes[at]]
    asked = [model.recommend(list(group.index), n=K, filters=Filters(channel="store", store_id=store), locale=None)
             for store, group in store_of.groupby(store_of)]
    plain_f = plain[[C.customer_id, C.product_id]]
    asked_f = pd.concat(asked)[[C.customer_id, C.product_id]]
    (hit0, rec0), (hit1, rec1) = scores(plain_f, target), scores(asked_f, target)
    rows.append({"list": "channel=store&store_id=<their store>", "customers": len(store_of),
                 "hit@10 without": round(hit0, 4), "hit@10 with": round(hit1, 4),
                 "recall@10 without": round(rec0, 4), "recall@10 with": round(rec1, 4),
                 "not on the shelf without": round(1.0 - float(on.mean()), 4)})
    result = {"preset": args.preset, "customers": args.customers, "seed": args.seed, "test_days": args.test_days,
              "data_cpu_s_without_channel": round(build["without"], 2),
              "data_cpu_s_with_channel": round(build["with"], 2), "fit_cpu_s": round(fit, 1),
              "rows": rows}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{args.preset}, {args.customers} customers, seed {args.seed}, last {args.test_days} days held out; "
          f"training data {build['without']:.2f} CPU s without the channel column, {build['with']:.2f} with it; "
          f"the whole fit {fit:.1f} CPU s")
    columns = list(rows[-1])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


if __name__ == "__main__":
    main()
