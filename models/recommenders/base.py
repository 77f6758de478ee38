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

import json
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.columns import Columns as C
from features.columns import EventTypes
from features.config import InteractionConfig
from features.exceptions import ConfigError, DataError
from features.idmap import IdMap
from models.recommenders import signals
from models.recommenders.config import Params, model_section, parse_params, preset_defaults
from models.recommenders.data import Catalog, TrainingData, _text
from models.recommenders.filters import Filters

FORMAT = "clientele.recommender"
FORMAT_VERSION = 1
STATE_FILE = "state.npz"
META_FILE = "meta.json"

PERSONAL = "personal"
COLD_START = "cold_start"
NON_PERSONAL = "non_personal"

RESULT_COLUMNS = ("customer_id", "rank", "product_id", "score", "reason", "strategy")
SIMILAR_COLUMNS = ("product_id", "rank", "similar_product_id", "score", "reason")

InputWeighting = Literal["interactions", "binary", "days"]
# Recommended places whose anchors are found in one sparse product (bounds memory, not results).
_ANCHOR_CHUNK = 50_000


class RecommenderParams(Params):
    """Settings every recommender has.

    Attributes
    ----------
    exclude_bought
        Default of :attr:`Filters.exclude_bought` (the industry preset's ``recommend.exclude_bought``).
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
    """

    exclude_bought: bool = False
    random_state: int = 0
    input: InputWeighting = "interactions"
    fill_window_days: float | None = 90.0
    segment_min_customers: int = 20
    segment_shrinkage: float = 50.0
    batch_size: int = 1024


