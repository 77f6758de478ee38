"""The recommender contract: public fit / recommend / similar / save / load validate inputs and convert ids;
each model implements a private core on internal indices.

Strategies of a recommendation (the ``strategy`` column, also the API's field):

- ``personal``: the customer has purchases or events before the model's cutoff; the model scores them.
- ``cold_start``: the customer is unknown or has no history; they get a fold-in of the ``history`` passed with
  the request (events since the fit) when there is one, otherwise what is popular in their region.
- ``non_personal``: the customer refused profiling (``customers.consent_profiling`` false); they get what is
  popular overall, nothing derived from their own data.

A personal list the model cannot fill (too few scored products pass the filters) is topped up with what is
popular in the customer's region, each such item with its own reason.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from features.i18n import DEFAULT_LOCALE, message, render
from features.columns import Columns as C
from features.columns import EventTypes
from features.config import InteractionConfig
from features.exceptions import ConfigError, DataError
from features.idmap import IdMap
from models.recommenders import signals
from models.recommenders.config import Params, model_section, parse_params, preset_defaults
from models.recommenders.data import Catalog, TrainingData, _text
from models.recommenders.filters import Filters
from models.recommenders.policy import (EVENT_BOOST, EVENT_DECAY, EVENT_MAX_PRODUCTS, EventSettings, ProductTable,
                                       Ranked, Touched)

FORMAT = "clientele.recommender"
FORMAT_VERSION = 1
STATE_FILE = "state.npz"
META_FILE = "meta.json"


RESULT_COLUMNS = ("customer_id", "rank", "product_id", "score", "reason", "strategy")
SIMILAR_COLUMNS = ("product_id", "rank", "similar_product_id", "score", "reason")

InputWeighting = Literal["interactions", "binary", "days"]
# (Recommended place, history product) pairs whose contributions are looked up at once (bounds memory, not
# results), and the largest products x products relation looked up as a dense array (float32: 256 MB).
_ANCHOR_PAIRS = 20_000_000
_DENSE_RELATION_CELLS = 64_000_000


class RecommenderParams(Params):
    """Settings every recommender has.

    Attributes
    ----------
    exclude_bought
        Default of :attr:`Filters.exclude_bought` (the industry preset's ``recommend.exclude_bought``).
    buy_again_share
        Default of :attr:`Filters.buy_again_share` (the preset's ``recommend.buy_again_share``; ``None``: the
        mix the model ranked).
    random_state
        Seed of everything random in the fit: the same data and seed give the same model.
    input
        Matrix the model learns from: ``interactions`` (purchases and events weighted by type, quantity and
        recency, :mod:`features.interactions`), ``binary`` (1 per pair with any interaction) or ``days``
        (number of distinct purchase days).
    fill_window_days
        Popularity used for cold start and to top up short lists counts buyers in this many days before the
        cutoff (``None``: all time).
    segment_min_customers
        A region with fewer buyers than this gets the overall popularity in cold start.
    segment_shrinkage
        Pseudo-purchases of the overall popularity blended into a region's, so a small region is not noise.
    batch_size
        Customers scored at once (bounds memory: batch x catalogue scores).
    serve_depth
        Products in each precomputed list: a customer's candidates (this many overall and this many not bought
        before), and the popular lists. A request is answered from these lists (the API serves up to 100).
    similar_depth
        Similar products precomputed per product (product pages, and the fold-in of live events).
    new_arrival_days
        A product launched less than this many days before the cutoff, or never sold, is a new arrival: what
        the ``new_only`` filter keeps and ``new_arrival_share`` keeps visible.
    new_arrival_share
        Default of :attr:`Filters.new_arrival_share`: the share of a personal list kept for new arrivals when the
        list has them (the industry preset's ``recommend.new_arrival_share``; 0: the list as ranked).
    event_decay, event_products, event_boost
        How live events change a list (:class:`models.recommenders.policy.EventSettings`): each older touched
        product counts ``event_decay`` times the one after it, the latest ``event_products`` count, and their
        similar products weigh ``event_boost`` against the personal list scaled to 0..1.
    """

    exclude_bought: bool = False
    buy_again_share: float | None = Field(None, ge=0, le=1)
    random_state: int = 0
    input: InputWeighting = "interactions"
    fill_window_days: float | None = 90.0
    segment_min_customers: int = 20
    segment_shrinkage: float = 50.0
    batch_size: int = 1024
    serve_depth: int = Field(100, ge=1, le=1000)
    similar_depth: int = Field(50, ge=1, le=500)
    new_arrival_days: float = Field(30.0, gt=0)
    new_arrival_share: float = Field(0.0, ge=0, le=1)
    event_decay: float = Field(EVENT_DECAY, gt=0, le=1)
    event_products: int = Field(EVENT_MAX_PRODUCTS, ge=1)
    event_boost: float = Field(EVENT_BOOST, ge=0)


class Recommender:
    """Base of every recommender.

    Subclasses set ``name`` (the registry key, also the configuration section), ``Params`` (their typed
    hyperparameters) and implement ``_fit`` and ``_score`` on internal indices; ``_similar_scores``,
    ``_score_history`` and ``_explain`` are optional refinements. Fitted state ends in ``_``.
    """

    name: ClassVar[str] = "base"
    Params: ClassVar[type[RecommenderParams]] = RecommenderParams
    default_reason: ClassVar[str] = message("rec.for_you")
    # Hyperparameters that only scoring reads: a fitted model takes new values of them without a refit
    # (:meth:`with_params`), so an evaluation's grid fits once per setting of the others.
    scoring_params: ClassVar[frozenset[str]] = frozenset()
    _registry: ClassVar[dict[str, type["Recommender"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Recommender._registry[cls.name] = cls

    def __init__(self, **params: Any):
        self.params = parse_params(self.Params, params, f"recommender '{self.name}'")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"

    @classmethod
    def from_config(cls, config: dict[str, Any] | None = None, preset: str | Path | None = None,
                    **overrides: Any) -> "Recommender":
        """The model with the hyperparameters of its section in ``configs/recommender.yaml``.

        Parameters
        ----------
        config
            An already loaded configuration (:func:`models.recommenders.config.load_config`).
        preset
            Industry preset whose ``recommend`` defaults apply (e.g. ``jewellery`` excludes already bought).
        overrides
            Hyperparameters that win over the file's and the preset's.
        """
        values = model_section(cls.name, config)
        values.update(preset_defaults(preset))
        values.update(overrides)
        return cls(**values)

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as plain JSON-able values."""
        return self.params.model_dump(mode="json")

    def with_params(self, **changes: Any) -> "Recommender":
        """This fitted model with new values of its :attr:`scoring_params`, without a refit (the fitted state
        is shared, not copied).

        Raises
        ------
        ConfigError
            A change names a parameter the fit depends on, or is out of range.
        """
        self._check_fitted()
        fitted = sorted(set(changes) - self.scoring_params)
        if fitted:
            raise ConfigError(f"recommender '{self.name}': {', '.join(fitted)} change the fit; only "
                              f"{', '.join(sorted(self.scoring_params)) or 'no parameter'} can change without one")
        model = copy.copy(self)
        model.__dict__ = {k: v for k, v in self.__dict__.items() if k not in ("_popular_lists", "_product_table")}
        model.params = parse_params(self.Params, {**self.get_params(), **changes}, f"recommender '{self.name}'")
        return model

    # ------------------------------------------------------------------------------------------------ fit

    def fit(self, tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp | str | None = None,
            interactions: InteractionConfig | None = None) -> "Recommender":
        """Fit on every row strictly before ``cutoff``.

        Parameters
        ----------
        tables
            Canonical tables (``transactions`` with ``product_id``; ``customers``, ``products``, ``events`` used
            when present).
        cutoff
            The as-of time; ``None`` uses all the data.
        interactions
            Event-type weights, quantity damping and recency half-life of the interaction matrix.

        Returns
        -------
        self

        Raises
        ------
        DataError
            The data has no purchase with a product before the cutoff.
        """
        return self.fit_data(TrainingData.build(tables, cutoff, interactions), interactions)

    def fit_data(self, data: TrainingData, interactions: InteractionConfig | None = None) -> "Recommender":
        """Fit on already built :class:`TrainingData` (composite models share one build between generators)."""
        self._fit_common(data, interactions)
        self._fit(data)
        return self

    def _fit_common(self, data: TrainingData, interactions: InteractionConfig | None) -> None:
        """The fitted state every recommender has: ids, catalogue, history, regions, consent, popularity."""
        self.cutoff_ = data.cutoff
        self.customers_ = data.customers
        self.catalog_ = data.catalog
        self.bought_ = data.bought
        self.active_ = np.diff(data.interactions.indptr) > 0
        self.region_, self.regions_ = data.region, data.regions
        self.consent_ = data.consent
        self.event_weights_ = dict((interactions or InteractionConfig()).weights)
        self.__dict__.pop("_popular_lists", None)
        self.__dict__.pop("_product_table", None)
        self._fit_fallback(data)

    def _fit(self, data: TrainingData) -> None:
        raise NotImplementedError

    def _input_matrix(self, data: TrainingData) -> sp.csr_matrix:
        """The customers x products matrix chosen by the ``input`` parameter."""
        if self.params.input == "binary":
            matrix = (data.interactions > 0).astype(np.float32)
        elif self.params.input == "days":
            matrix = data.purchase_days.astype(np.float32)
        else:
            matrix = data.interactions.astype(np.float32)
        return sp.csr_matrix(matrix)

    def _fit_fallback(self, data: TrainingData) -> None:
        """Overall and per-region popularity: cold start and the top-up of short lists."""
        p = self.params
        counts = signals.buyers(data.log, data.n_items, p.fill_window_days)
        if counts.sum() == 0:  # nothing bought in the window: all time is better than nothing
            counts = signals.buyers(data.log, data.n_items)
        # All-time buyers break ties between products equally popular in the window.
        tiebreak = signals.buyers(data.log, data.n_items)
        overall = counts + tiebreak / (tiebreak.max() + 1.0)
        self.fallback_score_ = (overall / max(overall.sum(), 1.0)).astype(np.float64)
        self.fallback_order_ = np.lexsort((np.arange(data.n_items), -self.fallback_score_)).astype(np.int64)
        n_regions = len(data.regions)
        region_counts = signals.segment_buyers(data.log, data.region, n_regions, data.n_items, p.fill_window_days)
        active = np.zeros(n_regions, dtype=np.float64)
        users = data.buyers
        np.add.at(active, data.region[users][data.region[users] >= 0], 1.0)
        self.region_ok_ = active >= p.segment_min_customers
        self.region_score_ = signals.shrunk_share(region_counts, self.fallback_score_, p.segment_shrinkage) \
            if n_regions else np.zeros((0, data.n_items))

    # ------------------------------------------------------------------------------------------- recommend

    def recommend(self, customers: Iterable[object] | str, n: int = 10, filters: Filters | None = None,
                  history: pd.DataFrame | None = None, *, erased: Iterable[object] = (),
                  consent_when_unknown: bool = True, explain: bool = True,
                  locale: str | None = DEFAULT_LOCALE) -> pd.DataFrame:
        """Top-``n`` products for each customer, by the recommendation policy (:mod:`models.recommenders.policy`)
        over this model's lists: the very code the API runs.

        Parameters
        ----------
        customers
            External customer ids (one id or a list).
        n
            Products per customer.
        filters
            What may be recommended (default: in-stock products; already bought per the model's default).
        history
            Events since the fit (``customer_id``, ``product_id``, optionally ``event_type`` (purchase when
            absent) and ``timestamp``; rows in time order when there is no timestamp): known and unknown
            customers' recommendations fold them in; products bought since the fit are left out.
        erased
            Customers erased since the fit: treated as nobody the model knows, and not profiled.
        consent_when_unknown
            Whether a customer the model does not know may be profiled (their events folded in).
        explain
            Work out the reasons (an evaluation that never reads them skips the cost).
        locale
            The language of the reasons (``en``, ``zh-CN``; :mod:`features.i18n`); None keeps them as messages
            (code and parameters), as the serving tables hold them.

        Returns
        -------
        pandas.DataFrame
            ``customer_id``, ``rank`` (1 = best), ``product_id``, ``score``, ``reason``, ``strategy``
            (``personal``, ``cold_start`` or ``non_personal``), customers in the order given. A customer gets
            fewer than ``n`` rows only when fewer products pass the filters among the lists the model keeps
            (``serve_depth`` deep: the API answers from the same lists).

        Raises
        ------
        DataError
            ``n`` is not a positive integer, or ``history`` lacks a required column.
        """
        from models.recommenders import policy

        self._check_fitted()
        n = _positive_int(n, "n")
        filters = filters or Filters()
        exclude = self.params.exclude_bought if filters.exclude_bought is None else bool(filters.exclude_bought)
        share = self.params.buy_again_share if filters.buy_again_share is None else filters.buy_again_share
        new_share = self.params.new_arrival_share if filters.new_arrival_share is None else \
            filters.new_arrival_share
        ids = _id_array(customers)
        codes = self.customers_.to_internal(ids, unknown="missing")
        gone = np.isin(ids, _id_array(list(erased))) if erased else np.zeros(len(ids), dtype=bool)
        codes[gone] = -1
        known = codes >= 0
        consent = np.full(len(ids), bool(consent_when_unknown))
        consent[known] = self.consent_[codes[known]]
        consent[gone] = False
        personal = known & consent
        personal[personal] = self.active_[codes[personal]]
        settings = self.event_settings()
        touched = self._touched(ids, history, settings, consent)
        lists = self._policy_lists(explain)
        lists.prefetch(item for t in touched.values() for item, _ in t.products)  # one batch, not one per event
        out_items: list[list[int]] = []
        out_scores: list[list[float]] = []
        out_reasons: list[list[str]] = []
        strategies: list[str] = []
        rows = np.flatnonzero(personal)
        ranked: dict[int, policy.Ranked] = {}
        for start in range(0, len(rows), self.params.batch_size):
            batch = rows[start:start + self.params.batch_size]
            got = self.candidate_lists(codes[batch], explain=explain)
            ranked.update({int(r): got.row(k) for k, r in enumerate(batch)})
        for r in range(len(ids)):
            code = int(codes[r])
            region = self.region_[code] if code >= 0 else -1
            picked = policy.recommend_one(
                lists, n, filters, exclude, consent=bool(consent[r]), ranked=ranked.get(r),
                bought=self.bought_.indices[self.bought_.indptr[code]:self.bought_.indptr[code + 1]]
                if code >= 0 else None,
                region=str(self.regions_[region]) if region >= 0 else None,
                touched=touched.get(r, policy.NOTHING), settings=settings, buy_again_share=share,
                new_arrival_share=new_share)
            out_items.append(picked.items)
            out_scores.append(picked.scores)
            out_reasons.append(picked.reasons)
            strategies.append(picked.strategy)
        return _frame(ids, out_items, out_scores, out_reasons, strategies, self.catalog_.products, RESULT_COLUMNS,
                      locale)

    def event_settings(self) -> "EventSettings":
        """How live events change this model's lists: its interaction weights and event parameters."""
        from models.recommenders.policy import EventSettings

        p = self.params
        return EventSettings(weights=dict(self.event_weights_), decay=p.event_decay, max_products=p.event_products,
                             boost=p.event_boost)

    def _touched(self, ids: np.ndarray, history: pd.DataFrame | None, settings: "EventSettings",
                 consent: np.ndarray) -> dict[int, "Touched"]:
        """Per input row with events since the fit (and consent to use them): what they touched."""
        from models.recommenders.policy import events_since

        if history is None or len(history) == 0:
            return {}
        for col in (C.customer_id, C.product_id):
            if col not in history.columns:
                raise DataError(f"history: column '{col}' is missing")
        if C.timestamp in history.columns:  # the policy orders events by their time (events_since)
            moments = pd.to_datetime(history[C.timestamp], utc=True)
            ts = (moments.astype("int64") / 1e9).to_numpy()
        else:
            ts = np.full(len(history), np.nan)
        cutoff = pd.Timestamp(self.cutoff_)
        cutoff_ts = (cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff).timestamp()
        kinds = history[C.event_type].astype("str").to_numpy() if C.event_type in history.columns else \
            np.full(len(history), EventTypes.purchase, dtype=object)
        items = self.catalog_.products.to_internal(history[C.product_id], unknown="missing")
        who = history[C.customer_id].astype("str").to_numpy()
        by_customer: dict[str, list[tuple[float | None, str, int]]] = {}
        for c, t, kind, item in zip(who.tolist(), ts.tolist(), kinds.tolist(), items.tolist()):
            by_customer.setdefault(c, []).append((None if t != t else t, kind, item))
        out = {}
        for r, c in enumerate(ids.tolist()):
            if c in by_customer and consent[r]:
                out[r] = events_since(by_customer[c], cutoff_ts, settings)
        return out

    # -------------------------------------------------------------------------- the lists serving also holds

    def candidate_lists(self, users: np.ndarray, explain: bool = True) -> "CandidateLists":
        """Each customer's ranked candidates: the list the API holds precomputed and the policy filters.

        The best ``serve_depth`` products merged with the best ``serve_depth`` the customer has not bought,
        best first (ties: lower product index), so excluding what was bought still leaves a full list.

        Parameters
        ----------
        users
            Internal customer indices (customers with history).
        explain
            Work out each place's reason.

        Returns
        -------
        CandidateLists
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        depth = self.params.serve_depth
        scores = np.asarray(self._score(users), dtype=np.float32)
        bought = self.bought_[users].tocoo()
        bought_scores = scores[bought.row, bought.col]
        scores[bought.row, bought.col] = -np.inf
        # One partition of the catalogue: the best products overall are among the best not bought and the few
        # the customer bought, so both lists come from it (the lists of two partitions, merged).
        new_items, new_scores = signals.top_n(scores, depth)
        rows, items, kept, was_bought = signals.top_with(new_items, new_scores, bought.row, bought.col,
                                                         bought_scores, depth)
        offsets = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(users)), out=offsets[1:])
        lists = CandidateLists(offsets=offsets, items=items, scores=kept, reasons=None, bought=was_bought)
        if not explain:
            return lists
        position = np.arange(len(rows)) - lists.offsets[rows]
        width = int(position.max()) + 1 if len(rows) else 0
        grid = np.full((len(users), width), -1, dtype=np.int64)
        grid[rows, position] = lists.items
        reasons = np.asarray(self._explain(users, grid), dtype=object)[rows, position] if width else \
            np.empty(0, dtype=object)
        return CandidateLists(offsets=lists.offsets, items=lists.items, scores=lists.scores, reasons=reasons,
                              bought=lists.bought)

    def _merged(self, users: np.ndarray, items: np.ndarray,
                scores: np.ndarray) -> tuple["CandidateLists", np.ndarray, np.ndarray]:
        """Rows of (items, scores), -1 for none -> one list per customer without repeats, best first (ties:
        lower product index), with bought-before flags and no reasons; also each kept place's row and column
        in ``items``."""
        items = np.asarray(items).astype(np.int64, copy=False)
        scores = np.asarray(scores).astype(np.float32, copy=False)
        # Each row sorted on its own (score descending, then product, then column): the order a sort of every
        # row's places together gives, at a fraction of its cost.
        order = _row_order(items, scores, self.catalog_.size)
        placed = np.take_along_axis(items, order, axis=1)
        kept = placed >= 0
        kept[:, 1:] &= placed[:, 1:] != placed[:, :-1]  # a product's repeat (same score) right after it
        rows, at = np.nonzero(kept)
        cols = order[rows, at]
        flat = placed[rows, at]
        flat_scores = scores[rows, cols]
        offsets = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(users)), out=offsets[1:])
        bought = self.bought_[users]
        size = self.catalog_.size
        keys = np.repeat(np.arange(len(users)), np.diff(bought.indptr)).astype(np.int64) * size + bought.indices
        if len(keys) > 1 and (keys[1:] < keys[:-1]).any():
            keys = np.sort(keys)
        wanted = rows.astype(np.int64) * size + flat
        found = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
        flags = keys[found] == wanted if len(keys) else np.zeros(len(wanted), dtype=bool)
        lists = CandidateLists(offsets=offsets, items=flat, scores=flat_scores, reasons=None, bought=flags)
        return lists, rows, cols

    def popular_lists(self) -> dict[tuple[str, str], "Ranked"]:
        """What is popular overall (``("all", "")``), per region, per category and on each store's shelf (with an
        inventory table), ``serve_depth`` deep: the cold-start, non-personal and top-up lists of every path (the
        model's own fallback popularity)."""
        self._check_fitted()
        cached = self.__dict__.get("_popular_lists")  # a cache, rebuilt after load
        if cached is not None:
            return cached
        from models.recommenders.policy import Ranked

        k = self.params.serve_depth
        ok = np.ones(self.catalog_.size, dtype=bool)
        lists = {("all", ""): self._popular(-1, ok, k)}
        lists.update({("region", str(name)): self._popular(i, ok, k) for i, name in enumerate(self.regions_)})
        lists.update({("category", str(name)): self._popular_in_category(i, ok, k)
                      for i, name in enumerate(self.catalog_.categories)})
        stock = self.catalog_.stock
        if stock is not None:  # what an in-store list is topped up from: the popular products on the store's shelf
            for store in stock.stores:
                picks, scores, _ = self._popular(-1, ok & stock.mask(store), k)
                lists[("store", str(store))] = (picks, scores, np.full(len(picks), message("rec.popular_in_store"),
                                                                       dtype=object))
        lists[("new", "")] = self._new_arrivals_list(k)
        out = {key: Ranked(items=np.asarray(picks, dtype=np.int64), scores=np.asarray(scores, dtype=np.float32),
                           reasons=np.asarray(why, dtype=object))
               for key, (picks, scores, why) in lists.items()}
        self.__dict__["_popular_lists"] = out
        return out

    def new_arrivals(self) -> np.ndarray:
        """Which products are new arrivals at the cutoff (:attr:`RecommenderParams.new_arrival_days`)."""
        return self.catalog_.new_arrivals(self.params.new_arrival_days)

    def product_table(self) -> "ProductTable":
        """The product attributes the policy's filters read, new arrivals flagged (built once)."""
        found = self.__dict__.get("_product_table")
        if found is None:
            found = self.__dict__["_product_table"] = dataclasses.replace(self.catalog_.table(),
                                                                          new=self.new_arrivals())
        return found

    def _new_arrival_scores(self) -> np.ndarray:
        """How new arrivals rank among themselves in the non-personal "new arrivals" list: buyers so far, then
        the latest launched first."""
        age = self.catalog_.launch_age
        recency = np.zeros(self.catalog_.size) if age is None else 1.0 / (2.0 + np.nan_to_num(np.maximum(age, 0)))
        return self.fallback_score_ + recency * 1e-9

    def _new_arrivals_list(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The overall new-arrivals list: the top-up of ``new_only`` requests and their cold start."""
        new = np.flatnonzero(self.new_arrivals())
        score = self._new_arrival_scores()[new]
        order = np.lexsort((new, -score))[:n]
        picks = new[order]
        categories = self.catalog_.categories
        why = [message("rec.new_in_category", category=categories[c]) if c >= 0 else message("rec.new_arrival")
               for c in self.catalog_.category[picks].tolist()]
        return picks, score[order], np.array(why, dtype=object)

    def similar_lists(self, items: np.ndarray, explain: bool = True) -> "CandidateLists":
        """Each product's ``similar_depth`` most similar products (what the model relates, then what is
        popular in its category, then overall): the lists the API holds for product pages and event fold-in.

        Parameters
        ----------
        items
            Internal product indices (-1: unknown, an empty list).
        explain
            Work out each place's reason.
        """
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        n = self.params.similar_depth
        out_items = np.full((len(items), n), -1, dtype=np.int64)
        out_scores = np.zeros((len(items), n), dtype=np.float32)
        reasons = np.full((len(items), n), "", dtype=object)
        known = np.flatnonzero(items >= 0)
        everything = np.ones(self.catalog_.size, dtype=bool)
        for start in range(0, len(known), self.params.batch_size):
            batch = known[start:start + self.params.batch_size]
            try:
                sim = np.array(self._similar_scores(items[batch]), dtype=np.float32)
            except NotImplementedError:
                break
            sim[np.arange(len(batch)), items[batch]] = -np.inf
            b_items, b_scores = self._select(sim, n, everything, None)
            out_items[batch], out_scores[batch] = b_items, b_scores
            if explain:
                reasons[batch] = self._explain_similar(items[batch], b_items)
        for row in known.tolist():
            free = np.flatnonzero(out_items[row] < 0)
            if not len(free):
                continue
            ok = everything.copy()
            ok[out_items[row][out_items[row] >= 0]] = False
            ok[items[row]] = False
            picks, pick_scores, why = self._popular_in_category(int(self.catalog_.category[items[row]]), ok, len(free))
            m = len(picks)
            out_items[row, free[:m]], out_scores[row, free[:m]], reasons[row, free[:m]] = picks, pick_scores, why
        valid = out_items >= 0
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(valid.sum(axis=1), out=offsets[1:])
        return CandidateLists(offsets=offsets, items=out_items[valid], scores=out_scores[valid],
                              reasons=reasons[valid] if explain else None, bought=None)

    def _policy_lists(self, explain: bool = True) -> "ModelLists":
        return ModelLists(self, explain)

    @staticmethod
    def _select(scores: np.ndarray, n: int, allowed: np.ndarray,
                excluded: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        scores = np.array(scores, dtype=np.float32, copy=True)
        scores[:, ~allowed] = -np.inf
        if excluded is not None and excluded.nnz:
            coo = excluded.tocoo()
            scores[coo.row, coo.col] = -np.inf
        return signals.top_n(scores, n)

    def _score(self, users: np.ndarray) -> np.ndarray:
        """Dense (len(users), n_products) scores of known customers; -inf for products the model cannot rank."""
        raise NotImplementedError

    def _explain(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """A short reason per recommended (customer, product); items of -1 get an empty reason."""
        return np.where(items >= 0, self.default_reason, "").astype(object)

    def _score_history(self, rows: sp.csr_matrix) -> np.ndarray:
        """Dense scores of customers described only by ``rows``; NotImplementedError: none."""
        raise NotImplementedError

    def _explain_history(self, rows: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return self._explain(np.full(len(items), -1), items)

    def _popular(self, region: int, ok: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Most popular ``ok`` products in ``region`` (-1: overall), with their share of buyers and reason."""
        if 0 <= region < len(self.region_ok_) and self.region_ok_[region]:
            score = self.region_score_[region]
            order = np.lexsort((np.arange(len(score)), -score))
            why = message("rec.popular_region", region=self.regions_[region])
        else:
            score, order, why = self.fallback_score_, self.fallback_order_, message("rec.popular")
        picks = order[ok[order]][:n]
        return picks, score[picks], np.full(len(picks), why, dtype=object)

    # --------------------------------------------------------------------------------------------- similar

    def similar(self, products: Iterable[object] | str, n: int = 10,
                filters: Filters | None = None, locale: str | None = DEFAULT_LOCALE) -> pd.DataFrame:
        """Products similar to each given product (a product page's "you may also like"), by the policy over
        :meth:`similar_lists`, as the API answers.

        Parameters
        ----------
        products
            External product ids (one id or a list).
        n
            Similar products per product.
        filters
            What may be shown (``exclude_bought`` does not apply: there is no customer).
        locale
            The language of the reasons, as in :meth:`recommend`.

        Returns
        -------
        pandas.DataFrame
            ``product_id``, ``rank``, ``similar_product_id``, ``score``, ``reason``. A product the model cannot
            relate (unknown, or never bought with others) gets what is popular in its category.
        """
        from models.recommenders import policy

        self._check_fitted()
        n = _positive_int(n, "n")
        filters = filters or Filters()
        ids = _id_array(products)
        codes = self.catalog_.products.to_internal(ids, unknown="missing")
        lists = self._policy_lists()
        lists.prefetch(codes[codes >= 0])  # one batch, not one product at a time
        picked = [policy.similar_one(lists, int(code), n, filters) for code in codes.tolist()]
        return _frame(ids, [p.items for p in picked], [p.scores for p in picked], [p.reasons for p in picked],
                      None, self.catalog_.products, SIMILAR_COLUMNS, locale)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        """Dense (len(items), n_products) similarity; NotImplementedError: the model relates no products."""
        raise NotImplementedError

    def _explain_similar(self, items: np.ndarray, similar: np.ndarray) -> np.ndarray:
        names = self.catalog_.names[items]
        text = np.array([message("rec.also_bought", product=name) for name in names], dtype=object)
        return np.where(similar >= 0, text[:, None], "").astype(object)

    def _popular_in_category(self, category: int, ok: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:
        order = self.fallback_order_
        picks = np.empty(0, dtype=np.int64)
        why = []
        if category >= 0:
            same = ok & (self.catalog_.category == category)
            picks = order[same[order]][:n]
            why = [message("rec.popular_category", category=self.catalog_.categories[category])] * len(picks)
            ok = ok.copy()
            ok[picks] = False
        if len(picks) < n:
            more = order[ok[order]][:n - len(picks)]
            picks = np.concatenate([picks, more])
            why += [message("rec.popular")] * len(more)
        return picks, self.fallback_score_[picks], np.array(why, dtype=object)

    # ------------------------------------------------------------------------------------------ save/load

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to the folder ``path`` (JSON metadata and numpy arrays; no pickle).

        Returns
        -------
        pathlib.Path
            The folder written.
        """
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "model": self.name, "params": self.get_params(),
                "cutoff": self.cutoff_.isoformat(), "event_weights": self.event_weights_, "extra": self._meta()}
        (path / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        arrays = {"customers": _text(self.customers_.external_ids), "region": self.region_,
                  "regions": _text(self.regions_), "active": self.active_, "consent": self.consent_,
                  "fallback_score": self.fallback_score_, "fallback_order": self.fallback_order_,
                  "region_ok": self.region_ok_, "region_score": self.region_score_,
                  **self.catalog_.arrays(), **_sparse("bought", self.bought_)}
        for key, value in self._state().items():
            arrays[f"model_{key}"] = value
        np.savez(path / STATE_FILE, **arrays)
        self._save_files(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        """Read a model written by :meth:`save` (whatever its class).

        Raises
        ------
        DataError
            The folder holds no saved recommender, or one of another format version.
        """
        import models.recommenders  # noqa: F401  (registers every model class)

        path = Path(path)
        try:
            meta = json.loads((path / META_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a saved recommender ({exc})") from None
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise DataError(f"{path}: unsupported recommender format {meta.get('format')} v{meta.get('version')}")
        model_cls = Recommender._registry.get(meta["model"])
        if model_cls is None:
            raise DataError(f"{path}: unknown recommender '{meta['model']}'")
        if cls is not Recommender and not issubclass(model_cls, cls):
            raise DataError(f"{path}: holds a '{meta['model']}' recommender, not a '{cls.name}'")
        model = model_cls(**meta["params"])
        with np.load(path / STATE_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        model.cutoff_ = pd.Timestamp(meta["cutoff"])
        model.event_weights_ = meta["event_weights"]
        model.customers_ = IdMap(arrays["customers"])
        model.catalog_ = Catalog.from_arrays(arrays)
        model.region_, model.regions_ = arrays["region"], arrays["regions"].astype(object)
        model.active_, model.consent_ = arrays["active"], arrays["consent"]
        model.fallback_score_, model.fallback_order_ = arrays["fallback_score"], arrays["fallback_order"]
        model.region_ok_, model.region_score_ = arrays["region_ok"], arrays["region_score"]
        model.bought_ = _unsparse("bought", arrays)
        state = {k[len("model_"):]: v for k, v in arrays.items() if k.startswith("model_")}
        model._load_state(state, meta["extra"], path)
        return model

    def _state(self) -> dict[str, np.ndarray]:
        """Model-specific arrays to save."""
        return {}

    def _meta(self) -> dict[str, Any]:
        """Model-specific JSON-able values to save."""
        return {}

    def _save_files(self, path: Path) -> None:
        """Model-specific files beside the arrays (a LightGBM model text, sub-models)."""

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        raise NotImplementedError

    # -------------------------------------------------------------------------------------------- helpers

    def _check_fitted(self) -> None:
        if not hasattr(self, "customers_"):
            raise ConfigError(f"recommender '{self.name}' is not fitted: call fit() or load() first")

    def _anchors(self, history: sp.csr_matrix, items: np.ndarray,
                 relation: "sp.csr_matrix | _Relation | Callable[[np.ndarray, np.ndarray], np.ndarray]") -> np.ndarray:
        """The product of each customer's history that contributed most to each recommended product.

        Parameters
        ----------
        history
            Customers' rows (customers x products weights), aligned with ``items``.
        items
            Recommended products, -1 for empty places.
        relation
            How much a bought product (row) contributes to a recommended one (column): a sparse products x
            products matrix (or its :class:`_Relation`, built once by a caller asking for many blocks), or
            ``relation(bought, recommended)`` returning a dense block.

        Returns
        -------
        numpy.ndarray of int64
            The anchor product per place, -1 where nothing in the history relates to the recommendation.
        """
        out = np.full(items.shape, -1, dtype=np.int64)
        history = sp.csr_matrix(history)
        if sp.issparse(relation) or isinstance(relation, _Relation):
            lookup = relation if isinstance(relation, _Relation) else _Relation(relation)
            rows, cols = np.nonzero(items >= 0)
            lengths = np.diff(history.indptr)[rows]
            # Every place pairs with each product of its customer's history; chunks bound those pairs' memory.
            begin = 0
            while begin < len(rows):
                pairs = np.cumsum(lengths[begin:])
                end = begin + max(1, int(np.searchsorted(pairs, _ANCHOR_PAIRS, side="right")))
                r, c = rows[begin:end], cols[begin:end]
                out[r, c] = _best_anchor(history, r, items[r, c], lookup)
                begin = end
            return out
        for r in range(len(items)):
            hist = history.indices[history.indptr[r]:history.indptr[r + 1]]
            weights = history.data[history.indptr[r]:history.indptr[r + 1]]
            valid = np.flatnonzero(items[r] >= 0)
            if len(hist) == 0 or len(valid) == 0:
                continue
            contribution = np.asarray(relation(hist, items[r][valid])) * weights[:, None]
            contribution[hist[:, None] == items[r][valid][None, :]] = 0.0  # not its own reason
            best = contribution.argmax(axis=0)
            has = contribution[best, np.arange(len(valid))] > 0
            out[r, valid] = np.where(has, hist[best], -1)
        return out

    def _anchor_reasons(self, history: sp.csr_matrix, items: np.ndarray,
                        relation: sp.csr_matrix | Callable[[np.ndarray, np.ndarray], np.ndarray], template: str,
                        fallback: str) -> np.ndarray:
        """Reasons naming the anchor product (:meth:`_anchors`): the message ``template`` (a code of
        :mod:`features.i18n` with a ``product`` parameter), or ``fallback`` where there is none."""
        anchors = self._anchors(history, items, relation)
        names = self.catalog_.names
        out = np.full(items.shape, "", dtype=object)
        has = anchors >= 0
        out[has] = [message(template, product=names[a]) for a in anchors[has]]
        out[(items >= 0) & ~has] = fallback
        return out


@dataclass(frozen=True)
class CandidateLists:
    """Ranked lists of several customers or products in one CSR: list ``k`` is ``offsets[k]:offsets[k + 1]``."""

    offsets: np.ndarray
    items: np.ndarray
    scores: np.ndarray  # float32, as the API stores them
    reasons: np.ndarray | None
    bought: np.ndarray | None  # bought before the cutoff (customers' lists only)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, k: int) -> Ranked:
        """List ``k`` for the policy."""
        s, e = int(self.offsets[k]), int(self.offsets[k + 1])
        return Ranked(items=self.items[s:e], scores=self.scores[s:e],
                      reasons=self.reasons[s:e] if self.reasons is not None else None,
                      bought=self.bought[s:e] if self.bought is not None else None)


class ModelLists:
    """The policy's view of a fitted model's popular and similar lists (:class:`policy.Lists`)."""

    def __init__(self, model: Recommender, explain: bool = True):
        self.model = model
        self.explain = explain
        self.products = model.product_table()
        self._popular = model.popular_lists()
        self._similar: dict[int, Ranked] = {}

    def popular(self, scope: str, key: str) -> Ranked | None:
        return self._popular.get((scope, key))

    def prefetch(self, items: Iterable[int]) -> None:
        """Work out the similar lists of ``items`` in one batch."""
        todo = np.array(sorted({int(i) for i in items} - set(self._similar)), dtype=np.int64)
        if len(todo):
            got = self.model.similar_lists(todo, self.explain)
            self._similar.update({int(item): got.row(k) for k, item in enumerate(todo.tolist())})

    def similar(self, item: int) -> Ranked:
        if item not in self._similar:
            self.prefetch([item])
        return self._similar[item]

    def label(self, item: int) -> str:
        return str(self.model.catalog_.names[item]) or str(self.model.catalog_.products.external_ids[item])


def _frame(ids: np.ndarray, items: list[list[int]], scores: list[list[float]], reasons: list[list[str]],
           strategies: list[str] | None, products: IdMap, columns: tuple[str, ...], locale: str | None
           ) -> pd.DataFrame:
    """One row per recommended item, best first within each input id, input order kept; reasons rendered in
    ``locale`` (None: as messages)."""
    counts = np.array([len(i) for i in items], dtype=np.int64)
    flat = np.array([i for row in items for i in row], dtype=np.int64)
    rank = np.concatenate([np.arange(1, c + 1) for c in counts]) if len(counts) else np.empty(0, np.int64)
    data = {columns[0]: np.repeat(ids, counts).astype(object), columns[1]: rank.astype(np.int64),
            columns[2]: products.to_external(flat), columns[3]: np.array([s for row in scores for s in row],
                                                                         dtype=np.float64),
            columns[4]: np.array([r if locale is None else render(r, locale) for row in reasons for r in row],
                                 dtype=object)}
    if strategies is not None:
        data["strategy"] = np.repeat(np.array(strategies, dtype=object), counts)
    frame = pd.DataFrame(data)
    for col in (columns[0], columns[2], columns[4]) + (("strategy",) if strategies is not None else ()):
        frame[col] = frame[col].astype("str")
    return frame


def _row_order(items: np.ndarray, scores: np.ndarray, size: int) -> np.ndarray:
    """Each row's places ordered by score descending, then product, then column, the empty places (-1) last:
    ``np.lexsort((cols, items, -scores))`` of every row (NaN scores after the others, -0.0 equal to 0.0).

    One 64-bit key per place (the score's order-preserving bits above the product and column) and a plain
    sort per row when product and column fit in 32 bits; a lexsort per row otherwise."""
    width = items.shape[1] if items.ndim == 2 else 0
    item_bits, col_bits = max(int(size) - 1, 1).bit_length(), max(width - 1, 1).bit_length()
    if item_bits + col_bits > 32:
        cols = np.broadcast_to(np.arange(width), items.shape)
        return np.lexsort((cols, items, -scores, items < 0), axis=1)
    bits = (scores + np.float32(0.0)).view(np.int32)  # + 0.0: -0.0 sorts with 0.0
    bits ^= (bits >> 31) & np.int32(0x7FFFFFFF)  # ascending with the score, as signed integers
    np.invert(bits, out=bits)  # descending
    if np.isnan(scores).any():
        bits[np.isnan(scores)] = np.iinfo(np.int32).max - 1
    key = bits.astype(np.int64)
    key <<= 32
    key |= items << col_bits
    key |= np.arange(width, dtype=np.int64)
    key[items < 0] = np.iinfo(np.int64).max
    return np.argsort(key, axis=1)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _id_array(values: Iterable[object] | str) -> np.ndarray:
    if isinstance(values, (str, int, np.integer)):
        values = [values]
    return pd.Series(list(values), dtype="str").to_numpy(dtype=object)


def _sparse(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    matrix = sp.csr_matrix(matrix)
    return {f"{prefix}_data": matrix.data, f"{prefix}_indices": matrix.indices, f"{prefix}_indptr": matrix.indptr,
            f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64)}


def _unsparse(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    return sp.csr_matrix((arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
                         shape=tuple(arrays[f"{prefix}_shape"]))


class _Relation:
    """Values ``relation[bought, recommended]`` of a sparse products x products relation, looked up in bulk: from
    a dense copy when it is small enough, else by binary search over its sorted (row, column) keys."""

    def __init__(self, relation: sp.spmatrix):
        relation = sp.csr_matrix(relation, copy=True)
        relation.sum_duplicates()  # canonical: sorted columns within each row, no repeats
        self.n = relation.shape[1]
        if relation.shape[0] * relation.shape[1] <= _DENSE_RELATION_CELLS:
            self.dense = relation.toarray()
        else:
            self.dense = None
            rows = np.repeat(np.arange(relation.shape[0], dtype=np.int64), np.diff(relation.indptr))
            self.keys = rows * self.n + relation.indices
            self.values = relation.data

    def __call__(self, bought: np.ndarray, recommended: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            return self.dense[bought, recommended]
        keys = bought.astype(np.int64) * self.n + recommended
        where = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        if not len(self.keys):
            return np.zeros(len(keys), dtype=self.values.dtype)
        return np.where(self.keys[where] == keys, self.values[where], 0).astype(self.values.dtype)


def _best_anchor(history: sp.csr_matrix, rows: np.ndarray, targets: np.ndarray, relation: _Relation) -> np.ndarray:
    """For each place (customer row, recommended product): the history product with the largest weight x relation
    to it, the lowest product index among equals; -1 when none contributes (a product is not its own reason)."""
    starts, lengths = history.indptr[rows], np.diff(history.indptr)[rows]
    place = np.repeat(np.arange(len(rows)), lengths)
    offsets = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths)
    position = np.arange(len(place)) + offsets
    bought, weight = history.indices[position].astype(np.int64), history.data[position]
    target = targets[place]
    value = weight * relation(bought, target)
    value[bought == target] = 0
    out = np.full(len(rows), -1, dtype=np.int64)
    if not len(place):
        return out
    # Entries are grouped by place already: the largest value of each group, then the lowest product holding it
    # (one pass each, no sort: 1M customers x 200 places x their history).
    begins = np.flatnonzero(np.r_[True, place[1:] != place[:-1]])
    top = np.maximum.reduceat(value, begins)
    places = place[begins]
    holds = (value == np.repeat(top, np.diff(np.r_[begins, len(place)]))) & (value > 0)
    lowest = np.minimum.reduceat(np.where(holds, bought, np.iinfo(np.int64).max), begins)
    found = top > 0
    out[places[found]] = lowest[found]
    return out
