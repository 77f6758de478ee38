"""New products: ranking what nobody had bought before the cutoff, the project's model against its peers.

Protocol: cutoff = the start of the last ``test_days`` calendar days; new products = first sold on or after the
cutoff (never before), known to every model only through the products table (on a transaction log without one:
:func:`features.products.product_attributes`, names and prices from the log); test customers bought before the
cutoff and bought at least one new product after it; every model ranks *all* new products for each test customer
from the pre-cutoff purchases and the products table; the target is the new products the customer bought.
Recall@20 = hits / min(20, |target|) and NDCG@10 with binary gains, by the recommender evaluation's own
:func:`~training.evaluate_recommender.ranking_metrics`.

The project's model is :class:`~models.recommenders.new_products.NewProductScorer`: the attribute two-tower, or,
with ``ranker.enabled``, the blend learned from the windows of ``test_days`` before the cutoff.

Peers, side by side in the same run:

- ``random``: a random order (seeded);
- ``category_affinity``: the customer's pre-cutoff share of purchases in the product's category, ties broken by
  the category's pre-cutoff popularity;
- ``attribute_popularity``: the category's pre-cutoff popularity, the same list for everyone;
- ``attribute_knn``: TF-IDF cosine between the new product's attribute tokens and those of each product the
  customer bought (the same tokens the project's model reads), summed over their purchases, keeping each new
  product's ``knn_neighbours`` nearest established products.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.columns import Columns as C
from features.columns import Tables
from features.exceptions import DataError
from features.idmap import IdMap
from features.products import attribute_tokens, product_attributes
from models.recommenders.attribute_tower import NewProductsConfig
from models.recommenders.new_products import NewProductScorer, tfidf_vectors
from models.recommenders.new_products import attribute_knn as knn_scores
from models.recommenders.data import tables_before
from training.evaluate_recommender import _purchases, ranking_metrics, window_start

OWN = "clientele"
PEERS = ("random", "category_affinity", "attribute_popularity", "attribute_knn")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class NewProductSplit:
    """The cutoff, the new products and what the test customers bought of them.

    Attributes
    ----------
    cutoff, end
        Training data is every row before ``cutoff``; the test window is ``[cutoff, end)``.
    products
        The products table every model reads (all products, new ones included).
    new_products
        Ids of the products first sold inside the window, sorted.
    customers
        Test customers, sorted.
    target
        ``customer_id``, ``product_id``: the new products each test customer bought.
    """

    cutoff: pd.Timestamp
    end: pd.Timestamp
    products: pd.DataFrame
    new_products: np.ndarray
    customers: np.ndarray
    target: pd.DataFrame

    def training_tables(self, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """What a model may read: every table before the cutoff, and the products table."""
        return {**tables_before(tables, self.cutoff), Tables.products: self.products}


def new_product_split(tables: dict[str, pd.DataFrame], test_days: int) -> NewProductSplit:
    """The split of the protocol (module docstring).

    Raises
    ------
    DataError
        No product is first sold inside the window, or no customer bought one of them after buying before.
    """
    cutoff, end = window_start(tables, test_days)
    purchases = _purchases(tables)
    first = purchases.groupby(purchases[C.product_id].astype("str"))[C.timestamp].min()
    new = np.sort(first.index[(first >= cutoff) & (first < end)].to_numpy(dtype=object))
    if len(new) == 0:
        raise DataError(f"no product was first sold in [{cutoff.date()}, {end.date()}): nothing new to rank; "
                        f"use another --test-days")
    time_ = purchases[C.timestamp]
    before = purchases[time_ < cutoff]
    after = purchases[(time_ >= cutoff) & (time_ < end) & purchases[C.product_id].astype("str").isin(new)]
    customers = np.intersect1d(before[C.customer_id].astype("str").unique(), after[C.customer_id].astype("str").unique())
    if len(customers) == 0:
        raise DataError(f"no customer who bought before {cutoff.date()} bought a new product in "
                        f"[{cutoff.date()}, {end.date()}): use another --test-days")
    target = after[[C.customer_id, C.product_id]].astype("str").drop_duplicates()
    target = target[target[C.customer_id].isin(customers)].reset_index(drop=True)
    return NewProductSplit(cutoff=cutoff, end=end, products=product_attributes(tables), new_products=new,
                           customers=customers, target=target)


# ------------------------------------------------------------------------------------------------ peers


def _history(train: dict[str, pd.DataFrame], customers: np.ndarray, products: IdMap) -> sp.csr_matrix:
    """Customers x products: pre-cutoff purchase lines per pair (distinct days)."""
    purchases = _purchases(train)
    day = purchases[C.timestamp].dt.floor("D")
    pairs = pd.DataFrame({"c": purchases[C.customer_id].astype("str"), "p": purchases[C.product_id].astype("str"),
                          "d": day}).drop_duplicates()
    users = pd.Index(customers).get_indexer(pairs["c"])
    items = products.to_internal(pairs["p"], unknown="missing")
    keep = (users >= 0) & (items >= 0)
    return sp.csr_matrix((np.ones(keep.sum()), (users[keep], items[keep])), shape=(len(customers), len(products)))


def _category_counts(train: dict[str, pd.DataFrame], products: pd.DataFrame) -> pd.Series:
    purchases = _purchases(train)
    category = products.set_index(C.product_id)[C.category]
    return purchases[C.product_id].astype("str").map(category).value_counts()


def category_affinity(split: NewProductSplit, train: dict[str, pd.DataFrame]) -> np.ndarray:
    """Customer's pre-cutoff share of purchases in the product's category, ties by category popularity."""
    products = split.products
    catalog = IdMap(products[C.product_id].astype("str").to_numpy())
    history = _history(train, split.customers, catalog)
    codes, names = pd.factorize(products[C.category].astype(object), use_na_sentinel=True)
    n_cat = len(names) + 1  # the last column: no category
    codes = np.where(codes < 0, n_cat - 1, codes)
    onehot = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)), shape=(len(codes), n_cat))
    per_cat = np.asarray((history @ onehot).todense())
    share = per_cat / np.maximum(per_cat.sum(axis=1, keepdims=True), 1)
    new_codes = codes[catalog.to_internal(split.new_products)]
    popularity = attribute_popularity(split, train)
    # The tie-break never outweighs a difference in share (shares differ by at least 1 / purchases).
    return share[:, new_codes] + 1e-6 * popularity / max(popularity.max(), 1)


def attribute_popularity(split: NewProductSplit, train: dict[str, pd.DataFrame]) -> np.ndarray:
    """The category's pre-cutoff purchase lines, one row shared by every customer."""
    counts = _category_counts(train, split.products)
    category = split.products.set_index(C.product_id)[C.category].reindex(split.new_products)
    return np.broadcast_to(category.map(counts).fillna(0).to_numpy(dtype=float), (len(split.customers),
                                                                                  len(split.new_products)))


