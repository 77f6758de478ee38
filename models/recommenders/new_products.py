"""New-products scorer: a LambdaRank blend over the attribute tower and the customer's attribute affinities.

The attribute two-tower (:mod:`models.recommenders.attribute_tower`) learns which attributes go with a customer's
history; a plain look at the history is sometimes as telling (a beauty customer's categories, a jewellery
customer's one brand). Which of them to trust depends on the store, so it is learned: for each of ``windows`` past
windows of ``window_days`` before the cutoff, the products first sold in it (never before) are ranked for the
customers who bought before it and bought one of them in it, each pair described by

- the tower's score (and its standard score among the customer's candidates),
- per attribute field (every level of the category path, subcategory, brand, price band, each free attribute, name
  words, name word pairs): the customer's share of purchases carrying the product's values, and the values'
  share of all purchases (their popularity),
- the attribute kNN similarity of the product to the customer's history (:func:`attribute_knn`),
- the product's log price, its distance to the customer's usual price (overall and in the product's category),
  its days since launch, and the customer's number of purchases,

and LightGBM LambdaRank learns how to order them from what those customers bought. The tower of the windows is
trained once, before the earliest window, and applied to each (:meth:`AttributeTower.at`); the tower that scores
at the cutoff is trained on everything before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.columns import Columns as C
from features.columns import Tables
from features.exceptions import DataError
from features.idmap import IdMap
from features.products import attribute_tokens, product_attributes
from features.purchases import without_returns
from models.ranking.lambdarank import LambdaRanker
from models.recommenders.attribute_tower import (_NS_PER_DAY, AttributeTower, AttributeTowerParams,
                                                 NewProductRankerParams, _day, launch_days)
from models.recommenders.config import parse_params
from models.recommenders.data import tables_before


@dataclass(frozen=True)
class _Moment:
    """What is known at one as-of time: the catalogue's attributes, the purchase-day history on its indices."""

    attrs: pd.DataFrame
    products: IdMap
    customers: IdMap
    user: np.ndarray
    item: np.ndarray
    day: np.ndarray
    as_of: pd.Timestamp


def _moment(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, attrs: pd.DataFrame) -> _Moment:
    purchases = _purchases(tables_before(tables, as_of))
    products = IdMap(attrs[C.product_id].astype("str").to_numpy())
    customers = IdMap(np.sort(purchases[C.customer_id].astype("str").unique()))
    item = products.to_internal(purchases[C.product_id].astype("str"), unknown="missing")
    keep = item >= 0
    day = purchases[C.timestamp].to_numpy(dtype="datetime64[ns]").astype(np.int64) // _NS_PER_DAY
    return _Moment(attrs=attrs, products=products, customers=customers,
                   user=customers.to_internal(purchases[C.customer_id].astype("str"))[keep], item=item[keep],
                   day=day[keep], as_of=as_of)


def _purchases(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    tx = tables[Tables.transactions]
    return without_returns(tx[tx[C.product_id].notna()])


def purchase_days(user: np.ndarray, item: np.ndarray, day: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Customers x products: distinct purchase days of each pair."""
    pairs = np.unique(np.column_stack([user, item, day]).astype(np.int64), axis=0) if len(user) else \
        np.zeros((0, 3), dtype=np.int64)
    return sp.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_users, n_items))


def tfidf_vectors(tokens: list[list[str]]) -> sp.csr_matrix:
    """Unit-length TF-IDF rows of products' attribute tokens (binary term frequency)."""
    vocab = {t: i for i, t in enumerate(sorted({t for toks in tokens for t in toks}))}
    rows = np.repeat(np.arange(len(tokens)), [len(set(t)) for t in tokens])
    cols = np.asarray([vocab[t] for toks in tokens for t in sorted(set(toks))], dtype=np.int64)
    tf = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(tokens), max(len(vocab), 1)))
    idf = np.log((1 + tf.shape[0]) / (1 + np.asarray((tf > 0).sum(axis=0)).ravel())) + 1
    x = tf @ sp.diags(idf)
    norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1 / np.maximum(norm, 1e-12)) @ x)


