"""The project's recommender (registry name ``clientele``): candidate generators, then a LightGBM LambdaRank
reranker over the union of their candidates.

Training (no row at or after the cutoff is read): for each of ``train_windows`` label windows of
``window_days`` ending at the cutoff (and the same weeks a season earlier, when the data reaches back that
far), the generators are fitted on the data before the window, each proposes its
top candidates for the customers who bought both before and inside the window, every candidate is described by
the generators' scores and ranks and by customer, product and pair features, and the label says whether the
customer bought it in the window. LambdaRank learns from those groups. The generators are then refitted on all
the data before the cutoff and every known customer's candidates are reranked once, so serving is a lookup
plus the filters (the precomputed lists are saved with the model).

Reasons come from what drove the recommendation: the customer's own repurchase cycle for a product they buy
again, the product of their history it is bought together with for a co-purchase, their region's or the
moment's popularity otherwise.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from features.i18n import message
from features.columns import Columns as C
from features.columns import Tables
from features.config import FeatureConfig, InteractionConfig
from features.customer import CATEGORICAL_FEATURES
from features.exceptions import ConfigError, DataError
from features.memory import release_free_memory
from features.products import product_attributes
from features.progress import blocks, stage, steps
from features.purchases import without_returns
from models.ranking.features import CandidateFeatures, PairFeatures, stack_columns
from models.ranking.lambdarank import LambdaRanker, RankerParams
from models.tabular import prediction_threads
from models.recommenders import signals
from models.recommenders.base import CandidateLists, Recommender, RecommenderParams, _id_array, _Relation
from models.recommenders.config import Params, model_section, parse_params
from models.recommenders.data import TrainingData, latest_cutoff, tables_before
from models.recommenders.list_files import ListFile, SpillFolder
from models.recommenders.repeat import timing_reasons

RANKER_FILE = "reranker.txt"
# Places of the precomputed lists whose reasons are worked out at once (bounds memory, not results: a block's
# working arrays take about 200 bytes a place).
_REASON_PLACES = 1_000_000
# Group ids of label window k are k * stride + customer index: distinct across windows for any catalogue of
# customers below a billion.
_GROUP_STRIDE = 10**9
GENERATOR_DIR = "generators"
# The key of the caller's own work among the generator fits (``TwoStage._fit_generators(alongside=...)``).
_ALONGSIDE = "\x00alongside"
# The precomputed lists of a saved model, one .npy per list and field (memory-mapped when loaded).
LISTS_DIR = "lists"
# Each list's fields (dtype, value of an empty place): the reranked products, their scores and source generators,
# then the reasons' kind and arguments (:meth:`TwoStage._precompute_reasons`).
_LIST_FIELDS = {"items": (np.int32, -1), "score": (np.float32, 0), "source": (np.int8, -1)}

# Reason kinds of the precomputed lists (rendered to text at request time).
REASON_NONE, REASON_REPEAT, REASON_TOGETHER, REASON_TASTE, REASON_REGION, REASON_TRENDING, REASON_POPULAR, \
    REASON_SEQUENCE, REASON_SEASONAL, REASON_NEW, REASON_NEW_BOUGHT = range(11)  # REASON_SEQUENCE is retired
_REASON_FIELDS = {"reason": (np.int8, REASON_NONE), "anchor": (np.int32, -1), "gap": (np.float32, np.nan),
                  "since": (np.float32, np.nan), "days": (np.float32, 0)}
# The generator model that scores new arrivals by their attributes (models/recommenders/attribute_tower.py).
ATTRIBUTES = "attributes"


class GeneratorSpec(Params):
    """One candidate generator of the two-stage model.

    Attributes
    ----------
    model
        Registry name of the generator's class.
    candidates
        Top products it proposes per customer (0: it only scores the others' candidates, as a feature).
    params
        Its hyperparameters (over those of its ``models:`` section when built with ``from_config``).
    """

    model: str
    candidates: int = Field(ge=0)
    params: dict[str, Any] = Field(default_factory=dict)


class TwoStageParams(RecommenderParams):
    """Hyperparameters of :class:`TwoStage`.

    Attributes
    ----------
    window_days
        Length of each label window (the horizon the model learns to predict; the evaluation sets it to the
        test window's length).
    train_windows
        Label windows stacked for training, each ``window_stride_days`` earlier than the last (at most: see
        ``max_train_rows``).
    window_stride_days
        Days between the starts of consecutive label windows (``None``: ``window_days``, windows side by side);
        shorter strides overlap the windows and give the reranker more customers' moments to learn from.
    seasonal_window
        Also learn from the label window one season (``features.season_lag_days``) before the one ahead, when
        the data reaches back that far: how customers shop before Christmas is best learned from last Christmas.
    max_train_rows
        No further label window is added once the training candidates reach this many rows: more windows help
        most on small data, where they are cheap, and a large log fills the budget with one or two. A window
        whose candidates alone would pass it learns from a random share of its customers that fits, and is the
        last (so the reranker's cost and memory do not grow with the customer count).
    generators
        Name -> :class:`GeneratorSpec`.
    ranker
        LambdaRank settings.
    features
        Windows of the product and pair features.
    serve_depth
        Reranked products kept per customer, one list with and one without already bought products
        (:class:`RecommenderParams`).
    fold_in
        Generator whose item-item relation names the product of a customer's history that a recommendation
        goes with (the reason's anchor). Live events fold in through the similar-product lists
        (:mod:`models.recommenders.policy`).
    similar
        Generator that answers "similar products".
    max_train_customers
        Customers sampled per label window at most (bounds the reranker's training set on large data).
    max_negatives
        Candidates not bought that each customer keeps for training, sampled at random (``None``: all). The
        reranker's cost grows with the candidates per customer; most are easy negatives.
    max_cells
        Customers x products scores held at once while generating candidates (bounds memory).
    dask_partition_customers
        Customers per Dask task when the lists are reranked on a cluster (``fit(client=...)``).
    workers
        Threads reranking blocks of customers side by side in process (``None``: one per core; each holds one
        block's scores and features). The lists are the same whatever the count.
    new_arrival_depth
        With an ``attributes`` generator: the best-ranked new arrivals kept per customer beside the two lists
        (what ``new_only`` requests and ``new_arrival_share`` draw on, however low the reranker puts them).
    """

    window_days: float = 30.0
    train_windows: int = Field(1, ge=1)
    window_stride_days: float | None = Field(None, gt=0)
    seasonal_window: bool = True
    max_train_rows: int = Field(1_500_000, ge=1)
    generators: dict[str, GeneratorSpec] = Field(default_factory=dict)
    ranker: RankerParams = RankerParams()
    features: PairFeatures = PairFeatures()
    fold_in: str = "bm25"
    similar: str = "itemknn"
    max_train_customers: int = Field(30_000, ge=1)
    max_negatives: int | None = Field(None, ge=1)
    max_cells: int = Field(8_000_000, ge=1)
    new_arrival_depth: int = Field(20, ge=1, le=1000)
    dask_partition_customers: int = Field(50_000, ge=1)
    workers: int | None = Field(None, ge=1)


class TwoStage(Recommender):
    """Candidate generators + LightGBM LambdaRank reranker, with reasons, filters and cold start.

    Attributes
    ----------
    ranker_ : LambdaRanker
        The fitted reranker (:meth:`feature_importance` shows what it learned from).
    generators_ : dict[str, Recommender]
        The generators kept for serving: fold-in of unknown customers and similar products.
    serve_ : dict
        Precomputed reranked lists per customer (``all`` and ``new`` to the customer) with reason codes.
    fit_seconds_ : dict[str, float]
        Seconds spent in each step of the last fit (not saved).
    """

    name = "clientele"
    Params = TwoStageParams

    def __init__(self, **params: Any):
        super().__init__(**params)
        # Every generator's model and parameters are checked now, not halfway through a long fit.
        for name, spec in self.params.generators.items():
            model_cls = Recommender._registry.get(spec.model)
            if model_cls is None:
                raise ConfigError(f"recommender 'clientele': generator '{name}' names unknown model '{spec.model}'")
            parse_params(model_cls.Params, spec.params, f"recommender 'clientele': generator '{name}'")
        if self.params.generators:
            for role in ("fold_in", "similar"):
                if getattr(self.params, role) not in self.params.generators:
                    raise ConfigError(f"recommender 'clientele': {role} '{getattr(self.params, role)}' is not a "
                                      f"generator (generators: {', '.join(self.params.generators)})")

    @classmethod
    def from_config(cls, config: dict[str, Any] | None = None, preset: str | Path | None = None,
                    feature_config: FeatureConfig | None = None, **overrides: Any) -> "TwoStage":
        """The model of the ``clientele`` section, each generator's parameters over its ``models:`` section.

        Parameters
        ----------
        config
            An already loaded configuration (default configs/recommender.yaml).
        preset
            Industry preset whose ``recommend`` defaults apply.
        feature_config
            The project's feature settings (``features.yaml``): the reranker's customer features use its
            ``customer`` windows, and the model keeps them in its parameters.
        overrides
            Parameters that win over the file's and the preset's.
        """
        from models.recommenders.config import load_config, preset_defaults

        config = config if config is not None else load_config()
        values = dict(config.get(cls.name) or {})
        values.update(preset_defaults(preset))
        if feature_config is not None:
            values["features"] = {**(values.get("features") or {}),
                                  "customer": feature_config.customer.model_dump(mode="json")}
        values.update(overrides)
        generators = {}
        for name, spec in (values.get("generators") or {}).items():
            if not isinstance(spec, dict) or "model" not in spec:
                raise ConfigError(f"recommender config: {cls.name}.generators.{name} needs a 'model'")
            merged = model_section(spec["model"], config)
            merged.update(spec.get("params") or {})
            generators[name] = {**spec, "params": merged}
        values["generators"] = generators
        return cls(**values)

    # ------------------------------------------------------------------------------------------------ fit

    def fit(self, tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp | str | None = None,
            interactions: InteractionConfig | None = None, listed: Iterable[object] | None = None,
            client: Any | None = None, fits: "GeneratorFits | None" = None) -> "TwoStage":
        """Train the reranker on earlier label windows, then refit the generators and rerank every customer.

        Parameters
        ----------
        tables
            Canonical tables.
        cutoff
            The as-of time (``None``: after the latest transaction); no row at or after it is read.
        interactions
            Interaction matrix weights.
        listed
            Rerank only these customers (external ids) and work out no reasons: what an evaluation asks about,
            at a fraction of the cost. Such a model answers only them, without reasons, and is not saved.
        client
            A Dask client: candidates and reranking of every customer run on its workers, by partition of
            ``dask_partition_customers`` customers, with the very lists of the in-process path. The fits (label
            windows, reranker, generators) need the whole matrix and stay in this process.
        fits
            Generators fitted by an earlier fit: a label window whose data is the very data one of them was
            fitted on (a holdout's cutoff is the first label window of the fit at the end of the data) takes them
            instead of fitting them again; this fit leaves its generators at the cutoff in it for a later one.

        Returns
        -------
        self

        Raises
        ------
        ConfigError
            No generator is configured (``fold_in`` / ``similar`` naming none of them is refused at construction).
        DataError
            No purchase before the earliest label window, or nobody bought in any label window.
        """
        p = self.params
        if not p.generators:
            raise ConfigError("recommender 'clientele': no candidate generator configured")
        cutoff = latest_cutoff(tables) if cutoff is None else pd.Timestamp(cutoff)
        tables = tables_before(tables, cutoff)
        self._vocab = _vocabularies(tables)
        window = pd.Timedelta(days=p.window_days)
        clock = _Clock()
        first = _first_purchase(tables)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        attributes = self._attribute_models(tables, self._label_windows(cutoff, first), cutoff)
        if attributes is not None:
            clock.lap("attribute model")
        full = False
        for k, start in enumerate(self._label_windows(cutoff, first), start=1):
            # A window sampled down to the budget filled it, whatever the sizing's estimate left over.
            if full or (parts and sum(len(y) for _, y, _ in parts) >= p.max_train_rows):
                break
            with stage("training candidates"):
                rows = self._training_rows(tables, start, start + window, interactions,
                                           group_offset=k * _GROUP_STRIDE, attributes=attributes, fits=fits)
            if rows is not None:
                *rows, full = rows
                parts.append(tuple(rows))
            clock.lap(f"label window from {start.date()} (generators, candidates, features)")
        if not parts:
            raise DataError(f"recommender 'clientele': no customer bought both before and within any of the "
                            f"{p.train_windows} label windows of {p.window_days:g} days before {cutoff}; the data "
                            f"is too short for the label window (window_days)")
        features = np.concatenate([x for x, _, _ in parts])
        labels = np.concatenate([y for _, y, _ in parts])
        groups = np.concatenate([g for _, _, g in parts])
        parts.clear()  # the windows' rows live on in the stacked arrays only (not twice while the reranker learns)
        # Overlapping label windows share a customer's purchases: early stopping holds out customers, not groups.
        overlapping = p.window_stride_days is not None and p.window_stride_days < p.window_days
        with stage("reranker"):
            self.ranker_ = LambdaRanker(p.ranker, p.random_state).fit(
                features, labels, groups, self.feature_names_, self._categorical,
                held_out_by=groups % _GROUP_STRIDE if overlapping else None)
        clock.lap(f"reranker ({len(labels):,} candidates, {self.ranker_.num_trees()} trees)")
        data = TrainingData.build(tables, cutoff, interactions)
        self._fit_common(data, interactions)
        self.listed_ = None
        if listed is not None:
            codes = data.customers.to_internal(_id_array(list(listed)), unknown="missing")
            self.listed_ = np.zeros(data.n_users, dtype=bool)
            self.listed_[codes[codes >= 0]] = True
        self._fit_lists(data, tables, interactions, clock, attributes, client, fits)
        self.fit_seconds_ = clock.laps
        return self

    def _label_windows(self, cutoff: pd.Timestamp, first: pd.Timestamp) -> list[pd.Timestamp]:
        """Starts of the label windows, in the order they are used: the one just before the cutoff, the same
        weeks a season ago (holiday peaks repeat yearly and are what matters most to get right), then earlier
        consecutive ones. Only windows with at least a window's length of history before them count."""
        p = self.params
        window = pd.Timedelta(days=p.window_days)
        stride = pd.Timedelta(days=p.window_stride_days or p.window_days)
        recent = [cutoff - window - k * stride for k in range(p.train_windows)]
        starts = recent[:1]
        if p.seasonal_window:
            season = cutoff - pd.Timedelta(days=p.features.season_lag_days)
            if all(abs(season - start) >= window for start in recent):
                starts.append(season)
        starts += recent[1:]
        return [start for start in starts if start - first >= window]

    def _fit_generators(self, data: TrainingData, interactions: InteractionConfig | None,
                        attributes: "_AttributeModels | None" = None,
                        tables: dict[str, pd.DataFrame] | None = None,
                        fits: "GeneratorFits | None" = None,
                        alongside: Callable[[], Any] | None = None) -> tuple[dict[str, Recommender], Any]:
        """The generators fitted on ``data``; the attribute ones read the product attributes known at its cutoff
        (``tables`` cut there: a label window sees the prices paid before it, not those up to the last cutoff).
        Those ``fits`` holds for the very same data and settings are taken from it, not fitted again.

        The fits run side by side on ``workers`` threads (one per core by default), with ``alongside`` (work of
        the caller's that needs no generator) among them; returns the generators and what ``alongside``
        returned. implicit's ALS spends most of a fit in its own threads, outside the GIL, and the other fits are
        single-threaded numpy: beside it they take the time ALS leaves to the cores. Every fit is a function of
        the data and its settings alone, so the generators are the same whatever the count; side by side, BLAS
        keeps one thread throughout (as ``OPENBLAS_NUM_THREADS=1`` runs it anyway; ALS sets it for its own fit,
        and EASE's inverse must not depend on whether ALS is running beside it)."""
        registry = Recommender._registry
        attrs = product_attributes(tables_before(tables, data.cutoff)) if attributes is not None and tables \
            else None
        earlier = fits.take(data, interactions) if fits is not None else {}
        jobs: dict[str, Callable[[], Any]] = {}  # what to work out, by name (a generator's or its fit's key)
        uses: dict[str, tuple[str, dict[str, Any]]] = {}  # generator -> (job, scoring parameters to set)
        for name, spec in self.params.generators.items():
            params = {**spec.params, "random_state": self.params.random_state}
            model_cls = registry[spec.model]
            if attributes is not None and name in attributes.towers:
                jobs[name] = partial(model_cls(**params).fit_tower, data, attrs, attributes.towers[name],
                                     interactions)
                uses[name] = (name, {})
                continue
            # Generators that differ only in what scoring reads share one fit (and what their scoring shares).
            same_fit = _fit_key(spec.model, model_cls(**params).get_params())
            if same_fit not in jobs:
                model = earlier.get(same_fit)
                jobs[same_fit] = (lambda model=model: model) if model is not None else \
                    partial(model_cls(**params).fit_data, data, interactions)
            uses[name] = (same_fit, {k: v for k, v in params.items() if k in model_cls.scoring_params})
        if alongside is not None:
            jobs[_ALONGSIDE] = alongside
        workers = min(self.params.workers or prediction_threads(), len(jobs))
        if workers > 1:
            with threadpool_limits(1, "blas"), ThreadPoolExecutor(workers) as pool:
                futures = {key: pool.submit(job) for key, job in jobs.items()}
                done = {key: future.result() for key, future in futures.items()}
        else:
            done = {key: job() for key, job in jobs.items()}
        gens: dict[str, Recommender] = {}
        fitted: dict[str, Recommender] = {}
        for name, (key, scoring) in uses.items():
            if key in fitted:  # a fit shared with a generator before it: a copy with its own scoring parameters
                gens[name] = fitted[key].with_params(**scoring)
            else:
                gens[name] = fitted[key] = done[key].with_params(**scoring) if key in earlier else done[key]
        return gens, done.get(_ALONGSIDE)

    def _attribute_names(self) -> list[str]:
        return [name for name, spec in self.params.generators.items() if spec.model == ATTRIBUTES]

    def _shareable(self, gens: dict[str, Recommender]) -> dict[str, Recommender]:
        """The fits of ``gens`` another fit on the same data can take, by the settings they were fitted with
        (the attribute generators' towers are each fit's own: trained before its earliest label window)."""
        out: dict[str, Recommender] = {}
        for name, spec in self.params.generators.items():
            if name not in self._attribute_names():
                out.setdefault(_fit_key(spec.model, gens[name].get_params()), gens[name])
        return out

    def _attribute_models(self, tables: dict[str, pd.DataFrame], starts: list[pd.Timestamp],
                          cutoff: pd.Timestamp) -> "_AttributeModels | None":
        """The attribute generators' models, each trained once on the data before the earliest label window and
        applied at every later moment without training (:meth:`AttributeTower.at`): no label window's purchases
        reach it, and a fit costs one training, not one per window."""
        from models.recommenders.attribute_tower import AttributeTower

        names = self._attribute_names()
        if not names:
            return None
        earliest = min(starts) if starts else cutoff
        towers = {name: AttributeTower(self.params.generators[name].params.get("tower") or {},
                                       random_state=self.params.random_state).fit(tables, earliest)
                  for name in names}
        return _AttributeModels(towers=towers)

    def _with_launches(self, tables: dict[str, pd.DataFrame], start: pd.Timestamp,
                       end: pd.Timestamp) -> dict[str, pd.DataFrame]:
        """The tables of a label window ``[start, end)`` with the catalogue the store had at its start: what sold
        before it and what the products table lists, products launched inside the window included (a shop lists
        what it launches), products launched after it left out.

        A product first sold inside the window that the products table does not list is left out too: on a
        transaction log without a products table it is known only because it sold there, so it would be a
        positive for someone every time (selection bias), while at the cutoff no product is known before its
        first sale. Such a log's new arrivals are then, in a window as at the cutoff, the products first sold in
        the ``new_arrival_days`` before it."""
        catalogue = tables.get(Tables.products)
        if not self._attribute_names() or catalogue is None or C.launched_at not in catalogue.columns:
            return tables
        launched = pd.to_datetime(catalogue[C.launched_at], errors="coerce")
        return {**tables, Tables.products: catalogue[~(launched >= end)]}

    def _training_rows(self, tables: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp,
                       interactions: InteractionConfig | None, group_offset: int,
                       attributes: "_AttributeModels | None" = None, fits: "GeneratorFits | None" = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None:
        """Candidates, features and labels of one label window ``[start, end)``, and whether its customers were
        sampled down to ``max_train_rows`` (:meth:`_within_budget`); None when nobody bought both before and
        inside it."""
        window_tables = self._with_launches(tables, start, end)
        data = TrainingData.build(window_tables, start, interactions)
        tx = tables[Tables.transactions]
        inside = without_returns(tx[(tx[C.timestamp] >= start) & (tx[C.timestamp] < end)])
        users = data.customers.to_internal(inside[C.customer_id], unknown="missing")
        items = data.products.to_internal(inside[C.product_id], unknown="missing")
        label_keys = np.unique(users[(users >= 0) & (items >= 0)].astype(np.int64) * data.n_items
                               + items[(users >= 0) & (items >= 0)])
        buyers = np.intersect1d(np.unique(users[users >= 0]), np.unique(data.log.user))
        if len(buyers) == 0:
            return None
        if len(buyers) > self.params.max_train_customers:
            rng = np.random.default_rng(self.params.random_state)
            buyers = np.sort(rng.choice(buyers, self.params.max_train_customers, replace=False))
        gens, _ = self._fit_generators(data, interactions, attributes, window_tables, fits)
        everyone = len(buyers)
        buyers = self._within_budget(gens, data, buyers)
        # Only the sampled buyers' candidates are described: their customer features alone are worked out.
        described = CandidateFeatures(data, tables, self.params.features, self._vocab, self.params.window_days,
                                      customers=buyers)
        xs, ys, gs = [], [], []
        for batch_users, rows, items_, gen_features in self._candidates(gens, data, buyers,
                                                                         f"training candidates from {start.date()}"):
            users_ = batch_users[rows]
            x, pair_names = _block_features(described, gen_features, users_, items_, data.catalog,
                                            self.params.new_arrival_days)
            xs.append(x)
            keys = users_.astype(np.int64) * data.n_items + items_
            ys.append(np.isin(keys, label_keys).astype(np.float32))
            gs.append(group_offset + users_.astype(np.int64))
            self.feature_names_ = self._generator_feature_names(gens) + pair_names
        self._categorical = described.categorical
        x, y, g = np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)
        if self.params.max_negatives is not None:
            keep = _sample_negatives(y, g, self.params.max_negatives, self.params.random_state + group_offset)
            x, y, g = x[keep], y[keep], g[keep]
        return x, y, g, len(buyers) < everyone

    def _within_budget(self, gens: dict[str, Recommender], data: TrainingData, buyers: np.ndarray) -> np.ndarray:
        """The label window's customers, a random share of them when their candidates would overflow
        ``max_train_rows`` on their own: the candidates per customer of a first batch say how many fit. The
        reranker's training set, and the memory it takes, stays within the budget whatever the customer count."""
        budget = self.params.max_train_rows
        pilot = buyers[:max(1, min(self.params.batch_size, self.params.max_cells // max(data.n_items, 1)))]
        if len(pilot) == 0:
            return buyers
        batches = self._candidates(gens, data, pilot, "sizing the label window")
        try:
            _, rows, _, _ = next(batches)
        finally:
            batches.close()
        per_customer = max(len(rows), 1) / len(pilot)
        if per_customer * len(buyers) <= budget:
            return buyers
        keep = max(1, int(budget / per_customer))
        return np.sort(np.random.default_rng([self.params.random_state, 1]).choice(buyers, keep, replace=False))

    @staticmethod
    def _generator_feature_names(gens: dict[str, Recommender]) -> list[str]:
        return [f"g_{name}_{kind}" for name in gens for kind in ("score", "rank")]

    def _candidates(self, gens: dict[str, Recommender], data: TrainingData, users: np.ndarray,
                    description: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per batch of customers: (customers, row in batch, product, generator scores and ranks) of the union
        of every generator's top candidates, sorted by customer then product (a progress bar: ``description``)."""
        batch = self._block_size(data)
        for begin in blocks(description, len(users), batch, "customers"):
            chunk = users[begin:begin + batch]
            yield (chunk, *self._block_candidates(gens, data, chunk))

    def _block_size(self, data: TrainingData) -> int:
        """Customers per block of candidates (a block's dense scores stay within ``max_cells``)."""
        return max(1, min(self.params.batch_size, self.params.max_cells // max(data.n_items, 1)))

    def _block_candidates(self, gens: dict[str, Recommender], data: TrainingData,
                          chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_candidates` of one block of customers ``chunk``: (row in the block, product, generator scores
        and ranks)."""
        n_items = data.n_items
        union = np.zeros((len(chunk), n_items), dtype=bool)
        dense, tops = {}, {}
        for name, gen in gens.items():
            scores = np.asarray(gen._score(chunk), dtype=np.float32)
            dense[name] = scores
            k = self.params.generators[name].candidates
            if k == 0:
                continue
            top, _ = signals.top_n(scores, k)
            rows = np.repeat(np.arange(len(chunk)), top.shape[1])
            rank = np.tile(np.arange(1, top.shape[1] + 1), len(chunk)).astype(np.float32)
            flat = top.ravel()
            ok = flat >= 0
            union[rows[ok], flat[ok]] = True
            tops[name] = (rows[ok], flat[ok], rank[ok])
        rows, items = np.nonzero(union)
        # Each generator's rank of the union's candidates (NaN: not proposed), through one grid of the
        # candidates' places in the union.
        place = np.full((len(chunk), n_items), -1, dtype=np.int32)
        place[rows, items] = np.arange(len(rows))
        columns = []
        for name in gens:
            score = dense[name][rows, items]
            score[~np.isfinite(score)] = np.nan
            rank = np.full(len(rows), np.nan, dtype=np.float32)
            if name in tops:
                top_rows, top_items, top_rank = tops[name]
                rank[place[top_rows, top_items]] = top_rank
            columns += [score, rank]
        return rows, items.astype(np.int64), stack_columns(columns, len(rows))

    def _fit(self, data: TrainingData) -> None:
        raise ConfigError("recommender 'clientele': the two-stage model learns from the tables (fit()), not from "
                          "prepared training data: its reranker needs earlier label windows")

    def _fit_lists(self, data: TrainingData, tables: dict[str, pd.DataFrame], interactions: InteractionConfig | None,
                   clock: "_Clock", attributes: "_AttributeModels | None" = None, client: Any | None = None,
                   fits: "GeneratorFits | None" = None) -> None:
        """Refit the generators on all the data and precompute every known customer's reranked lists."""
        p = self.params
        step = steps()
        step("generators")
        # Every customer's candidate features need no generator: worked out beside their fits.
        gens, described = self._fit_generators(
            data, interactions, attributes, tables, fits,
            alongside=partial(CandidateFeatures, data, tables, p.features, self._vocab, p.window_days))
        if fits is not None:
            fits.keep(data, interactions, self._shareable(gens))
        clock.lap("generators at the cutoff")
        step("reranked lists")
        users = np.flatnonzero(self.active_ & self.consent_ & (True if self.listed_ is None else self.listed_))
        arrivals = data.catalog.new_arrivals(p.new_arrival_days) if attributes is not None else None
        lists = self._spilled_lists(data.n_users, arrivals)
        if client is None:
            self._rerank(gens, data, described, users, arrivals, lists, users,
                         workers=p.workers or prediction_threads())
        else:
            from features.dask_engine import map_partitions

            size = p.dask_partition_customers
            parts = [users[begin:begin + size] for begin in range(0, len(users), size)]
            # The fitted state travels to every worker once; each task carries its customers only.
            shared = (self, gens, data, described, arrivals)
            for part, part_lists in zip(parts, map_partitions(client, _rerank_partition, shared, parts)):
                for kind, fields in part_lists.items():
                    for field, values in fields.items():
                        lists[kind][field][part] = values
        _finish(lists)
        self.serve_ = lists
        clock.lap(f"reranked lists of {len(users):,} customers")
        if self.listed_ is None:
            step("reasons")
            release_free_memory()  # the reranking blocks' leftovers, before the reasons' arrays join the lists
            self._precompute_reasons(gens, data, described, workers=p.workers or prediction_threads())
            _finish(self.serve_)
            clock.lap("reasons")
        step.close()
        self.generators_ = {name: gens[name] for name in dict.fromkeys([p.fold_in, p.similar])}
        for name in self._attribute_names():  # products without purchases are related by their attributes
            self.generators_[name] = gens[name].without_customers()

    def _list_widths(self, arrivals: np.ndarray | None) -> dict[str, int]:
        """Places of each list: ``all`` and ``new`` ``serve_depth`` deep, and ``fresh`` (new arrivals) when the model
        has them."""
        widths = {"all": self.params.serve_depth, "new": self.params.serve_depth}
        if arrivals is not None:
            widths["fresh"] = self.params.new_arrival_depth
        return widths

    def _empty_lists(self, rows: int, arrivals: np.ndarray | None) -> dict[str, dict[str, np.ndarray]]:
        """Reranked lists of ``rows`` customers, empty, in memory (a Dask partition's)."""
        return {kind: {field: np.full((rows, width), fill, dtype=dtype)
                       for field, (dtype, fill) in _LIST_FIELDS.items()}
                for kind, width in self._list_widths(arrivals).items()}

    def _spilled_lists(self, rows: int, arrivals: np.ndarray | None) -> dict[str, dict[str, ListFile]]:
        """Reranked lists of ``rows`` customers, empty, as files in a folder private to this fit
        (:mod:`~models.recommenders.list_files`): the blocks are written there as they are reranked, never all held
        in memory (a million customers' lists and reasons are about 5 GB); the save links the files into the model."""
        folder = SpillFolder()
        return {kind: {field: folder.field(f"{kind}_{field}", (rows, width), dtype, fill)
                       for field, (dtype, fill) in _LIST_FIELDS.items()}
                for kind, width in self._list_widths(arrivals).items()}

    def _rerank(self, gens: dict[str, Recommender], data: TrainingData, described: CandidateFeatures,
                users: np.ndarray, arrivals: np.ndarray | None, lists: dict[str, dict[str, np.ndarray]],
                places: np.ndarray, workers: int = 1) -> None:
        """Rerank the candidates of ``users`` (sorted internal indices), block by block, into ``lists``: row
        ``places[k]`` of each list is ``users[k]``'s. The one path of every reranking, in process or on a worker
        (:func:`_rerank_partition`).

        ``workers`` threads rerank blocks side by side (numpy, scipy's sparse products and LightGBM let go of the
        GIL for most of a block's work); each block is a pure function of its customers and the lists are
        written in block order, so they are the same whatever the count."""
        batch = self._block_size(data)
        threads = max(1, prediction_threads() // workers)  # the cores shared out, not oversubscribed

        def rerank(begin: int) -> dict[str, _Top]:
            return self._rerank_block(gens, data, described, users[begin:begin + batch], arrivals, threads)

        with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
            starts = blocks("reranking", len(users), batch, "customers")
            for begin, tops in zip(starts, _in_order(pool, rerank, range(0, len(users), batch), workers)):
                for kind, top in tops.items():
                    _keep_top(lists[kind], places[begin + top.rows], top)

    def _rerank_block(self, gens: dict[str, Recommender], data: TrainingData, described: CandidateFeatures,
                      chunk: np.ndarray, arrivals: np.ndarray | None, threads: int) -> "dict[str, _Top]":
        """Each list's best candidates of the customers ``chunk`` (rows: places in ``chunk``), predictions on
        ``threads`` threads. Reads the fitted state only."""
        p = self.params
        rows, items, gen_features = self._block_candidates(gens, data, chunk)
        x, pair_names = _block_features(described, gen_features, chunk[rows], items, data.catalog,
                                        p.new_arrival_days)
        if self._generator_feature_names(gens) + pair_names != self.feature_names_:
            raise DataError("recommender 'clientele': the features at the cutoff differ from those the reranker "
                            "was trained on; this is a bug, please report it with the data's columns")
        predicted = self.ranker_.predict(x, threads=threads)
        source = self._best_source(list(gens), gen_features)
        bought = x[:, gen_features.shape[1] + pair_names.index("x_days")] > 0  # the pairs of the purchase history
        tops = {kind: _top(rows[keep], items[keep], predicted[keep], source[keep], p.serve_depth)
                for kind, keep in (("all", slice(None)), ("new", ~bought))}
        if arrivals is not None:
            keep = arrivals[items] & ~bought
            tops["fresh"] = _top(rows[keep], items[keep], predicted[keep], source[keep], p.new_arrival_depth)
        return tops

    def _best_source(self, names: list[str], gen_features: np.ndarray) -> np.ndarray:
        """Index (in ``names``) of the generator that ranks each candidate best relative to how many it
        proposes (the first among equals); -1 when none proposed it."""
        proposes = np.array([self.params.generators[name].candidates for name in names], dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = gen_features[:, 1:2 * len(names):2] / proposes  # NaN rank: not proposed
        relative[~np.isfinite(relative)] = np.inf  # nor counted when it proposes none (k = 0)
        best = relative.argmin(axis=1).astype(np.int8)
        best[np.isinf(relative[np.arange(len(best)), best])] = -1
        return best

    def _precompute_reasons(self, gens: dict[str, Recommender], data: TrainingData,
                            described: CandidateFeatures, workers: int = 1) -> None:
        """Reason kind and its arguments (anchor product or region, usual gap, days since) of every listed
        product, worked out per block of customers on ``workers`` threads (memory stays that of one block's
        places beside the lists, shared out among the threads; each block writes its own rows)."""
        for kind, lists in self.serve_.items():
            like = lists["items"]  # the reasons are kept where the lists are (files of the fit's folder, or memory)
            for field, (dtype, fill) in _REASON_FIELDS.items():
                lists[field] = like.folder.field(f"{kind}_{field}", like.shape, dtype, fill) \
                    if isinstance(like, ListFile) else np.full(like.shape, fill, dtype=dtype)
        shape = self.serve_["all"]["items"].shape
        n_categories = len(data.catalog.categories) + 1
        category = np.asarray(data.catalog.category, dtype=np.int64) + 1  # 0: unknown
        knn = gens[self.params.fold_in]
        relation = knn._relation
        context = _ReasonContext(keys=described.history.key(data.n_items), history=described.history,
                                 knn=knn, relation=_Relation(relation) if sp.issparse(relation) else relation,
                                 models=np.array([self.params.generators[name].model for name in gens] + [""],
                                                 dtype=object),
                                 arrivals=data.catalog.new_arrivals(self.params.new_arrival_days)
                                 if self._attribute_names() else np.zeros(data.n_items, dtype=bool),
                                 category=category,
                                 bought_categories=np.unique(data.log.user.astype(np.int64) * n_categories
                                                             + category[data.log.item]))
        step = max(1, _REASON_PLACES // max(2 * shape[1], 1) // workers)

        def explain(start: int) -> None:
            self._block_reasons(np.arange(start, min(start + step, shape[0])), data, context)

        with ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
            done = _in_order(pool, explain, range(0, shape[0], step), workers)
            for _ in zip(blocks("reasons", shape[0], step, "customers"), done):
                pass

    def _block_reasons(self, block: np.ndarray, data: TrainingData, context: "_ReasonContext") -> None:
        """:meth:`_precompute_reasons` of the customers ``block`` (both lists)."""
        n_items = data.n_items
        history, keys, knn = context.history, context.keys, context.knn
        known_keys, known_anchors = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        for lists in self.serve_.values():
            items = lists["items"][block]
            users = np.repeat(block, items.shape[1])
            flat = items.ravel().astype(np.int64)
            valid = flat >= 0
            reason = np.full(len(flat), REASON_NONE, dtype=np.int8)
            anchor = np.full(len(flat), -1, dtype=np.int32)
            gap = np.full(len(flat), np.nan, dtype=np.float32)
            since = np.full(len(flat), np.nan, dtype=np.float32)
            days = np.zeros(len(flat), dtype=np.float32)
            pair_keys = users.astype(np.int64) * n_items + np.maximum(flat, 0)
            if len(keys):
                where = np.minimum(np.searchsorted(keys, pair_keys), len(keys) - 1)
                bought = valid & (keys[where] == pair_keys)
            else:
                where, bought = np.zeros(len(flat), dtype=np.int64), np.zeros(len(flat), dtype=bool)
            reason[bought] = REASON_REPEAT
            gap[bought] = history.gap[where[bought]]
            since[bought] = history.last_age[where[bought]]
            days[bought] = history.days[where[bought]]
            source = context.models[lists["source"][block].ravel()]  # -1 picks the trailing ""
            todo = valid & ~bought
            region = data.region[users]
            region_ok = (region >= 0) & self.region_ok_[np.maximum(region, 0)] if len(self.region_ok_) else \
                np.zeros(len(flat), dtype=bool)
            trending = todo & (source == "trending")
            seasonal = todo & (source == "seasonal")
            popular = todo & (source == "popularity")
            arrival = todo & ~trending & ~seasonal & ~popular & context.arrivals[np.maximum(flat, 0)]
            reason[trending] = REASON_TRENDING
            reason[seasonal] = REASON_SEASONAL
            reason[popular & region_ok] = REASON_REGION
            anchor[popular & region_ok] = region[popular & region_ok]
            reason[popular & ~region_ok] = REASON_POPULAR
            personal = todo & ~trending & ~seasonal & ~popular & ~arrival
            # A new arrival: "new in <its category>", "like the ones you bought" when the customer bought there.
            item_category = context.category[np.maximum(flat, 0)]
            in_bought = signals.in_sorted(context.bought_categories,
                                          users.astype(np.int64) * (len(data.catalog.categories) + 1) + item_category)
            reason[arrival] = np.where(in_bought[arrival] & (item_category[arrival] > 0), REASON_NEW_BOUGHT,
                                       REASON_NEW)
            anchor[arrival] = item_category[arrival] - 1
            # The product of the customer's history that relates most to the recommendation (item-item); the two
            # lists share most of their products, so each (customer, product) is worked out once.
            anchors = np.full(len(flat), -1, dtype=np.int64)
            at = np.minimum(np.searchsorted(known_keys, pair_keys), max(len(known_keys) - 1, 0))
            found = personal & (known_keys[at] == pair_keys) if len(known_keys) else np.zeros(len(flat), dtype=bool)
            anchors[found] = known_anchors[at[found]]
            todo_anchor = personal & ~found
            grid = np.where(todo_anchor.reshape(items.shape), items, -1).astype(np.int64)
            rows_needed = np.flatnonzero((grid >= 0).any(axis=1))
            if len(rows_needed):
                anchors_grid = np.full(grid.shape, -1, dtype=np.int64)
                anchors_grid[rows_needed] = knn._anchors(sp.csr_matrix(data.interactions[block[rows_needed]]),
                                                         grid[rows_needed], context.relation)
                anchors[todo_anchor] = anchors_grid.ravel()[todo_anchor]
            known_keys = np.concatenate([known_keys, pair_keys[todo_anchor]])
            known_anchors = np.concatenate([known_anchors, anchors[todo_anchor]])
            order = np.argsort(known_keys, kind="stable")
            known_keys, known_anchors = known_keys[order], known_anchors[order]
            together = personal & (anchors >= 0)
            reason[together] = REASON_TOGETHER
            anchor[together] = anchors[together]
            reason[personal & (anchors < 0)] = REASON_TASTE
            lists["reason"][block] = reason.reshape(items.shape)
            lists["anchor"][block] = anchor.reshape(items.shape)
            lists["gap"][block] = gap.reshape(items.shape)
            lists["since"][block] = since.reshape(items.shape)
            lists["days"][block] = days.reshape(items.shape)

    # ------------------------------------------------------------------------------------------- serving

    def candidate_lists(self, users: np.ndarray, explain: bool = True) -> CandidateLists:
        """The reranked lists precomputed at the fit: the ``serve_depth`` best products merged with the
        ``serve_depth`` best not bought before (see :meth:`Recommender.candidate_lists`)."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        if self.listed_ is not None and (explain or not self.listed_[users].all()):
            raise ConfigError("recommender 'clientele': fitted for an evaluation (fit(listed=...)): it answers only "
                              "the customers it listed, without reasons")
        full, new = self.serve_["all"], self.serve_["new"]
        fresh = self.serve_.get("fresh")  # new arrivals, with an attributes generator
        items = np.hstack([full["items"][users], new["items"][users]]
                          + ([fresh["items"][users]] if fresh is not None else [])).astype(np.int64)
        scores = np.hstack([full["score"][users], new["score"][users]]
                           + ([fresh["score"][users]] if fresh is not None else []))
        lists, rows, cols = self._merged(users, items, scores)
        if not explain:
            return lists
        reasons = self._reason_texts(users[rows], cols, full["items"].shape[1])
        return CandidateLists(offsets=lists.offsets, items=lists.items, scores=lists.scores, reasons=reasons,
                              bought=lists.bought)

    def _reason_texts(self, users: np.ndarray, cols: np.ndarray, depth: int) -> np.ndarray:
        """Reason texts of places of the precomputed lists (``cols`` below ``depth``: the "all" list, else the
        "new" one), each distinct wording built once: 1M customers x 100 places need no per-place Python."""
        full, new = self.serve_["all"], self.serve_["new"]
        fresh = self.serve_.get("fresh")
        slot, first = cols % depth, cols < depth
        later = cols >= 2 * depth  # the new arrivals' list

        def pick(field: str) -> np.ndarray:
            out = np.where(first, full[field][users, slot], new[field][users, slot])
            if fresh is not None and later.any():
                out[later] = fresh[field][users[later], cols[later] - 2 * depth]
            return out

        kind, anchor = pick("reason").astype(np.int64), pick("anchor").astype(np.int64)
        out = np.full(len(users), message("rec.similar_taste"), dtype=object)
        for code, text in ((REASON_TRENDING, message("rec.trending")), (REASON_SEASONAL, message("rec.seasonal")),
                           (REASON_POPULAR, message("rec.popular")), (REASON_NEW, message("rec.new_for_taste"))):
            out[kind == code] = text
        for code, template, key, names in ((REASON_TOGETHER, "rec.bought_together", "product", self.catalog_.names),
                                           (REASON_REGION, "rec.popular_region", "region", self.regions_),
                                           (REASON_NEW, "rec.new_in_category", "category", self.catalog_.categories),
                                           (REASON_NEW_BOUGHT, "rec.new_in_category_bought", "category",
                                            self.catalog_.categories)):
            where = (kind == code) & (anchor >= 0)
            if where.any():
                distinct, inverse = np.unique(anchor[where], return_inverse=True)
                out[where] = np.array([message(template, **{key: names[a]}) for a in distinct], dtype=object)[inverse]
        repeat = kind == REASON_REPEAT
        if repeat.any():
            out[repeat] = timing_reasons(pick("gap")[repeat], pick("since")[repeat], pick("days")[repeat])
        return out

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        scores = self.generators_[self.params.similar]._similar_scores(items)
        attributes = self._attribute_generator()
        if attributes is None:
            return scores
        scores = np.array(scores, dtype=np.float32)
        by_attributes = attributes.attribute_similarity(items).astype(np.float32)
        unsold = self._unsold()[items]
        # A product nobody bought is related by what it is; others keep what was bought with them, and new
        # arrivals like them enter below their strongest relations.
        scores[unsold] = by_attributes[unsold]
        arrivals = self.new_arrivals()
        if arrivals.any() and (~unsold).any():
            k = min(self.params.similar_depth // 5 + 1, scores.shape[1]) - 1
            kth = -np.partition(-scores[~unsold], k, axis=1)[:, k]
            mixed = np.maximum(scores[~unsold][:, arrivals], np.maximum(by_attributes[~unsold][:, arrivals], 0)
                               * np.maximum(kth, 0)[:, None])
            rows = np.flatnonzero(~unsold)
            scores[np.ix_(rows, np.flatnonzero(arrivals))] = mixed
        return scores

    def _explain_similar(self, items: np.ndarray, similar: np.ndarray) -> np.ndarray:
        reasons = self.generators_[self.params.similar]._explain_similar(items, similar)
        attributes = self._attribute_generator()
        if attributes is None:
            return reasons
        reasons = np.array(reasons, dtype=object)
        unsold = self._unsold()[items]
        reasons[unsold] = attributes._explain_similar(items[unsold], similar[unsold])
        names = self.catalog_.names
        arrival = self.new_arrivals()[np.maximum(similar, 0)] & (similar >= 0) & ~unsold[:, None]
        rows, cols = np.nonzero(arrival)
        reasons[rows, cols] = [message("rec.new_like", product=names[items[r]]) for r in rows.tolist()]
        return reasons

    def _attribute_generator(self) -> Recommender | None:
        names = [name for name in self._attribute_names() if name in getattr(self, "generators_", {})]
        return self.generators_[names[0]] if names else None

    def _unsold(self) -> np.ndarray:
        """Products nobody bought before the cutoff (worked out once per fitted history: every batch of similar
        lists asks)."""
        cached = self.__dict__.get("_unsold_cache")
        if cached is None or cached[0] is not self.bought_:
            counts = np.bincount(self.bought_.indices, minlength=self.bought_.shape[1])
            cached = self.__dict__["_unsold_cache"] = (self.bought_, counts == 0)
        return cached[1]

    # ------------------------------------------------------------------------------------------ save/load

    def _state(self) -> dict[str, np.ndarray]:
        # The precomputed lists are files of their own (``_save_files``), read back memory-mapped.
        return {}

    def save(self, path: str | Path) -> Path:
        """See :meth:`Recommender.save`; a model fitted for an evaluation (``fit(listed=...)``) is refused."""
        self._check_fitted()
        if self.listed_ is not None:
            raise ConfigError("recommender 'clientele': a model fitted for an evaluation (fit(listed=...)) lists only "
                              "some customers and is not saved; fit it without `listed` to serve it")
        return super().save(path)

    def _meta(self) -> dict[str, Any]:
        return {"feature_names": self.feature_names_, "categorical": self._categorical,
                "generators": list(self.generators_)}

    def _save_files(self, path: Path) -> None:
        (path / RANKER_FILE).write_text(self.ranker_.to_text())
        # One .npy per list field, written straight from the arrays (no copy) and memory-mapped on load: a
        # million customers' lists are gigabytes that neither the save, nor a load that checks the logged model,
        # nor every serving worker should hold in memory again.
        (path / LISTS_DIR).mkdir(parents=True, exist_ok=True)
        names = {f"{kind}_{key}" for kind, lists in self.serve_.items() for key in lists}
        for stale in (path / LISTS_DIR).glob("*.npy"):  # another model's lists saved in this folder before
            if stale.stem not in names:
                stale.unlink()
        for kind, lists in self.serve_.items():
            for key, value in lists.items():
                target = path / LISTS_DIR / f"{kind}_{key}.npy"
                if isinstance(value, np.memmap) and target.exists() and target.samefile(value.filename):
                    continue  # a loaded model saved where it was loaded from: the file is this very array
                if isinstance(value, ListFile):
                    value.save(target)  # the fit's file itself (a link), not read into memory
                else:
                    np.save(target, value, allow_pickle=False)
        for name, gen in self.generators_.items():
            gen.save(path / GENERATOR_DIR / name)

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.serve_, self.listed_ = {}, None
        # Models saved before the lists had their own files keep them in the state.
        files = sorted((path / LISTS_DIR).glob("*.npy")) if (path / LISTS_DIR).is_dir() else []
        state = {**state, **{file.stem: np.load(file, mmap_mode="r", allow_pickle=False) for file in files}}
        for key, value in state.items():
            kind, field = key.split("_", 1)
            self.serve_.setdefault(kind, {})[field] = value
        self.feature_names_ = meta["feature_names"]
        self._categorical = meta["categorical"]
        self.ranker_ = LambdaRanker.from_text((path / RANKER_FILE).read_text(), self.params.ranker,
                                              self.params.random_state)
        self.generators_ = {name: Recommender.load(path / GENERATOR_DIR / name) for name in meta["generators"]}

    def feature_importance(self) -> dict[str, float]:
        """Total gain of each reranker feature, largest first."""
        return self.ranker_.importance()


@dataclass(frozen=True)
class _ReasonContext:
    """What every block of :meth:`TwoStage._precompute_reasons` reads."""

    keys: np.ndarray
    history: signals.PairHistory
    knn: Recommender
    relation: Any  # the fold-in generator's item-item relation (sparse ones looked up through one _Relation)
    models: np.ndarray
    arrivals: np.ndarray  # new arrivals (with an attributes generator)
    category: np.ndarray  # category code + 1 per product (0: unknown)
    bought_categories: np.ndarray  # customer * (categories + 1) + category + 1 of their purchases, sorted


@dataclass(frozen=True)
class _AttributeModels:
    """The attribute generators' trained models (one fit's)."""

    towers: dict[str, Any]


def _block_features(described: CandidateFeatures, gen_features: np.ndarray, users: np.ndarray, items: np.ndarray,
                    catalog: Any, new_days: float) -> tuple[np.ndarray, list[str]]:
    """The reranker's matrix of a block of candidates: the generators' scores and ranks, the customer, product
    and pair features, and the product's launch: whether it is a new arrival and the days since its launch (NaN:
    never sold, no launch date), so the reranker learns how new products sell. Returns the matrix and the names
    of its columns after the generators'."""
    parts, names = described.columns(users, items)
    age = catalog.launch_age
    days = np.full(len(items), np.nan, dtype=np.float32) if age is None else \
        np.asarray(age, dtype=np.float32)[items]
    new = catalog.new_arrivals(new_days)[items].astype(np.float32)
    return stack_columns([gen_features, *parts, new, days], len(items)), \
        names + ["p_new_arrival", "p_days_since_launch"]


class _Clock:
    """Seconds spent in each step of a fit (``TwoStage.fit_seconds_``: where a slow fit goes)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.laps[step] = round(now - self._last, 2)
        self._last = now


def _fit_key(model: str, settings: dict[str, Any]) -> str:
    """What a generator's fit depends on: its model and every setting but those only its scoring reads."""
    scoring = Recommender._registry[model].scoring_params
    return json.dumps([model, {k: v for k, v in settings.items() if k not in scoring}], sort_keys=True, default=str)


class GeneratorFits:
    """Generators fitted at one cutoff, kept for a later fit whose label window sees the very same data (the
    training job's holdout fit at the start of the last window, then the fit at the end of the data, whose first
    label window is that window): that fit takes them instead of fitting them again. Holds one fit's generators
    at a time, and hands them over once."""

    def __init__(self) -> None:
        self._key: tuple[str, str] | None = None
        self._models: dict[str, Recommender] = {}

    @staticmethod
    def _data_key(data: TrainingData, interactions: InteractionConfig | None) -> tuple[str, str]:
        return data.fingerprint, json.dumps(None if interactions is None else interactions.model_dump(mode="json"),
                                            sort_keys=True)

    def keep(self, data: TrainingData, interactions: InteractionConfig | None,
             models: dict[str, Recommender]) -> None:
        """Keep ``models`` (fit key -> generator, see :func:`_fit_key`) fitted on ``data``, instead of any kept
        before."""
        self._key, self._models = self._data_key(data, interactions), dict(models)

    def take(self, data: TrainingData, interactions: InteractionConfig | None) -> dict[str, Recommender]:
        """The kept generators when they were fitted on this very data (then no longer kept), else none."""
        if self._key is None or self._key != self._data_key(data, interactions):
            return {}
        models, self._key, self._models = self._models, None, {}
        return models

    def clear(self) -> None:
        """Drop what is kept."""
        self._key, self._models = None, {}


def _rerank_partition(shared: tuple, users: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """One Dask task: the reranked lists of ``users`` (row k is ``users[k]``'s), by :meth:`TwoStage._rerank`
    over the fitted state ``shared`` (the model, its generators, data, candidate features, new arrivals)."""
    model, gens, data, described, arrivals = shared
    lists = model._empty_lists(len(users), arrivals)
    model._rerank(gens, data, described, users, arrivals, lists, np.arange(len(users)))
    return lists


@dataclass(frozen=True)
class _Top:
    """A block's best candidates of one list: customer row, place in the customer's list, product, score, source
    generator (:func:`_top`)."""

    rows: np.ndarray
    position: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    source: np.ndarray


def _top(rows: np.ndarray, items: np.ndarray, scores: np.ndarray, source: np.ndarray, depth: int) -> _Top:
    """Each customer's ``depth`` best candidates (higher score first, the lower product among equals), of
    candidates sorted by customer row, then product."""
    order = np.lexsort((-scores, rows))  # stable: products stay in order among equal scores
    rows, items, scores, source = rows[order], items[order], scores[order], source[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.empty(0, dtype=np.int64)
    position = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    keep = position < depth
    return _Top(rows[keep], position[keep], items[keep], scores[keep], source[keep])


def _keep_top(lists: dict[str, np.ndarray], users: np.ndarray, top: _Top) -> None:
    """Write a block's best candidates (:func:`_top`) into ``lists``: ``users`` are their rows there."""
    lists["items"][users, top.position] = top.items
    lists["score"][users, top.position] = top.scores
    lists["source"][users, top.position] = top.source


def _finish(lists: dict[str, dict[str, Any]]) -> None:
    """Rows of the fit's list files that no block wrote hold their fill (customers not listed)."""
    for fields in lists.values():
        for values in fields.values():
            if isinstance(values, ListFile):
                values.finish()


def _in_order(pool: ThreadPoolExecutor | None, work: Callable[[int], Any], args: Iterable[int],
              ahead: int) -> Iterator[Any]:
    """``map(work, args)``, on ``pool``'s threads when there is one: at most ``ahead`` results waiting beyond the
    one handed out, handed out in order."""
    if pool is None:
        yield from map(work, args)
        return
    pending: deque = deque()
    for arg in args:
        pending.append(pool.submit(work, arg))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _sample_negatives(labels: np.ndarray, groups: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Mask keeping every positive and at most ``limit`` random negatives of each group (rows stay in order)."""
    rng = np.random.default_rng(seed)
    draw = rng.random(len(labels))
    negative = labels <= 0
    order = np.lexsort((draw, negative, groups))  # per group: positives, then negatives in random order
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    positives_in_group = np.add.reduceat((~negative[order]).astype(np.int64), starts)
    position_among_negatives = position - np.repeat(positives_in_group, np.diff(np.r_[starts, len(order)]))
    keep = np.zeros(len(labels), dtype=bool)
    keep[order] = ~negative[order] | (position_among_negatives < limit)
    return keep


def _first_purchase(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    return pd.Timestamp(without_returns(tables[Tables.transactions])[C.timestamp].min())


def _vocabularies(tables: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    customers = tables.get(Tables.customers)
    if customers is None:
        return {}
    return {col: sorted(customers[col].dropna().astype("str").unique()) for col in CATEGORICAL_FEATURES
            if col in customers.columns}