def attribute_knn(split: NewProductSplit, train: dict[str, pd.DataFrame], neighbours: int,
                  price_bands: int, name_pairs: bool) -> np.ndarray:
    """Sum over the customer's purchases of the TF-IDF cosine between attribute tokens (top ``neighbours`` per
    new product): :func:`models.recommenders.new_products.attribute_knn`, the blend's own kNN feature."""
    products = split.products
    catalog = IdMap(products[C.product_id].astype("str").to_numpy())
    vectors = tfidf_vectors(attribute_tokens(products, price_bands, name_pairs))
    return knn_scores(vectors, _history(train, split.customers, catalog), catalog.to_internal(split.new_products),
                      neighbours)


# --------------------------------------------------------------------------------------------- protocol


def _ranked(split: NewProductSplit, scores: np.ndarray, k: int) -> pd.DataFrame:
    """Top ``k`` of each customer's scores as (customer_id, rank, product_id); ties in product order."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return pd.DataFrame({C.customer_id: np.repeat(split.customers, k), "rank": np.tile(np.arange(1, k + 1),
                                                                                      len(split.customers)),
                         C.product_id: split.new_products[order].ravel()})


def evaluate_new_products(tables: dict[str, pd.DataFrame], test_days: int | None = None,
                          config: NewProductsConfig | None = None, models: list[str] | None = None,
                          progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """Fit the project's attribute model and every peer before the cutoff and score them on the new products.

    Parameters
    ----------
    tables
        Canonical tables (``transactions`` with ``product_id``; ``products`` when there is one).
    test_days
        Length of the test window (default ``evaluation.test_days`` of configs/new_products.yaml).
    config
        The new-products configuration (default: configs/new_products.yaml of the project, else the packaged).
    models
        Restrict the run to these names; default the project's model and every peer.
    progress
        Called with one line per step.

    Returns
    -------
    dict
        Model name -> ``recall@20``, ``ndcg@10``, ``hit@10``, ``customers``, ``fit_seconds``; the project's model
        under ``clientele``, first.
    """
    config = config if config is not None else NewProductsConfig.load()
    settings = config.evaluation
    test_days = int(test_days or settings.test_days)
    k_recall, k_ndcg = settings.k_recall, settings.k_ndcg
    split = new_product_split(tables, test_days)
    train = split.training_tables(tables)
    if progress:
        progress(f"cutoff {split.cutoff.date()}: {len(split.new_products):,} new products, "
                 f"{len(split.customers):,} test customers, {len(split.target):,} target pairs")
    model = config.model
    scorers: dict[str, Callable[[], np.ndarray]] = {
        OWN: lambda: NewProductScorer(model, config.ranker.model_copy(update={"window_days": test_days}))
        .fit(train, split.cutoff).score(split.customers, split.new_products, split.products),
        "random": lambda: np.random.default_rng(settings.seed).random((len(split.customers),
                                                                       len(split.new_products))),
        "category_affinity": lambda: category_affinity(split, train),
        "attribute_popularity": lambda: attribute_popularity(split, train),
        "attribute_knn": lambda: attribute_knn(split, train, settings.knn_neighbours, model.price_bands,
                                               model.name_pairs),
    }
    names = models or [OWN, *PEERS]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        if name not in scorers:
            raise DataError(f"unknown model '{name}' (known: {', '.join(scorers)})")
        started = time.perf_counter()
        scores = scorers[name]()
        seconds = time.perf_counter() - started
        metrics = ranking_metrics(_ranked(split, scores, max(k_recall, k_ndcg)), split.target, k_recall, k_ndcg,
                                  k_ndcg)
        results[name] = {**metrics, "fit_seconds": round(seconds, 2)}
        if progress:
            progress(f"{name}: ndcg@{k_ndcg} {metrics[f'ndcg@{k_ndcg}']:.4f}, recall@{k_recall} "
                     f"{metrics[f'recall@{k_recall}']:.4f}, {seconds:.1f} s")
    return results


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a Markdown table, with the project's ratio to ``category_affinity`` and the best peer."""
    cols = ("recall@20", "ndcg@10", "hit@10", "fit_seconds")
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, m in results.items():
        cells = [f"{m[c]:.1f}" if c == "fit_seconds" else f"{m[c]:.4f}" for c in cols]
        lines.append(f"| {'**' + name + '**' if name == OWN else name} | " + " | ".join(cells) + " |")
    peers = {k: v for k, v in results.items() if k != OWN}
    if OWN in results and peers:
        ours = results[OWN]["ndcg@10"]
        best = max(peers, key=lambda k: peers[k]["ndcg@10"])
        lines.append("")
        if "category_affinity" in peers and peers["category_affinity"]["ndcg@10"] > 0:
            lines.append(f"{OWN} / category_affinity on ndcg@10: "
                         f"{ours / peers['category_affinity']['ndcg@10']:.3f}")
        if peers[best]["ndcg@10"] > 0:
            lines.append(f"{OWN} / best peer ({best}) on ndcg@10: {ours / peers[best]['ndcg@10']:.3f}")
    return "\n".join(lines)


def evaluate_new_products_cli(data: str | Path, mapping: str | Path | None, test_days: int, as_json: bool) -> dict:
    """``clientele evaluate new-products``: load the data, run :func:`evaluate_new_products`, print the result
    (``--json``: one object, model name -> ``recall@20`` / ``ndcg@10``, the project's under ``clientele``)."""
    from features.io import load_dataset
    from features.settings import get_settings

    config = NewProductsConfig.load()  # read before the data: a bad file stops here
    dataset = load_dataset(data, mapping, erasures=get_settings().erasures())
    results = evaluate_new_products(dataset.tables, test_days, config,
                                    progress=lambda line: print(line, file=sys.stderr, flush=True))
    report = {name: {key: (round(v, 5) if isinstance(v, float) else v) for key, v in m.items()}
              for name, m in results.items()}
    print(json.dumps(report) if as_json else format_table(report), flush=True)
    return report