class Recommender:
    """Base of every recommender.

    Subclasses set ``name`` (the registry key, also the configuration section), ``Params`` (their typed
    hyperparameters) and implement ``_fit`` and ``_score`` on internal indices; ``_similar_scores``,
    ``_score_history`` and ``_explain`` are optional refinements. Fitted state ends in ``_``.
    """

    name: ClassVar[str] = "base"
    Params: ClassVar[type[RecommenderParams]] = RecommenderParams
    default_reason: ClassVar[str] = "recommended for you"
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
        self.cutoff_ = data.cutoff
        self.customers_ = data.customers
        self.catalog_ = data.catalog
        self.bought_ = (data.purchase_days > 0).astype(np.float32).tocsr()
        self.active_ = np.diff(data.interactions.indptr) > 0
        self.region_, self.regions_ = data.region, data.regions
        self.consent_ = data.consent
        self.event_weights_ = dict((interactions or InteractionConfig()).weights)
        self.__dict__.pop("_region_orders", None)
        self._fit_fallback(data)
        self._fit(data)
        return self

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
        users = np.unique(data.log.user)
        np.add.at(active, data.region[users][data.region[users] >= 0], 1.0)
        self.region_ok_ = active >= p.segment_min_customers
        self.region_score_ = signals.shrunk_share(region_counts, self.fallback_score_, p.segment_shrinkage) \
            if n_regions else np.zeros((0, data.n_items))

    # ------------------------------------------------------------------------------------------- recommend

    def recommend(self, customers: Iterable[object] | str, n: int = 10, filters: Filters | None = None,
                  history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Top-``n`` products for each customer.

        Parameters
        ----------
        customers
            External customer ids (one id or a list).
        n
            Products per customer.
        filters
            What may be recommended (default: in-stock products; already bought per the model's default).
        history
            Events since the fit of customers the model does not know (``customer_id``, ``product_id`` and
            optionally ``event_type``; purchase when absent): their recommendations fold these in.

        Returns
        -------
        pandas.DataFrame
            ``customer_id``, ``rank`` (1 = best), ``product_id``, ``score``, ``reason``, ``strategy``
            (``personal``, ``cold_start`` or ``non_personal``), customers in the order given. A customer gets
            fewer than ``n`` rows only when fewer products pass the filters.

        Raises
        ------
        DataError
            ``n`` is not a positive integer, or ``history`` lacks a required column.
        """
        self._check_fitted()
        n = _positive_int(n, "n")
        filters = filters or Filters()
        exclude = self.params.exclude_bought if filters.exclude_bought is None else bool(filters.exclude_bought)
        allowed = filters.allowed(self.catalog_)
        ids = _id_array(customers)
        codes = self.customers_.to_internal(ids, unknown="missing")
        known = codes >= 0
        refused = np.zeros(len(ids), dtype=bool)
        refused[known] = ~self.consent_[codes[known]]
        personal = known & ~refused
        personal[personal] = self.active_[codes[personal]]
        items = np.full((len(ids), n), -1, dtype=np.int64)
        scores = np.zeros((len(ids), n), dtype=np.float64)
        reasons = np.full((len(ids), n), "", dtype=object)
        strategy = np.where(personal, PERSONAL, np.where(refused, NON_PERSONAL, COLD_START)).astype(object)

        rows = np.flatnonzero(personal)
        for start in range(0, len(rows), self.params.batch_size):
            batch = rows[start:start + self.params.batch_size]
            users = codes[batch]
            excluded = self.bought_[users] if exclude else None
            b_items, b_scores, b_reasons = self._recommend_users(users, n, allowed, excluded)
            items[batch], scores[batch], reasons[batch] = b_items, b_scores, b_reasons
            self._top_up(items, scores, reasons, batch, self.region_[users], allowed, excluded)

        cold = np.flatnonzero(~personal & ~refused)
        if len(cold):
            folded = self._fold_in(ids[cold], history, n, allowed, exclude)
            items[cold], scores[cold], reasons[cold], excluded = folded
            region = np.where(codes[cold] >= 0, self.region_[np.maximum(codes[cold], 0)], -1)
            self._top_up(items, scores, reasons, cold, region, allowed, excluded)
        anonymous = np.flatnonzero(refused)
        if len(anonymous):
            # Overall popularity, not the region's (that is personal data too); "already bought" is a filter the
            # storefront asked for, not profiling, so it still applies.
            excluded = self.bought_[codes[anonymous]] if exclude else None
            self._top_up(items, scores, reasons, anonymous, np.full(len(anonymous), -1), allowed, excluded)
        return _long(ids, items, scores, reasons, strategy, self.catalog_.products, RESULT_COLUMNS)

    def _recommend_users(self, users: np.ndarray, n: int, allowed: np.ndarray,
                         excluded: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Best ``n`` allowed products of known customers: (items with -1 padding, scores, reasons)."""
        scores = np.asarray(self._score(users), dtype=np.float32)
        items, best = self._select(scores, n, allowed, excluded)
        return items, best.astype(np.float64), self._explain(users, items)

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

    # ------------------------------------------------------------------------------ cold start and fold-in

    def _fold_in(self, ids: np.ndarray, history: pd.DataFrame | None, n: int, allowed: np.ndarray,
                 exclude: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, sp.csr_matrix | None]:
        """Fold-in of the request's history for customers without a fitted history; empty rows otherwise
        (the region top-up then fills them)."""
        items = np.full((len(ids), n), -1, dtype=np.int64)
        scores = np.zeros((len(ids), n), dtype=np.float64)
        reasons = np.full((len(ids), n), "", dtype=object)
        rows = self._history_rows(ids, history)
        if rows is None or rows.nnz == 0:
            return items, scores, reasons, None
        purchased = self._history_purchases(ids, history) if exclude else None
        has = np.diff(rows.indptr) > 0
        idx = np.flatnonzero(has)
        try:
            folded = np.asarray(self._score_history(rows[idx]), dtype=np.float32)
        except NotImplementedError:
            return items, scores, reasons, purchased
        sub_items, sub_scores = self._select(folded, n, allowed, purchased[idx] if purchased is not None else None)
        items[idx], scores[idx] = sub_items, sub_scores
        reasons[idx] = self._explain_history(rows[idx], sub_items)
        return items, scores, reasons, purchased

    def _history_rows(self, ids: np.ndarray, history: pd.DataFrame | None) -> sp.csr_matrix | None:
        """The request's events as a (len(ids), n_products) matrix weighted like the training interactions."""
        if history is None or len(history) == 0:
            return None
        for col in (C.customer_id, C.product_id):
            if col not in history.columns:
                raise DataError(f"history: column '{col}' is missing")
        rows = pd.Index(ids).get_indexer(history[C.customer_id].astype("str"))
        cols = self.catalog_.products.to_internal(history[C.product_id], unknown="missing")
        kind = history[C.event_type].astype("str") if C.event_type in history.columns else \
            pd.Series(EventTypes.purchase, index=history.index)
        weight = kind.map(self.event_weights_).fillna(0.0).to_numpy(dtype=np.float32)
        keep = (rows >= 0) & (cols >= 0) & (weight > 0)
        matrix = sp.csr_matrix((weight[keep], (rows[keep], cols[keep])), shape=(len(ids), self.catalog_.size))
        matrix.sum_duplicates()
        return matrix

    def _history_purchases(self, ids: np.ndarray, history: pd.DataFrame) -> sp.csr_matrix:
        if C.event_type in history.columns:
            history = history[history[C.event_type].astype("str") == EventTypes.purchase]
        rows = pd.Index(ids).get_indexer(history[C.customer_id].astype("str"))
        cols = self.catalog_.products.to_internal(history[C.product_id], unknown="missing")
        keep = (rows >= 0) & (cols >= 0)
        matrix = sp.csr_matrix((np.ones(keep.sum(), np.float32), (rows[keep], cols[keep])),
                               shape=(len(ids), self.catalog_.size))
        matrix.sum_duplicates()
        return matrix

    def _score_history(self, rows: sp.csr_matrix) -> np.ndarray:
        """Dense scores of customers described only by ``rows`` (their events); NotImplementedError: none."""
        raise NotImplementedError

    def _explain_history(self, rows: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return self._explain(np.full(len(items), -1), items)

    def _top_up(self, items: np.ndarray, scores: np.ndarray, reasons: np.ndarray, rows: np.ndarray,
                region: np.ndarray, allowed: np.ndarray, excluded: sp.csr_matrix | None) -> None:
        """Fill the empty (-1) places of ``rows`` with what is popular in each row's region (in place)."""
        for k, row in enumerate(rows):
            free = np.flatnonzero(items[row] < 0)
            if not len(free):
                continue
            ok = allowed.copy()
            ok[items[row][items[row] >= 0]] = False
            if excluded is not None:
                ok[excluded.indices[excluded.indptr[k]:excluded.indptr[k + 1]]] = False
            picks, pick_scores, why = self._popular(int(region[k]), ok, len(free))
            m = len(picks)
            items[row, free[:m]], scores[row, free[:m]], reasons[row, free[:m]] = picks, pick_scores, why

    def _popular(self, region: int, ok: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Most popular ``ok`` products in ``region`` (-1: overall), with their share of buyers and reason."""
        if 0 <= region < len(self.region_ok_) and self.region_ok_[region]:
            score = self.region_score_[region]
            orders = self.__dict__.setdefault("_region_orders", {})  # a cache, rebuilt after load
            if region not in orders:
                orders[region] = np.lexsort((np.arange(len(score)), -score))
            order = orders[region]
            why = f"popular in {self.regions_[region]}"
        else:
            score, order, why = self.fallback_score_, self.fallback_order_, "popular right now"
        picks = order[ok[order]][:n]
        return picks, score[picks], np.full(len(picks), why, dtype=object)

    # --------------------------------------------------------------------------------------------- similar

    def similar(self, products: Iterable[object] | str, n: int = 10,
                filters: Filters | None = None) -> pd.DataFrame:
        """Products similar to each given product (a product page's "you may also like").

        Parameters
        ----------
        products
            External product ids (one id or a list).
        n
            Similar products per product.
        filters
            What may be shown (``exclude_bought`` does not apply: there is no customer).

        Returns
        -------
        pandas.DataFrame
            ``product_id``, ``rank``, ``similar_product_id``, ``score``, ``reason``. A product the model cannot
            relate (unknown, or never bought with others) gets what is popular in its category.
        """
        self._check_fitted()
        n = _positive_int(n, "n")
        allowed = (filters or Filters()).allowed(self.catalog_)
        ids = _id_array(products)
        codes = self.catalog_.products.to_internal(ids, unknown="missing")
        items = np.full((len(ids), n), -1, dtype=np.int64)
        scores = np.zeros((len(ids), n), dtype=np.float64)
        reasons = np.full((len(ids), n), "", dtype=object)
        known = np.flatnonzero(codes >= 0)
        for start in range(0, len(known), self.params.batch_size):
            batch = known[start:start + self.params.batch_size]
            try:
                sim = np.array(self._similar_scores(codes[batch]), dtype=np.float32)
            except NotImplementedError:
                break
            sim[np.arange(len(batch)), codes[batch]] = -np.inf
            b_items, b_scores = self._select(sim, n, allowed, None)
            items[batch], scores[batch] = b_items, b_scores
            reasons[batch] = self._explain_similar(codes[batch], b_items)
        for row in range(len(ids)):
            free = np.flatnonzero(items[row] < 0)
            if not len(free):
                continue
            ok = allowed.copy()
            ok[items[row][items[row] >= 0]] = False
            category = -1
            if codes[row] >= 0:
                ok[codes[row]] = False
                category = int(self.catalog_.category[codes[row]])
            picks, pick_scores, why = self._popular_in_category(category, ok, len(free))
            m = len(picks)
            items[row, free[:m]], scores[row, free[:m]], reasons[row, free[:m]] = picks, pick_scores, why
        strategy = np.full(len(ids), "", dtype=object)
        frame = _long(ids, items, scores, reasons, strategy, self.catalog_.products, SIMILAR_COLUMNS)
        return frame

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        """Dense (len(items), n_products) similarity; NotImplementedError: the model relates no products."""
        raise NotImplementedError

    def _explain_similar(self, items: np.ndarray, similar: np.ndarray) -> np.ndarray:
        names = self.catalog_.names[items]
        text = np.array([f"customers who bought {name} also bought this" for name in names], dtype=object)
        return np.where(similar >= 0, text[:, None], "").astype(object)

    def _popular_in_category(self, category: int, ok: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:
        order = self.fallback_order_
        picks = np.empty(0, dtype=np.int64)
        why = []
        if category >= 0:
            same = ok & (self.catalog_.category == category)
            picks = order[same[order]][:n]
            why = [f"popular in {self.catalog_.categories[category]}"] * len(picks)
            ok = ok.copy()
            ok[picks] = False
        if len(picks) < n:
            more = order[ok[order]][:n - len(picks)]
            picks = np.concatenate([picks, more])
            why += ["popular right now"] * len(more)
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
                 relation: sp.csr_matrix | Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """The product of each customer's history that contributed most to each recommended product.

        Parameters
        ----------
        history
            Customers' rows (customers x products weights), aligned with ``items``.
        items
            Recommended products, -1 for empty places.
        relation
            How much a bought product (row) contributes to a recommended one (column): a sparse products x
            products matrix, or ``relation(bought, recommended)`` returning a dense block.

        Returns
        -------
        numpy.ndarray of int64
            The anchor product per place, -1 where nothing in the history relates to the recommendation.
        """
        out = np.full(items.shape, -1, dtype=np.int64)
        history = sp.csr_matrix(history)
        if sp.issparse(relation):
            # All places at once: row p of history[rows] * relation.T[targets] holds each history product's
            # contribution to place p; chunks bound the memory of the replicated history rows.
            by_target = sp.csr_matrix(relation.T)
            rows, cols = np.nonzero(items >= 0)
            for begin in range(0, len(rows), _ANCHOR_CHUNK):
                r, c = rows[begin:begin + _ANCHOR_CHUNK], cols[begin:begin + _ANCHOR_CHUNK]
                targets = items[r, c]
                product = sp.coo_matrix(history[r].multiply(by_target[targets]))
                # A product is not its own reason ("bought together with X" for X itself).
                product.data[product.col == targets[product.row]] = 0.0
                product = product.tocsr()
                best = np.asarray(product.argmax(axis=1)).ravel()
                value = np.asarray(product.max(axis=1).toarray()).ravel()
                out[r, c] = np.where(value > 0, best, -1)
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
        """Reasons naming the anchor product (:meth:`_anchors`) through ``template`` (``{name}``), or
        ``fallback`` where there is none."""
        anchors = self._anchors(history, items, relation)
        names = self.catalog_.names
        out = np.full(items.shape, "", dtype=object)
        has = anchors >= 0
        out[has] = [template.format(name=names[a]) for a in anchors[has]]
        out[(items >= 0) & ~has] = fallback
        return out


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _id_array(values: Iterable[object] | str) -> np.ndarray:
    if isinstance(values, (str, int, np.integer)):
        values = [values]
    return pd.Series(list(values), dtype="str").to_numpy(dtype=object)


def _long(ids: np.ndarray, items: np.ndarray, scores: np.ndarray, reasons: np.ndarray, strategy: np.ndarray,
          products: IdMap, columns: tuple[str, ...]) -> pd.DataFrame:
    """One row per recommended item, best first within each input id, input order kept."""
    valid = items >= 0
    counts = valid.sum(axis=1)
    rank = np.cumsum(valid, axis=1)[valid]
    data = {columns[0]: np.repeat(ids, counts), columns[1]: rank.astype(np.int64),
            columns[2]: products.to_external(items[valid]), columns[3]: scores[valid].astype(np.float64),
            columns[4]: reasons[valid]}
    if "strategy" in columns:
        data["strategy"] = np.repeat(strategy, counts)
    frame = pd.DataFrame(data)
    for col in (columns[0], columns[2], columns[4]) + (("strategy",) if "strategy" in columns else ()):
        frame[col] = frame[col].astype("str")
    return frame


def _sparse(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    matrix = sp.csr_matrix(matrix)
    return {f"{prefix}_data": matrix.data, f"{prefix}_indices": matrix.indices, f"{prefix}_indptr": matrix.indptr,
            f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64)}


def _unsparse(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    return sp.csr_matrix((arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
                         shape=tuple(arrays[f"{prefix}_shape"]))
