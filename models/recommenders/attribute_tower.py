"""Attribute two-tower model (PyTorch): scores products nobody has bought yet from what they are.

A product's representation is built from its attribute tokens only (:func:`features.products.attribute_tokens`:
category levels, subcategory, brand, price band within the category, free attributes, name words and word
pairs), never from its id, so a product launched yesterday has one as good as a best seller's. A customer is the
recency-weighted mean of the *context* representations of the products they bought (a second token table: buying
a product predicts what goes with it, not only more of the same). The score of customer ``u`` for product ``i``
at time ``t`` is

    score = u . e_i + b_i + a(t - launched_i)

with ``b_i`` a popularity prior learned from the tokens and ``a`` a learned effect of the product's age (new
arrivals sell differently from the back catalogue; a product without ``launched_at`` is dated by its first sale
and a product never sold counts as launched at the cutoff). Training is causal, like the task it serves: every
purchase before the cutoff is a target, predicted from the customer's purchases on earlier days only, with a
softmax over every product on sale at that time (sampled over a shared random subset in very large catalogues).
Recent purchases are drawn more often (``target_recency_days``).

The artefact carries its own configuration, vocabulary and learned tables (``save`` / ``load``, no pickle).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from features.columns import Columns as C
from features.columns import Tables
from features.config import InteractionConfig
from features.configfile import ConfigModel
from features.exceptions import ConfigError, DataError
from features.i18n import message
from features.idmap import IdMap
from features.products import attribute_tokens, product_attributes
from features.purchases import without_returns
from models.recommenders.base import Recommender, RecommenderParams
from models.ranking.lambdarank import RankerParams
from models.recommenders.config import Params, parse_params
from models.recommenders.data import Catalog, TrainingData

FORMAT = "clientele.attribute_tower"
FORMAT_VERSION = 1
_NS_PER_DAY = 86_400 * 10**9


class AttributeTowerParams(Params):
    """Hyperparameters (the ``model`` section of configs/new_products.yaml).

    Attributes
    ----------
    dims
        Size of the product and customer representations.
    steps, batch_size, learning_rate, weight_decay
        Adam optimisation: ``steps`` batches of ``batch_size`` purchases.
    history
        Latest purchase lines of a customer that make up their representation.
    recency_days
        A history line ``d`` days older than the moment scored weighs ``exp(-d / recency_days)``.
    target_recency_days
        Training purchases ``d`` days before the cutoff are drawn with weight ``exp(-d / target_recency_days)``.
    price_bands, name_pairs, min_token_products
        Tokens: price bands within a category, word pairs of names, and the fewest sold products a token must
        describe to be learned (a rarer token cannot generalise).
    launch_buckets_days
        Product-age buckets of the age effect ``a``.
    full_softmax_max_items, negatives
        Above this catalogue size the softmax runs over the batch's targets plus this many shared random products.
    threads, device, random_state
        Torch CPU threads; ``auto`` picks a GPU when there is one; seed of every draw.
    """

    dims: int = Field(64, ge=2)
    steps: int = Field(800, ge=1)
    batch_size: int = Field(512, ge=8)
    learning_rate: float = Field(0.01, gt=0)
    weight_decay: float = Field(1e-6, ge=0)
    history: int = Field(50, ge=1)
    recency_days: float = Field(90.0, gt=0)
    target_recency_days: float = Field(120.0, gt=0)
    price_bands: int = Field(5, ge=1)
    name_pairs: bool = True
    min_token_products: int = Field(2, ge=1)
    launch_buckets_days: tuple[int, ...] = (7, 14, 30, 60, 120, 240, 365)
    full_softmax_max_items: int = Field(30_000, ge=1)
    negatives: int = Field(4096, ge=1)
    threads: int = Field(1, ge=1)
    device: str = "auto"
    random_state: int = 0


class NewProductsEvaluation(Params):
    """The ``evaluation`` section: the protocol of ``clientele evaluate new-products`` and its kNN peer."""

    test_days: int = Field(30, ge=1)
    k_recall: int = Field(20, ge=1)
    k_ndcg: int = Field(10, ge=1)
    knn_neighbours: int = Field(50, ge=1)
    seed: int = 0


class NewProductRankerParams(Params):
    """The ``ranker`` section of configs/new_products.yaml.

    Attributes
    ----------
    enabled
        Rank new products by the learned blend (:mod:`models.recommenders.new_products`); off by default, the
        tower's score alone: measured on UCI Online Retail and the synthetic stores, the blend did not beat it
        (README, New products).
    windows, window_days
        Past windows the blend learns from, each ``window_days`` long (the evaluation sets it to its test window).
    max_customers
        Customers per window at most (a random share beyond).
    knn_neighbours
        Established products kept per new product by the kNN feature.
    lambdarank
        LightGBM settings (:class:`models.ranking.lambdarank.RankerParams`).
    """

    enabled: bool = False
    windows: int = Field(6, ge=1)
    window_days: int = Field(30, ge=1)
    max_customers: int = Field(20_000, ge=10)
    knn_neighbours: int = Field(50, ge=1)
    lambdarank: RankerParams = RankerParams(n_estimators=300, learning_rate=0.05, num_leaves=7,
                                            min_child_samples=100, truncation_level=20, early_stopping_rounds=60,
                                            validation_share=0.2)


class NewProductsConfig(ConfigModel):
    """configs/new_products.yaml: the model's hyperparameters and the evaluation protocol."""

    DEFAULT_FILE: ClassVar[str] = "new_products.yaml"
    model: AttributeTowerParams = AttributeTowerParams()
    ranker: NewProductRankerParams = NewProductRankerParams()
    evaluation: NewProductsEvaluation = NewProductsEvaluation()

    def with_seed(self, seed: int) -> "NewProductsConfig":
        """The same configuration with the model's ``random_state`` set to ``seed``."""
        return self.model_copy(update={"model": self.model.model_copy(update={"random_state": seed})})