def attribute_knn(vectors: sp.csr_matrix, history: sp.csr_matrix, new: np.ndarray, neighbours: int) -> np.ndarray:
    """Sum over the customer's purchased products of the cosine between them and each new product, keeping each
    new product's ``neighbours`` nearest established products.

    Parameters
    ----------
    vectors
        :func:`tfidf_vectors` of the catalogue.
    history
        Customers x catalogue, non-zero where the customer bought the product.
    new
        Catalogue indices of the products to score (nobody's history).
    neighbours
        Neighbours kept per new product.

    Returns
    -------
    numpy.ndarray
        (customers, len(new)) scores.
    """
    sim = np.asarray((vectors[new] @ vectors.T).todense())
    sim[:, new] = 0.0
    if neighbours < sim.shape[1]:
        cut = -np.partition(-sim, neighbours - 1, axis=1)[:, neighbours - 1: neighbours]
        sim = np.where(sim >= cut, sim, 0.0)
    bought = history.copy()
    bought.data[:] = 1.0
    return np.asarray(bought @ sim.T)


# Popularity is a feature only for the fields that say what kind of product it is: the popularity of a brand, a
# name word or a free attribute value nearly names the product, and the blend would learn which products sold in
# its windows instead of how new products sell.
_KIND_FIELDS = ("category", "subcategory", "price")


def _field(token: str) -> str:
    """The attribute field of a token: its prefix, the category path's level counted ("category=a/b": category2)."""
    prefix, _, value = token.partition("=")
    return f"category{value.count('/') + 1}" if prefix == "category" else prefix


def pair_features(attrs: pd.DataFrame, history: sp.csr_matrix, new: np.ndarray, tower: np.ndarray,
                  as_of_day: int, price_bands: int, name_pairs: bool, neighbours: int
                  ) -> tuple[np.ndarray, list[str]]:
    """Features of every (customer, new product) pair, customer-major: row ``u * len(new) + j``.

    Parameters
    ----------
    attrs
        :func:`features.products.product_attributes` of the catalogue (row ``i``: product ``i``).
    history
        Customers x catalogue purchase days before ``as_of_day``.
    new
        Catalogue indices of the new products.
    tower
        (customers, len(new)) attribute-tower scores.
    as_of_day
        Days since the epoch of the moment scored.
    price_bands, name_pairs, neighbours
        Token settings (the tower's) and the kNN's neighbours.

    Returns
    -------
    features, names
    """
    n_users, n_new = history.shape[0], len(new)
    tokens = attribute_tokens(attrs, price_bands, name_pairs)
    vocab = sorted({t for toks in tokens for t in toks})
    index = {t: i for i, t in enumerate(vocab)}
    rows = np.repeat(np.arange(len(tokens)), [len(set(t)) for t in tokens])
    cols = np.asarray([index[t] for toks in tokens for t in sorted(set(toks))], dtype=np.int64)
    marks = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(tokens), max(len(vocab), 1)))
    counts = np.asarray(history.sum(axis=1)).ravel()
    share = sp.diags(1 / np.maximum(counts, 1)) @ history  # each customer's purchases sum to 1
    taste = np.asarray((share @ marks).todense())  # customer x token: share of purchases carrying it
    overall = np.asarray(history.sum(axis=0)).ravel() @ marks
    overall = np.asarray(overall).ravel() / max(history.sum(), 1)
    fields = np.asarray([_field(t) for t in vocab], dtype=object)
    columns: list[np.ndarray] = []
    names: list[str] = []
    z = (tower - tower.mean(axis=1, keepdims=True)) / np.maximum(tower.std(axis=1, keepdims=True), 1e-9)
    columns += [tower, z]
    names += ["tower", "tower_z"]
    new_marks = marks[new]
    for field in sorted(set(fields)):
        in_field = sp.diags((fields == field).astype(np.float64))
        m = sp.csr_matrix(new_marks @ in_field)
        n_tok = np.asarray(m.sum(axis=1)).ravel()
        mean = sp.diags(np.where(n_tok > 0, 1 / np.maximum(n_tok, 1), 0.0)) @ m  # mean over the product's values
        affinity = np.asarray(mean @ taste.T).T  # customers x new
        affinity[:, n_tok == 0] = np.nan
        columns.append(affinity)
        names.append(f"a_{field}")
        if field.startswith(_KIND_FIELDS):
            popularity = np.where(n_tok > 0, np.asarray(mean @ overall).ravel(), np.nan)
            columns.append(np.broadcast_to(popularity, (n_users, n_new)))
            names.append(f"pop_{field}")
    knn = attribute_knn(tfidf_vectors(tokens), history, new, neighbours)
    columns.append(knn)
    names.append("knn")
    price = pd.to_numeric(attrs[C.price], errors="coerce").to_numpy(dtype=np.float64) if C.price in attrs.columns \
        else np.full(len(attrs), np.nan)
    log_price = np.log1p(np.where(price > 0, price, np.nan))
    known = np.isfinite(log_price).astype(np.float64)
    spent = share @ np.nan_to_num(log_price)
    weight = share @ known
    usual = np.where(weight > 0, spent / np.maximum(weight, 1e-12), np.nan)
    columns.append(log_price[new][None, :] - usual[:, None])
    names.append("price_vs_usual")
    if C.category in attrs.columns:
        codes, _ = pd.factorize(attrs[C.category].astype(object))
        codes = np.where(codes < 0, codes.max() + 1, codes)
        onehot = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)))
        spent_c = np.asarray((share @ sp.diags(np.nan_to_num(log_price)) @ onehot).todense())
        weight_c = np.asarray((share @ sp.diags(known) @ onehot).todense())
        in_cat = weight_c[:, codes[new]]
        usual_c = np.where(in_cat > 0, spent_c[:, codes[new]] / np.maximum(in_cat, 1e-12), np.nan)
        columns.append(log_price[new][None, :] - usual_c)
        names.append("price_vs_usual_in_category")
    launch = pd.to_datetime(attrs[C.launched_at], errors="coerce") if C.launched_at in attrs.columns else None
    age = np.full(n_new, np.nan)
    if launch is not None:
        days = launch.to_numpy(dtype="datetime64[ns]")[new]
        ok = ~np.isnat(days)
        age[ok] = as_of_day - days[ok].astype(np.int64) // _NS_PER_DAY
    columns.append(np.broadcast_to(age, (n_users, n_new)))
    columns.append(np.broadcast_to(np.log1p(counts)[:, None], (n_users, n_new)))
    names += ["days_since_launch", "log_purchases"]
    features = np.stack([np.asarray(c, dtype=np.float32).reshape(n_users, n_new) for c in columns], axis=2)
    return features.reshape(n_users * n_new, len(columns)), names