@dataclass(frozen=True)
class _History:
    """Purchase lines sorted by (customer, time): ``user``, ``item``, ``day`` (days since the epoch)."""

    user: np.ndarray
    item: np.ndarray
    day: np.ndarray
    start: np.ndarray  # first line of each customer (length n_users + 1)


class AttributeTower:
    """The attribute two-tower model (see the module docstring).

    Parameters
    ----------
    params
        Hyperparameters; keyword arguments override single fields.
    """

    def __init__(self, params: AttributeTowerParams | dict[str, Any] | None = None, **overrides: Any):
        base = params.model_dump() if isinstance(params, AttributeTowerParams) else dict(params or {})
        self.params = parse_params(AttributeTowerParams, {**base, **overrides}, "new products: model")

    # ------------------------------------------------------------------------------------------------ fit

    def fit(self, tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp | str | None = None) -> "AttributeTower":
        """Learn from the purchases before ``cutoff`` and the attributes of every product in the tables.

        Parameters
        ----------
        tables
            Canonical tables: ``transactions`` (with ``product_id``) and, when present, ``products`` (every
            product it lists gets a representation, sold or not).
        cutoff
            Only purchases strictly before it are read (default: just after the latest transaction).

        Returns
        -------
        AttributeTower
            ``self``, fitted.

        Raises
        ------
        DataError
            No transactions with ``product_id``, or no purchase before the cutoff.
        """
        tx = tables.get(Tables.transactions)
        if tx is None or C.product_id not in tx.columns:
            raise DataError("transactions: column 'product_id' is missing (required for new-product scores)")
        cutoff = (pd.Timestamp(tx[C.timestamp].max()) + pd.Timedelta(1, "ns") if cutoff is None
                  else pd.Timestamp(cutoff))
        purchases = without_returns(tx[(tx[C.timestamp] < cutoff) & tx[C.product_id].notna()])
        if purchases.empty:
            raise DataError(f"transactions: no purchase with a product_id before {cutoff}")
        attrs = product_attributes({Tables.transactions: purchases, **({Tables.products: tables[Tables.products]}
                                    if Tables.products in tables else {})})
        customers = IdMap(np.sort(purchases[C.customer_id].astype("str").unique()))
        products = IdMap(attrs[C.product_id].astype("str").to_numpy())
        day = purchases[C.timestamp].to_numpy(dtype="datetime64[ns]").astype(np.int64) // _NS_PER_DAY
        return self.fit_purchases(attrs, customers, customers.to_internal(purchases[C.customer_id].astype("str")),
                                  products.to_internal(purchases[C.product_id].astype("str")), day, cutoff)

    def fit_purchases(self, attrs: pd.DataFrame, customers: IdMap, user: np.ndarray, item: np.ndarray,
                      day: np.ndarray, cutoff: pd.Timestamp) -> "AttributeTower":
        """:meth:`fit` on purchase lines already on indices (what a recommender's training data holds).

        Parameters
        ----------
        attrs
            :func:`features.products.product_attributes` of every product, row ``i`` describing product ``i``.
        customers
            Customer ids; ``user`` indexes them.
        user, item, day
            One entry per purchase line before ``cutoff``: customer and product indices, day since the epoch.
        cutoff
            The as-of time.

        Returns
        -------
        AttributeTower
            ``self``, fitted.
        """
        started = time.perf_counter()
        p = self.params
        self.cutoff_ = pd.Timestamp(cutoff)
        self.products_ = IdMap(attrs[C.product_id].astype("str").to_numpy())
        self.customers_ = customers
        history = self._history(np.asarray(user, dtype=np.int64), np.asarray(item, dtype=np.int64),
                                np.asarray(day, dtype=np.int64))
        sold = np.zeros(len(self.products_), dtype=bool)
        sold[history.item] = True
        tokens = attribute_tokens(attrs, p.price_bands, p.name_pairs)
        self.vocabulary_ = _vocabulary(tokens, sold, p.min_token_products)
        self.launch_day_ = launch_days(attrs, history.item, history.day, _day(self.cutoff_))
        self.product_tokens_ = _token_matrix(tokens, self.vocabulary_)
        self._train(history)
        self._profiles(history)
        self.fit_seconds_ = round(time.perf_counter() - started, 2)
        return self

    def _history(self, user: np.ndarray, item: np.ndarray, day: np.ndarray) -> _History:
        return _purchase_history(user, item, day, len(self.customers_))

    def _bucket(self, age_days: np.ndarray) -> np.ndarray:
        """Age bucket: 0 for not launched yet (masked out), then 1.. by ``launch_buckets_days``."""
        edges = np.asarray(self.params.launch_buckets_days, dtype=np.int64)
        return np.where(age_days < 0, 0, 1 + np.searchsorted(edges, age_days, side="right"))

    def _device(self, torch: Any) -> Any:
        if self.params.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.params.device)

    def _train(self, history: _History) -> None:
        import torch

        p = self.params
        torch.set_num_threads(p.threads)
        gen = torch.Generator().manual_seed(p.random_state)
        rng = np.random.default_rng(p.random_state)
        device = self._device(torch)
        n_items, n_tokens = self.product_tokens_.shape
        bags = _Bags(self.product_tokens_, torch, device)
        scale = 1.0 / np.sqrt(p.dims)
        emb = (torch.randn(n_tokens, p.dims, generator=gen) * scale).to(device).requires_grad_()
        ctx = (torch.randn(n_tokens, p.dims, generator=gen) * scale).to(device).requires_grad_()
        bias = torch.zeros(n_tokens, 1, device=device, requires_grad=True)
        age = torch.zeros(len(p.launch_buckets_days) + 2, device=device, requires_grad=True)
        opt = _Adam([emb, ctx, bias, age], p.learning_rate, p.weight_decay, torch)
        launch = torch.as_tensor(self.launch_day_, device=device)
        # Age bucket of every age a batch can hold, looked up instead of searched (a gather, not a bisection).
        oldest = int(max(history.day.max() - self.launch_day_.min(), 0)) + 1
        newest = int(max(self.launch_day_.max() - history.day.min(), 0)) + 1
        buckets = torch.as_tensor(self._bucket(np.arange(-newest, oldest + 1)), device=device)
        bucket_effect = _bucket_effect(torch)
        cutoff_day = _day(self.cutoff_)
        weight = np.cumsum(np.exp(-(cutoff_day - history.day) / p.target_recency_days))
        weight /= weight[-1]
        # First line of each example's day within its customer: the history ends just before it.
        first_of_day = _first_of_group(history.user, history.day)
        sampled = n_items > p.full_softmax_max_items
        self.losses_ = []
        for step in range(p.steps):
            batch = np.minimum(np.searchsorted(weight, rng.random(p.batch_size), side="right"), len(weight) - 1)
            rows, cols, vals = self._history_rows(history, batch, first_of_day)
            t_day = torch.as_tensor(history.day[batch], device=device)
            target = torch.as_tensor(history.item[batch], device=device)
            if sampled:
                chosen = np.unique(np.concatenate([history.item[batch], rng.integers(0, n_items, p.negatives)]))
                cand = torch.as_tensor(chosen, device=device)
                target = torch.searchsorted(cand, target)
                item_bags = _Bags(self.product_tokens_[chosen], torch, device)
            else:
                cand, item_bags = None, bags
            e = item_bags.sum(emb)
            b = item_bags.sum(bias).squeeze(1)
            # A customer: the weighted sum of the context vectors of the products in their history.
            user = torch.nn.functional.embedding_bag(
                torch.as_tensor(cols, device=device), bags.sum(ctx),
                torch.as_tensor(np.searchsorted(rows, np.arange(p.batch_size)), device=device), mode="sum",
                per_sample_weights=torch.as_tensor(vals.astype(np.float32), device=device))
            item_launch = launch if cand is None else launch[cand]
            bucket = buckets[t_day[:, None] - item_launch[None, :] + newest]
            logits = user @ e.T + b[None, :] + bucket_effect(age, bucket)
            logits = logits.masked_fill(bucket == 0, float("-inf"))
            loss = torch.nn.functional.cross_entropy(logits, target)
            opt.step(loss)
            if step % 50 == 0 or step == p.steps - 1:
                self.losses_.append(round(float(loss.detach()), 4))
        self.embedding_ = emb.detach().cpu().numpy()
        self.context_ = ctx.detach().cpu().numpy()
        self.bias_ = bias.detach().cpu().numpy()[:, 0]
        self.age_effect_ = age.detach().cpu().numpy()

    def _history_rows(self, history: _History, lines: np.ndarray, end: np.ndarray | None,
                      at_day: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse rows (row, product, weight) of the histories behind ``lines`` (training) or, with ``end=None``,
        of every line of customers ``lines`` up to their latest ``history`` lines (scoring at ``at_day``)."""
        p = self.params
        if end is None:
            users = lines
            stop = history.start[users + 1]
            day = at_day
        else:
            users = history.user[lines]
            stop = end[lines]
            day = history.day[lines]
        lo = np.maximum(history.start[users], stop - p.history)
        length = stop - lo
        rows = np.repeat(np.arange(len(users)), length)
        pos = np.repeat(lo - np.cumsum(np.r_[0, length[:-1]]), length) + np.arange(length.sum())
        w = np.exp(-(day[rows] - history.day[pos]) / p.recency_days)
        total = np.bincount(rows, weights=w, minlength=len(users))
        return rows, history.item[pos], w / total[rows]

    def _profiles(self, history: _History) -> None:
        """Customer vectors at the cutoff (what scoring reads) and product vectors of the known catalogue."""
        cutoff_day = _day(self.cutoff_)
        users = np.arange(len(self.customers_))
        rows, cols, vals = self._history_rows(history, users, None, np.full(len(users), cutoff_day))
        hist = sp.csr_matrix((vals, (rows, cols)), shape=(len(users), len(self.products_)))
        self.customer_vectors_ = np.asarray(hist @ (self.product_tokens_ @ self.context_), dtype=np.float32)
        self.product_vectors_ = np.asarray(self.product_tokens_ @ self.embedding_, dtype=np.float32)
        self.product_bias_ = np.asarray(self.product_tokens_ @ self.bias_, dtype=np.float32).ravel()
        self.cutoff_day_ = cutoff_day

    # --------------------------------------------------------------------------------------------- score

    def at(self, attrs: pd.DataFrame, launch_day: np.ndarray, n_users: int, user: np.ndarray, item: np.ndarray,
           day: np.ndarray, cutoff: pd.Timestamp) -> "TowerView":
        """The learned tables applied to a catalogue and purchase history of another moment (a later cutoff, a
        catalogue with products launched since the fit): products by their tokens, customers by their latest
        purchases, the age effect at ``cutoff``. No training: a fit serves every later moment it did not see.

        Parameters
        ----------
        attrs
            :func:`features.products.product_attributes` of the catalogue, row ``i`` product ``i``.
        launch_day
            Launch day (days since the epoch) of every product of ``attrs``.
        n_users, user, item, day
            Customers, and their purchase lines before ``cutoff`` on the catalogue's indices.
        cutoff
            The moment scored.
        """
        p = self.params
        tokens = _token_matrix(attribute_tokens(attrs, p.price_bands, p.name_pairs), self.vocabulary_)
        cutoff_day = _day(cutoff)
        history = _purchase_history(np.asarray(user, np.int64), np.asarray(item, np.int64), np.asarray(day, np.int64),
                                    n_users)
        rows, cols, vals = self._history_rows(history, np.arange(n_users), None, np.full(n_users, cutoff_day))
        hist = sp.csr_matrix((vals, (rows, cols)), shape=(n_users, len(attrs)))
        prior = np.asarray(tokens @ self.bias_, dtype=np.float32).ravel() + \
            self._age_effect(cutoff_day - np.asarray(launch_day, dtype=np.int64))
        return TowerView(customers=np.asarray(hist @ (tokens @ self.context_), dtype=np.float32),
                         products=np.asarray(tokens @ self.embedding_, dtype=np.float32),
                         prior=prior.astype(np.float32))

    def product_representation(self, products: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectors, popularity priors and launch days of products described by a products frame (products the
        model has never seen included: they are represented by their attribute tokens alone).

        Price bands are quantiles within the frame's categories: pass the whole catalogue with the new products,
        not a new product alone (alone, it is the cheapest of its category)."""
        attrs = product_attributes({Tables.products: products})
        matrix = _token_matrix(attribute_tokens(attrs, self.params.price_bands, self.params.name_pairs),
                               self.vocabulary_)
        launch = np.full(len(attrs), self.cutoff_day_, dtype=np.int64)
        if C.launched_at in attrs.columns:
            listed = pd.to_datetime(attrs[C.launched_at], errors="coerce").to_numpy(dtype="datetime64[ns]")
            known = ~np.isnat(listed)
            launch[known] = listed[known].astype(np.int64) // _NS_PER_DAY
        return (np.asarray(matrix @ self.embedding_, dtype=np.float32),
                np.asarray(matrix @ self.bias_, dtype=np.float32).ravel(), launch)

    def score(self, customers: np.ndarray | list[str], products: np.ndarray | list[str]) -> np.ndarray:
        """Scores (customers x products) at the cutoff; an unknown customer gets the attribute prior alone.

        Raises
        ------
        DataError
            A product id the model does not know (pass its attributes to :meth:`product_representation`).
        """
        items = self.products_.to_internal(list(map(str, products)), unknown="raise")
        users = self.customers_.to_internal(list(map(str, customers)), unknown="missing")
        prior = self.product_bias_[items] + self._age_effect(self.cutoff_day_ - self.launch_day_[items])
        out = np.broadcast_to(prior, (len(users), len(items))).copy()
        known = users >= 0
        out[known] += self.customer_vectors_[users[known]] @ self.product_vectors_[items].T
        return out

    def _age_effect(self, age_days: np.ndarray) -> np.ndarray:
        # At the cutoff nothing listed is "not launched yet": a future launch date counts as just launched.
        return self.age_effect_[self._bucket(np.maximum(age_days, 0))]

    def similar_vectors(self, products: np.ndarray | list[str]) -> np.ndarray:
        """Unit-length product vectors (cosine similarity between products by their attributes)."""
        items = self.products_.to_internal(list(map(str, products)), unknown="raise")
        v = self.product_vectors_[items]
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    # ------------------------------------------------------------------------------------- save / load

    def save(self, path: str | Path) -> Path:
        """Write the model (configuration, vocabulary, id maps and learned tables) to folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        vocab = np.array(sorted(self.vocabulary_, key=self.vocabulary_.get), dtype=str)
        tokens = self.product_tokens_.tocsr()
        np.savez(path / "state.npz", vocabulary=vocab, customers=np.asarray(self.customers_.external_ids, dtype=str),
                 products=np.asarray(self.products_.external_ids, dtype=str), launch_day=self.launch_day_,
                 tokens_data=tokens.data, tokens_indices=tokens.indices, tokens_indptr=tokens.indptr,
                 embedding=self.embedding_, context=self.context_, bias=self.bias_, age_effect=self.age_effect_,
                 customer_vectors=self.customer_vectors_)
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "params": self.params.model_dump(mode="json"),
                "cutoff": self.cutoff_.isoformat(), "losses": self.losses_, "fit_seconds": self.fit_seconds_}
        (path / "meta.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AttributeTower":
        """Read a model written by :meth:`save`; it scores with the configuration it was trained with.

        Raises
        ------
        DataError
            The folder does not hold an attribute-tower model of a readable version.
        """
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text())
            state = np.load(path / "state.npz", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a saved attribute-tower model ({exc})") from None
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise DataError(f"{path}: not a saved attribute-tower model of version {FORMAT_VERSION}")
        model = cls(meta["params"])
        model.cutoff_ = pd.Timestamp(meta["cutoff"])
        model.losses_, model.fit_seconds_ = meta["losses"], meta["fit_seconds"]
        model.vocabulary_ = {str(t): i for i, t in enumerate(state["vocabulary"])}
        model.customers_ = IdMap(state["customers"].astype(object))
        model.products_ = IdMap(state["products"].astype(object))
        model.launch_day_ = state["launch_day"]
        model.product_tokens_ = sp.csr_matrix((state["tokens_data"], state["tokens_indices"], state["tokens_indptr"]),
                                              shape=(len(model.products_), len(model.vocabulary_)))
        model.embedding_, model.context_ = state["embedding"], state["context"]
        model.bias_, model.age_effect_ = state["bias"], state["age_effect"]
        model.customer_vectors_ = state["customer_vectors"]
        model.product_vectors_ = np.asarray(model.product_tokens_ @ model.embedding_, dtype=np.float32)
        model.product_bias_ = np.asarray(model.product_tokens_ @ model.bias_, dtype=np.float32).ravel()
        model.cutoff_day_ = _day(model.cutoff_)
        return model


@dataclass(frozen=True)
class TowerView:
    """A fitted tower applied at one moment (:meth:`AttributeTower.at`): customer and product vectors and each
    product's prior (token popularity plus the effect of its age); score = customers @ products.T + prior."""

    customers: np.ndarray
    products: np.ndarray
    prior: np.ndarray


def _day(moment: pd.Timestamp) -> int:
    """Days since the epoch of a time stamp."""
    return int(np.datetime64(pd.Timestamp(moment), "ns").astype(np.int64) // _NS_PER_DAY)


def launch_days(attrs: pd.DataFrame, item: np.ndarray, day: np.ndarray, as_of_day: int) -> np.ndarray:
    """Launch day (days since the epoch) of every product of a catalogue: ``launched_at``, else its first sale,
    else ``as_of_day`` (never sold: new); a launch date after the first sale gives way to the sale.

    Parameters
    ----------
    attrs
        :func:`features.products.product_attributes` of the catalogue, row ``i`` product ``i``.
    item, day
        Purchase lines before the as-of time: product index and day since the epoch.
    as_of_day
        Day since the epoch of the as-of time.
    """
    launch = np.full(len(attrs), as_of_day, dtype=np.int64)
    if len(item):
        first = np.full(len(attrs), np.iinfo(np.int64).max)
        np.minimum.at(first, np.asarray(item, dtype=np.int64), np.asarray(day, dtype=np.int64))
        launch = np.where(first < np.iinfo(np.int64).max, first, launch)
    if C.launched_at in attrs.columns:
        listed = pd.to_datetime(attrs[C.launched_at], errors="coerce").to_numpy(dtype="datetime64[ns]")
        known = ~np.isnat(listed)
        launch[known] = np.minimum(listed[known].astype(np.int64) // _NS_PER_DAY, launch[known])
    return launch


def _purchase_history(user: np.ndarray, item: np.ndarray, day: np.ndarray, n_users: int) -> _History:
    # One line per (customer, product, day): a quantity of ten is one choice.
    user, item, day = (np.asarray(a, dtype=np.int64) for a in (user, item, day))
    if len(user):
        first = int(day.min())
        days, items = int(day.max()) - first + 1, int(item.max()) + 1
        key = np.unique((user * days + (day - first)) * items + item)  # (user, day, item) order, one sort
        user, rest = key // (days * items), key % (days * items)
        day, item = rest // items + first, rest % items
    start = np.searchsorted(user, np.arange(n_users + 1))
    return _History(user=user, item=item, day=day, start=start)


def _vocabulary(tokens: list[list[str]], sold: np.ndarray, min_products: int) -> dict[str, int]:
    """Tokens describing at least ``min_products`` sold products (only those get trained), in sorted order."""
    counts: dict[str, int] = {}
    for i in np.flatnonzero(sold):
        for token in set(tokens[i]):
            counts[token] = counts.get(token, 0) + 1
    kept = sorted(t for t, c in counts.items() if c >= min_products)
    return {t: i for i, t in enumerate(kept)}


def _token_matrix(tokens: list[list[str]], vocabulary: dict[str, int]) -> sp.csr_matrix:
    """Products x vocabulary, each row the mean of its known tokens (an empty row: no known token)."""
    rows, cols = [], []
    for i, toks in enumerate(tokens):
        known = sorted({vocabulary[t] for t in toks if t in vocabulary})
        rows.extend([i] * len(known))
        cols.extend(known)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    count = np.bincount(rows, minlength=len(tokens)).astype(np.float32)
    vals = 1.0 / count[rows] if len(rows) else np.zeros(0, dtype=np.float32)
    return sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(len(tokens), max(len(vocabulary), 1)))


class _Bags:
    """The rows of a products x tokens matrix as embedding bags: ``sum(table)`` is ``matrix @ table``, with a
    backward pass that adds into the rows of ``table`` it read (a sparse COO product's backward is several times
    slower)."""

    def __init__(self, matrix: sp.csr_matrix, torch: Any, device: Any):
        matrix = sp.csr_matrix(matrix)
        self.torch = torch
        self.indices = torch.as_tensor(matrix.indices.astype(np.int64), device=device)
        self.offsets = torch.as_tensor(matrix.indptr[:-1].astype(np.int64), device=device)
        self.weights = torch.as_tensor(matrix.data.astype(np.float32), device=device)

    def sum(self, table: Any) -> Any:
        return self.torch.nn.functional.embedding_bag(self.indices, table, self.offsets, mode="sum",
                                                      per_sample_weights=self.weights)


def _bucket_effect(torch: Any) -> Any:
    """``effect[bucket]`` whose backward sums the gradient per bucket with one bincount (autograd's generic
    indexing backward scatters a batch x catalogue gradient into a handful of cells, element by element)."""

    class BucketEffect(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, effect: Any, bucket: Any) -> Any:
            ctx.save_for_backward(bucket)
            ctx.size = effect.shape[0]
            return effect[bucket]

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (bucket,) = ctx.saved_tensors
            summed = torch.bincount(bucket.reshape(-1), weights=grad.reshape(-1), minlength=ctx.size)
            return summed.to(grad.dtype), None

    return BucketEffect.apply


class _Adam:
    """Adam (Kingma & Ba, 2015) with L2 weight decay, as ``torch.optim.Adam`` computes it; written out because
    ``torch.optim`` imports the compiler stack on first use (3 s per process, more than a small fit)."""

    def __init__(self, params: list[Any], lr: float, weight_decay: float, torch: Any,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.weight_decay, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.torch = torch
        self.m = [torch.zeros_like(q) for q in params]
        self.v = [torch.zeros_like(q) for q in params]
        self.t = 0

    def step(self, loss: Any) -> None:
        torch = self.torch
        grads = torch.autograd.grad(loss, self.params)
        self.t += 1
        b1, b2 = self.betas
        with torch.no_grad():
            for q, g, m, v in zip(self.params, grads, self.m, self.v):
                if self.weight_decay:
                    g = g + self.weight_decay * q
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
                q.addcdiv_(m, denom, value=-self.lr / (1 - b1 ** self.t))


def _first_of_group(user: np.ndarray, day: np.ndarray) -> np.ndarray:
    """For lines sorted by (user, day): index of the first line of the same (user, day)."""
    head = np.r_[True, (user[1:] != user[:-1]) | (day[1:] != day[:-1])] if len(user) else np.zeros(0, bool)
    starts = np.flatnonzero(head)
    return starts[np.cumsum(head) - 1]


# ------------------------------------------------------------------------------------------- the recommender


class AttributeRecommenderParams(RecommenderParams):
    """Hyperparameters of :class:`AttributeRecommender`.

    Attributes
    ----------
    tower
        The attribute model's (:class:`AttributeTowerParams`).
    only_new
        Score only new arrivals (:attr:`RecommenderParams.new_arrival_days`), every other product ``-inf``: the
        two-stage model's generator of new products, whose score the reranker learns to trust.
    """

    tower: AttributeTowerParams = AttributeTowerParams()
    only_new: bool = True


class AttributeRecommender(Recommender):
    """The attribute two-tower model behind the recommender contract (registry name ``attributes``).

    It scores products from what they are, so new arrivals nobody has bought yet get a personal score, and it
    relates products by their attributes (similar products of a product without purchases).

    Attributes
    ----------
    product_vectors_, prior_ : numpy.ndarray
        Product vectors and priors at the cutoff, on the catalogue's indices.
    customer_vectors_ : numpy.ndarray or None
        Customer vectors at the cutoff (None once dropped by :meth:`without_customers`: similar products only).
    """

    name = "attributes"
    Params = AttributeRecommenderParams
    default_reason = message("rec.new_for_taste")

    def _fit(self, data: TrainingData) -> None:
        self._apply(data, None, None)

    def fit_tower(self, data: TrainingData, attrs: pd.DataFrame | None, tower: AttributeTower | None,
                  interactions: InteractionConfig | None = None) -> "AttributeRecommender":
        """Fit on ``data`` with an attribute model already trained (at this cutoff or an earlier one: it is
        applied to this catalogue and history without training, :meth:`AttributeTower.at`).

        Parameters
        ----------
        data
            The training data of this cutoff.
        attrs
            :func:`features.products.product_attributes` of a catalogue holding every product of ``data``
            (other rows are ignored); None: the names, prices and categories of ``data``'s catalogue.
        tower
            The trained model; None trains one on ``data``.
        interactions
            Interaction matrix weights.
        """
        self._fit_common(data, interactions)
        self._apply(data, attrs, tower)
        return self

    def _apply(self, data: TrainingData, attrs: pd.DataFrame | None, tower: AttributeTower | None) -> None:
        frame = catalogue_attributes(data.catalog, attrs)
        cutoff_day = _day(data.cutoff)
        age = data.catalog.launch_age
        age = np.zeros(data.n_items) if age is None else np.nan_to_num(np.asarray(age, dtype=np.float64), nan=0.0)
        launch_day = cutoff_day - np.floor(age).astype(np.int64)
        log = data.log
        day = log.day.astype(np.int64)
        if tower is None:
            tower = AttributeTower(self.params.tower).fit_purchases(frame, data.customers, log.user, log.item, day,
                                                                    data.cutoff)
        view = tower.at(frame, launch_day, data.n_users, log.user, log.item, day, data.cutoff)
        self.customer_vectors_ = view.customers
        self.product_vectors_ = view.products
        self.prior_ = view.prior

    def without_customers(self) -> "AttributeRecommender":
        """This model without its customer vectors (what a product page needs; they are most of its size)."""
        self.customer_vectors_ = None
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        if self.customer_vectors_ is None:
            raise ConfigError("recommender 'attributes': kept for similar products only (without_customers())")
        scores = self.customer_vectors_[users] @ self.product_vectors_.T + self.prior_[None, :]
        if self.params.only_new:
            scores[:, ~self.new_arrivals()] = -np.inf
        return scores

    def attribute_similarity(self, items: np.ndarray) -> np.ndarray:
        """Cosine similarity (len(items), n_products) of products' attribute vectors (float64, then float32: the
        same values whichever batch a product is scored in, so a page and the exported lists agree)."""
        vectors = self.product_vectors_.astype(np.float64)
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return (unit[np.asarray(items, dtype=np.int64)] @ unit.T).astype(np.float32)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        return self.attribute_similarity(items)

    def _explain_similar(self, items: np.ndarray, similar: np.ndarray) -> np.ndarray:
        names = self.catalog_.names[items]
        text = np.array([message("rec.same_kind", product=name) for name in names], dtype=object)
        return np.where(similar >= 0, text[:, None], "").astype(object)

    def _state(self) -> dict[str, np.ndarray]:
        state = {"product_vectors": self.product_vectors_, "prior": self.prior_}
        if self.customer_vectors_ is not None:
            state["customer_vectors"] = self.customer_vectors_
        return state

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.product_vectors_, self.prior_ = state["product_vectors"], state["prior"]
        self.customer_vectors_ = state.get("customer_vectors")


def catalogue_attributes(catalog: Catalog, attrs: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`features.products.product_attributes` rows of every product of a recommender's catalogue, in its
    index order: the rows of ``attrs`` for the products it describes, the catalogue's names, prices and
    categories for the rest."""
    ids = pd.Index(catalog.products.external_ids.astype(str), name=C.product_id)
    names = np.asarray(catalog.names, dtype=object)
    categories = np.asarray(catalog.categories, dtype=object)
    code = np.asarray(catalog.category, dtype=np.int64)
    own = pd.DataFrame({C.name: np.where(names.astype(str) != ids.to_numpy(), names, None),
                        C.price: np.asarray(catalog.price, dtype=np.float64),
                        C.category: np.where(code >= 0, categories[np.maximum(code, 0)] if len(categories) else None,
                                             None)}, index=ids)
    if attrs is not None:
        given = attrs.assign(**{C.product_id: attrs[C.product_id].astype(str)}).drop_duplicates(C.product_id)
        given = given.set_index(C.product_id).reindex(ids)
        for column in own.columns:
            given[column] = given[column].where(given[column].notna(), own[column]) if column in given.columns \
                else own[column]
        own = given
    if own[C.category].isna().all():
        own = own.drop(columns=C.category)
    return product_attributes({Tables.products: own.reset_index()})