class NewProductScorer:
    """Scores products nobody had bought before the cutoff for every customer (module docstring).

    Parameters
    ----------
    tower
        The attribute tower's hyperparameters.
    ranker
        The blend's (``enabled: false``: the tower alone).
    """

    def __init__(self, tower: AttributeTowerParams | dict[str, Any] | None = None,
                 ranker: NewProductRankerParams | dict[str, Any] | None = None):
        self.tower = AttributeTower(tower).params
        base = ranker.model_dump() if isinstance(ranker, NewProductRankerParams) else dict(ranker or {})
        self.ranker = parse_params(NewProductRankerParams, base, "new products: ranker")

    def fit(self, tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp | str) -> "NewProductScorer":
        """Learn the blend from the windows before ``cutoff`` and train the tower that scores at it.

        Parameters
        ----------
        tables
            Canonical tables: ``transactions`` (rows after the cutoff are never read) and ``products`` when there
            is one (its rows are every product's attributes, new ones included).
        cutoff
            The as-of time.

        Returns
        -------
        NewProductScorer
            ``self``, fitted.

        Raises
        ------
        DataError
            No purchase before the cutoff (from the tower's fit).
        """
        started = time.perf_counter()
        self.cutoff_ = pd.Timestamp(cutoff)
        self.tables_ = tables_before(tables, self.cutoff_)
        self.ranker_ = None
        if self.ranker.enabled:
            self.ranker_, self.feature_names_, self.train_rows_ = self._learn(self.tables_)
        self.tower_ = AttributeTower(self.tower).fit(self.tables_, self.cutoff_)
        self.fit_seconds_ = round(time.perf_counter() - started, 2)
        return self

    def _learn(self, tables: dict[str, pd.DataFrame]) -> tuple[LambdaRanker | None, list[str], int]:
        r = self.ranker
        window = pd.Timedelta(days=r.window_days)
        starts = [self.cutoff_ - k * window for k in range(1, r.windows + 1)]
        purchases = _purchases(tables)
        first = purchases.groupby(purchases[C.product_id].astype("str"))[C.timestamp].min()
        starts = [s for s in starts if s - window > purchases[C.timestamp].min()]
        if not starts:
            return None, [], 0
        tower = AttributeTower(self.tower).fit(tables, min(starts))
        xs, ys, gs, names = [], [], [], []
        rng = np.random.default_rng(self.tower.random_state)
        for k, start in enumerate(starts):
            end = start + window
            new_ids = first.index[(first >= start) & (first < end)]
            inside = purchases[(purchases[C.timestamp] >= start) & (purchases[C.timestamp] < end)]
            inside = inside[inside[C.product_id].astype("str").isin(new_ids)]
            # The catalogue of the window as the protocol has it at the cutoff: names and prices known up to its end.
            attrs = product_attributes({**tables_before(tables, end), **({Tables.products: tables[Tables.products]}
                                        if Tables.products in tables else {})})
            launched = pd.to_datetime(attrs[C.launched_at], errors="coerce") if C.launched_at in attrs.columns \
                else None
            if launched is not None:
                attrs = attrs[~(launched >= end)].reset_index(drop=True)
            moment = _moment(tables, start, attrs)
            new = moment.products.to_internal(np.asarray(new_ids, dtype=object), unknown="missing")
            new = np.sort(new[new >= 0])
            buyers = moment.customers.to_internal(inside[C.customer_id].astype("str"), unknown="missing")
            customers = np.unique(buyers[buyers >= 0])
            if len(new) < 2 or len(customers) == 0:
                continue
            if len(customers) > r.max_customers:
                customers = np.sort(rng.choice(customers, r.max_customers, replace=False))
            x, names = self._features(tower, moment, customers, new)
            bought = pd.DataFrame({"u": buyers, "i": moment.products.to_internal(inside[C.product_id].astype("str"),
                                                                                 unknown="missing")})
            label = np.zeros((len(customers), len(new)), dtype=np.float32)
            u = pd.Index(customers).get_indexer(bought["u"])
            j = pd.Index(new).get_indexer(bought["i"])
            ok = (u >= 0) & (j >= 0)
            label[u[ok], j[ok]] = 1.0
            xs.append(x)
            ys.append(label.ravel())
            gs.append(np.repeat(k * (1 << 32) + customers.astype(np.int64), len(new)))
        if not xs:
            return None, [], 0
        x, y, g = np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)
        if not (y > 0).any():
            return None, [], 0
        ranker = LambdaRanker(r.lambdarank, self.tower.random_state).fit(x, y, g, names)
        return ranker, names, len(y)

    def _features(self, tower: AttributeTower, moment: _Moment, customers: np.ndarray,
                  new: np.ndarray) -> tuple[np.ndarray, list[str]]:
        launch = launch_days(moment.attrs, moment.item, moment.day, _day(moment.as_of))
        view = tower.at(moment.attrs, launch, len(moment.customers), moment.user, moment.item, moment.day,
                        moment.as_of)
        scores = view.customers[customers] @ view.products[new].T + view.prior[new][None, :]
        history = purchase_days(moment.user, moment.item, moment.day, len(moment.customers),
                                len(moment.products))[customers]
        as_of_day = _day(moment.as_of)
        return pair_features(moment.attrs, history, new, scores, as_of_day, self.tower.price_bands,
                             self.tower.name_pairs, self.ranker.knn_neighbours)

    def score(self, customers: np.ndarray | list[str], products: np.ndarray | list[str],
              attrs: pd.DataFrame | None = None) -> np.ndarray:
        """Scores (customers x products) at the cutoff, higher first.

        Parameters
        ----------
        customers, products
            Ids; a customer without purchases before the cutoff gets the features of an empty history.
        attrs
            :func:`features.products.product_attributes` of a catalogue holding ``products`` (default: that of the
            tables the scorer was fitted on).
        """
        scores = self.tower_.score(customers, products)
        if self.ranker_ is None:
            return scores
        attrs = product_attributes(self.tables_) if attrs is None else attrs
        moment = _moment(self.tables_, self.cutoff_, attrs.reset_index(drop=True))
        new = moment.products.to_internal(np.asarray(list(map(str, products)), dtype=object), unknown="raise")
        users = moment.customers.to_internal(np.asarray(list(map(str, customers)), dtype=object), unknown="missing")
        history = purchase_days(moment.user, moment.item, moment.day, len(moment.customers) + 1,
                                len(moment.products))
        rows = np.where(users >= 0, users, len(moment.customers))  # the last row: an empty history
        as_of_day = _day(self.cutoff_)
        x, names = pair_features(moment.attrs, history[rows], new, scores, as_of_day, self.tower.price_bands,
                                 self.tower.name_pairs, self.ranker.knn_neighbours)
        if names != self.feature_names_:
            raise DataError("new products: the features at the cutoff differ from those the blend learned from "
                            f"({len(names)} vs {len(self.feature_names_)}); the catalogue's columns changed")
        return self.ranker_.predict(x).reshape(len(users), len(new))
