"""Temporal evaluation of the recommender against its peers, side by side in one run.

Protocol (issue 4): the test window is the last ``test_days`` calendar days of the data; every model is fitted
on the rows strictly before it; test customers bought at least once before and inside the window; the target
is the set of distinct products each bought inside the window (products never seen in training stay in it and
count as misses). Recall@20 = hits / min(20, |target|), NDCG@10 with binary gains, HitRate@10, catalogue
coverage of the top 20, and the two halves of a shop's list: "new to the customer" (``_new``: target minus
products bought before, with already-bought products filtered out of the recommendations) and "buy again"
(``_repeat``: the products bought before that the customer bought again, ranked by the policy's
``buy_again_share`` 1, the model's already-bought products first).

Peers are tuned honestly: each peer's small grid (``evaluation.peers`` in configs/recommender.yaml) is scored
on a validation window of the same length carved from the end of the training data, the best setting by
NDCG@10 is refitted on all the training data, and only then does anything look at the test window.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from features.codes import among
from features.columns import Columns as C
from features.columns import Tables
from features.config import FeatureConfig, InteractionConfig
from features.exceptions import ConfigError, DataError
from features.progress import track
from models.recommenders import Filters, Recommender, registry
from models.recommenders.config import PeerSpec, evaluation_settings, load_config
from models.recommenders.data import TrainingData, tables_before

OWN = "clientele"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TemporalSplit:
    """A test window at the end of the data and what each test customer bought in it.

    Attributes
    ----------
    start, end
        The window is ``[start, end)``; training data is every row before ``start``.
    customers
        Test customers (a purchase before ``start`` and one inside the window), sorted.
    target
        ``customer_id``, ``product_id``: distinct products each test customer bought inside the window.
    seen
        ``customer_id``, ``product_id``: distinct products each test customer bought before ``start``.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    customers: np.ndarray
    target: pd.DataFrame
    seen: pd.DataFrame

    def sample(self, n: int, seed: int = 0) -> "TemporalSplit":
        """The split of ``n`` test customers drawn at random (the same ``n`` and seed draw the same ones)."""
        keep = np.sort(np.random.default_rng(seed).choice(self.customers, n, replace=False))
        return TemporalSplit(start=self.start, end=self.end, customers=keep,
                             target=self.target[among(self.target[C.customer_id], keep)].reset_index(drop=True),
                             seen=self.seen[among(self.seen[C.customer_id], keep)].reset_index(drop=True))

    @property
    def new_target(self) -> pd.DataFrame:
        """The target without products the customer had bought before the window."""
        return self._target_part(seen=False)

    @property
    def repeat_target(self) -> pd.DataFrame:
        """The target's products the customer had bought before the window (bought again)."""
        return self._target_part(seen=True)

    def _target_part(self, seen: bool) -> pd.DataFrame:
        merged = self.target.merge(self.seen.assign(_seen=True), how="left", on=[C.customer_id, C.product_id])
        keep = merged["_seen"].notna() if seen else merged["_seen"].isna()
        return merged[keep][[C.customer_id, C.product_id]].reset_index(drop=True)


def _purchases(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    tx = tables[Tables.transactions]
    if C.product_id not in tx.columns:
        raise DataError("transactions: column 'product_id' is missing (required to evaluate recommendations)")
    if C.is_return in tx.columns:
        tx = tx[~tx[C.is_return].to_numpy(dtype=bool)]
    return tx[tx[C.product_id].notna()]


def window_start(tables: dict[str, pd.DataFrame], test_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of the last ``test_days`` calendar days of the transactions (the last day included)."""
    if isinstance(test_days, bool) or not isinstance(test_days, (int, np.integer)) or test_days < 1:
        raise DataError(f"test_days must be a positive integer, got {test_days!r}")
    last = pd.Timestamp(tables[Tables.transactions][C.timestamp].max())
    end = last.normalize() + pd.Timedelta(days=1)
    return end - pd.Timedelta(days=int(test_days)), end


def temporal_split(tables: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp) -> TemporalSplit:
    """Test customers and targets of the window ``[start, end)``.

    Raises
    ------
    DataError
        No customer bought both before and inside the window.
    """
    purchases = _purchases(tables)
    time_ = purchases[C.timestamp]
    before = purchases[time_ < start]
    inside = purchases[(time_ >= start) & (time_ < end)]
    customers = np.intersect1d(before[C.customer_id].unique().astype(str), inside[C.customer_id].unique().astype(str))
    if len(customers) == 0:
        raise DataError(f"no customer bought both before {start.date()} and in [{start.date()}, {end.date()}): "
                        f"use a longer history or another --test-days")
    pairs = [C.customer_id, C.product_id]
    target = inside[among(inside[C.customer_id], customers)][pairs].drop_duplicates().astype("str")
    seen = before[among(before[C.customer_id], customers)][pairs].drop_duplicates().astype("str")
    return TemporalSplit(start=start, end=end, customers=customers, target=target.reset_index(drop=True),
                         seen=seen.reset_index(drop=True))


def ranking_metrics(recommendations: pd.DataFrame, target: pd.DataFrame, k_recall: int = 20, k_ndcg: int = 10,
                    k_hit: int = 10) -> dict[str, float]:
    """Mean Recall@k, NDCG@k (binary gains) and HitRate@k over the customers in ``target``.

    Parameters
    ----------
    recommendations
        ``customer_id``, ``rank`` (1 = best), ``product_id``. Customers without rows count as all misses.
    target
        ``customer_id``, ``product_id``: what each customer went on to buy.

    Returns
    -------
    dict
        ``recall@{k_recall}`` = mean of hits in the top k_recall / min(k_recall, |target|); ``ndcg@{k_ndcg}`` =
        mean of DCG / ideal DCG with gain 1 per hit and discount 1 / log2(rank + 1); ``hit@{k_hit}`` = share of
        customers with at least one hit in the top k_hit; ``customers``.
    """
    size = target.groupby(C.customer_id).size()
    if size.empty:
        return {f"recall@{k_recall}": 0.0, f"ndcg@{k_ndcg}": 0.0, f"hit@{k_hit}": 0.0, "customers": 0}
    recs = recommendations[[C.customer_id, "rank", C.product_id]].astype({C.customer_id: "str", C.product_id: "str"})
    recs = recs[among(recs[C.customer_id], size.index)]
    hits = recs.merge(target.assign(_hit=1), how="left", on=[C.customer_id, C.product_id])
    hits = hits[hits["_hit"].notna()]
    rank = hits["rank"].to_numpy()
    by = hits[C.customer_id]
    recall_hits = pd.Series((rank <= k_recall).astype(float)).groupby(by.to_numpy()).sum()
    dcg = pd.Series(np.where(rank <= k_ndcg, 1.0 / np.log2(rank + 1.0), 0.0)).groupby(by.to_numpy()).sum()
    hit = pd.Series((rank <= k_hit).astype(float)).groupby(by.to_numpy()).max()
    discounts = 1.0 / np.log2(np.arange(2, k_ndcg + 2))
    ideal = np.cumsum(discounts)[np.minimum(size.to_numpy(), k_ndcg) - 1]
    recall = recall_hits.reindex(size.index, fill_value=0.0).to_numpy() / np.minimum(size.to_numpy(), k_recall)
    ndcg = dcg.reindex(size.index, fill_value=0.0).to_numpy() / ideal
    hitrate = hit.reindex(size.index, fill_value=0.0).to_numpy()
    return {f"recall@{k_recall}": float(recall.mean()), f"ndcg@{k_ndcg}": float(ndcg.mean()),
            f"hit@{k_hit}": float(hitrate.mean()), "customers": int(len(size))}


def coverage(recommendations: pd.DataFrame, catalogue_size: int, k: int) -> float:
    """Share of the catalogue that appears in at least one customer's top ``k``."""
    top = recommendations[recommendations["rank"] <= k]
    return float(top[C.product_id].nunique() / max(catalogue_size, 1))


def evaluate_model(model: Recommender, split: TemporalSplit, k_recall: int = 20, k_ndcg: int = 10,
                   k_hit: int = 10, new_variant: bool = True) -> dict[str, float]:
    """Metrics of a fitted model on a split (see the module docstring).

    Stock is not filtered: the products table is a snapshot of today, not of the test window.
    """
    k = max(k_recall, k_ndcg, k_hit)
    # Evaluation reads no reasons: working them out is most of a peer's cost per request.
    recs = model.recommend(split.customers, n=k, filters=Filters(exclude_bought=False, in_stock_only=False),
                           explain=False)
    out = ranking_metrics(recs, split.target, k_recall, k_ndcg, k_hit)
    out[f"coverage@{k_recall}"] = coverage(recs, model.catalog_.size, k_recall)
    if new_variant:
        # The two halves of a list, each through the policy's own filter: explore and buy again.
        for suffix, target, filters in (
                ("new", split.new_target, Filters(exclude_bought=True, in_stock_only=False)),
                ("repeat", split.repeat_target, Filters(exclude_bought=False, in_stock_only=False,
                                                        buy_again_share=1.0))):
            customers = target[C.customer_id].unique()
            recs_part = model.recommend(customers, n=k, filters=filters, explain=False)
            part = ranking_metrics(recs_part, target, k_recall, k_ndcg, k_hit)
            out.update({f"{key}_{suffix}": value for key, value in part.items()})
    return out


def _grid(spec: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if not spec:
        return [{}]
    keys = sorted(spec)
    return [dict(zip(keys, values)) for values in itertools.product(*(spec[k] for k in keys))]


def _build(name: str, peer: PeerSpec, config: dict[str, Any], overrides: dict[str, Any]) -> Recommender:
    model_cls = registry().get(peer.model)
    if model_cls is None:
        raise ConfigError(f"recommender config: evaluation.peers.{name}.model: unknown model '{peer.model}'")
    return model_cls.from_config(config, **{**peer.params, **overrides})


def tune_peer(name: str, peer: PeerSpec, config: dict[str, Any], tables: dict[str, pd.DataFrame],
              validation: TemporalSplit, metric: str, progress: Progress | None = None,
              interactions: InteractionConfig | None = None, data: TrainingData | None = None) -> dict[str, Any]:
    """The grid setting with the best ``metric`` on the validation window (fits see only rows before it).

    The grid points share what they can: one training data build (``data``, built here when not given), and one
    fit per setting of the parameters the fit depends on (:func:`fit_groups`), each scored with every value of
    the model's :attr:`Recommender.scoring_params` in the grid (:func:`score_fit`). The first best setting in
    grid order wins, as if every point were fitted on its own (:func:`best_setting`).
    """
    data = data if data is not None else TrainingData.build(tables, validation.start, interactions)
    settings = _grid(peer.grid)
    values: dict[int, float] = {}
    with track(f"{name}: validation grid", len(settings), "settings") as bar:
        for members in fit_groups(peer):
            values.update(score_fit(name, peer, config, data, validation, metric, members, interactions, progress,
                                    bar.advance))
    return best_setting(peer, values)


def fit_groups(peer: PeerSpec) -> list[list[int]]:
    """The peer's grid points (indices in grid order) grouped by the setting of the parameters its fit depends
    on: one fit per group."""
    scoring = registry()[peer.model].scoring_params if peer.model in registry() else frozenset()
    fits: dict[tuple, list[int]] = {}
    for k, setting in enumerate(_grid(peer.grid)):
        fits.setdefault(tuple(sorted((key, repr(v)) for key, v in setting.items() if key not in scoring)), []).append(k)
    return list(fits.values())


def score_fit(name: str, peer: PeerSpec, config: dict[str, Any], data: TrainingData, validation: TemporalSplit,
              metric: str, members: list[int], interactions: InteractionConfig | None = None,
              progress: Progress | None = None, advance: Callable[[], None] | None = None) -> dict[int, float]:
    """One fit of a peer's grid (:func:`fit_groups`) and the validation ``metric`` of each of its ``members``."""
    settings = _grid(peer.grid)
    scoring = registry()[peer.model].scoring_params if peer.model in registry() else frozenset()
    fit_part = {key: v for key, v in settings[members[0]].items() if key not in scoring}
    fitted = _build(name, peer, config, fit_part).fit_data(data, interactions)
    values = {}
    for k in members:
        score_part = {key: v for key, v in settings[k].items() if key in scoring}
        model = fitted.with_params(**score_part) if score_part else fitted
        values[k] = evaluate_model(model, validation, new_variant=False)[metric]
        if progress:
            progress(f"  {name} {settings[k] or '(no grid)'}: validation {metric} {values[k]:.4f}")
        if advance:
            advance()
    return values


def best_setting(peer: PeerSpec, values: dict[int, float]) -> dict[str, Any]:
    """The grid setting with the best value, the first in grid order among equals."""
    settings = _grid(peer.grid)
    return settings[max(range(len(settings)), key=lambda k: (values[k], -k))]


def evaluate_recommenders(tables: dict[str, pd.DataFrame], test_days: int | None = None,
                          config: dict[str, Any] | None = None, models: list[str] | None = None,
                          progress: Progress | None = None,
                          features: FeatureConfig | None = None,
                          test_customers: int | None = None,
                          fits: Any | None = None) -> dict[str, dict[str, Any]]:
    """Fit the project's recommender and every peer on the data before the test window and score them on it.

    Parameters
    ----------
    tables
        Canonical tables.
    test_days
        Length of the test window (default ``evaluation.test_days``).
    config
        Recommender configuration (default configs/recommender.yaml).
    models
        Restrict the run to these names (``clientele`` and/or peer names); default all.
    progress
        Called with one line per step (e.g. a printer to stderr).
    features
        The project's feature settings: every model's interaction matrix and the reranker's customer features
        (default: the features package's defaults).
    test_customers
        Score a random sample of at most this many test customers (seeded: the same sample for the same data);
        every test customer by default. The metrics' ``customers`` counts those scored, ``test_customers``
        all of them.
    fits
        A :class:`models.recommenders.two_stage.GeneratorFits` the project's model leaves its generators at the
        test window's start in, for a later fit on the same data (the training job's fit at the end of the data);
        only when the project's model is fitted in this process.

    The work is spread over ``evaluation.workers`` processes (default: one per core; 1: everything here, one
    model after the other): the two-stage fit, each fit of every peer's grid, each peer's final fit. Every fit
    and score is the one a single process would make: the same metrics and settings.

    Returns
    -------
    dict
        Model name -> metrics (``recall@20``, ``ndcg@10``, ``hit@10``, ``coverage@20``, the ``_new``
        variants, ``fit_seconds``, ``params`` chosen), the project's own model under ``clientele``.
    """
    config = config if config is not None else load_config()
    settings = evaluation_settings(config)
    test_days = int(test_days or settings.test_days)
    k_recall, k_ndcg = settings.k_recall, settings.k_ndcg
    start, end = window_start(tables, test_days)
    split = temporal_split(tables, start, end)
    every_test_customer = len(split.customers)
    if test_customers is not None and every_test_customer > test_customers:
        split = split.sample(test_customers)
    # Everything below sees the test window only through `split`; fits get rows before `start` only.
    train = tables_before(tables, start)
    validation = temporal_split(train, start - pd.Timedelta(days=test_days), start)
    if progress:
        progress(f"test window [{start.date()}, {end.date()}): {len(split.customers):,} customers; "
                 f"validation window from {validation.start.date()}: {len(validation.customers):,} customers")
    names = [OWN] + list(settings.peers) if models is None else models
    for name in names:
        if name != OWN and name not in settings.peers:
            raise DataError(f"unknown peer '{name}' (configured: {', '.join(settings.peers)})")
    run = _Run(train=train, split=split, validation=validation, config=config, features=features,
               test_days=test_days, every_test_customer=every_test_customer, fits=fits)
    results: dict[str, dict[str, Any]] = {}
    workers = min(len(names), settings.workers or os.cpu_count() or 1)
    with track("evaluating recommenders", len(names), "models") as bar:
        if workers == 1:
            for name in names:
                results[name] = _done(name, run.evaluate(name, progress), progress, k_ndcg, k_recall)
                bar.advance()
        else:
            import multiprocessing
            from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

            # Processes of their own (spawned: OpenMP in implicit and LightGBM does not survive a fork), each sent
            # the run once. Tasks are the two-stage fit (the longest, started first), every fit of each peer's
            # grid, then each peer's final fit once its grid is done, so the workers stay busy to the end.
            line = _to_stderr if progress else None
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_start_worker, initargs=(replace(run, fits=None),)) as pool:
                pending: dict[Any, tuple[str, str]] = {}
                values: dict[str, dict[int, float]] = {}
                left: dict[str, int] = {}
                tuning: dict[str, float] = {}
                for name in sorted(names, key=lambda n: n != OWN):
                    if name == OWN:
                        pending[pool.submit(_final_in_worker, name, {}, 0.0)] = ("final", name)
                        continue
                    groups = fit_groups(settings.peers[name])
                    values[name], left[name], tuning[name] = {}, len(groups), 0.0
                    for members in groups:
                        pending[pool.submit(_group_in_worker, name, members, line)] = ("grid", name)
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        kind, name = pending.pop(future)
                        if kind == "final":
                            results[name] = _done(name, future.result(), progress, k_ndcg, k_recall)
                            bar.advance()
                            continue
                        group_values, seconds = future.result()
                        values[name].update(group_values)
                        tuning[name] += seconds
                        left[name] -= 1
                        if not left[name]:
                            chosen = best_setting(settings.peers[name], values[name])
                            pending[pool.submit(_final_in_worker, name, chosen, tuning[name])] = ("final", name)
    return {name: results[name] for name in names}


@dataclass
class _Run:
    """What every model's evaluation reads: the data before the test window, the two windows and the settings
    (sent once to each worker process)."""

    train: dict[str, pd.DataFrame]
    split: TemporalSplit
    validation: TemporalSplit
    config: dict[str, Any]
    features: FeatureConfig | None
    test_days: int
    every_test_customer: int
    # Every peer learns from the same matrices: built once per window (and process), not once per grid point.
    shared: dict[pd.Timestamp, TrainingData] = field(default_factory=dict)
    fits: Any | None = None  # GeneratorFits of the calling process (workers get none)

    @property
    def interactions(self) -> InteractionConfig | None:
        """The interaction matrix the project's features.yaml describes, which every model learns from."""
        return self.features.interactions if self.features is not None else None

    def data_before(self, cutoff: pd.Timestamp) -> TrainingData:
        if cutoff not in self.shared:
            self.shared[cutoff] = TrainingData.build(self.train, cutoff, self.interactions)
        return self.shared[cutoff]

    def evaluate(self, name: str, progress: Progress | None = None) -> dict[str, Any]:
        """One model's metrics on the test window: tuned on the validation window first when it is a peer."""
        if name == OWN:
            return self.final(name, {}, 0.0)
        settings = evaluation_settings(self.config)
        began = time.perf_counter()
        chosen = tune_peer(name, settings.peers[name], self.config, self.train, self.validation, settings.metric,
                           progress, self.interactions, self.data_before(self.validation.start))
        return self.final(name, chosen, time.perf_counter() - began)

    def tune_fit(self, name: str, members: list[int], progress: Progress | None = None
                 ) -> tuple[dict[int, float], float]:
        """One fit of a peer's grid scored on the validation window (:func:`score_fit`), and its seconds."""
        settings = evaluation_settings(self.config)
        began = time.perf_counter()
        values = score_fit(name, settings.peers[name], self.config, self.data_before(self.validation.start),
                           self.validation, settings.metric, members, self.interactions, progress)
        return values, time.perf_counter() - began

    def final(self, name: str, chosen: dict[str, Any], tuning_seconds: float) -> dict[str, Any]:
        """The model with the ``chosen`` setting fitted on every row before the test window, and its metrics."""
        config, settings = self.config, evaluation_settings(self.config)
        start = self.split.start
        began = time.perf_counter()
        if name == OWN:
            model = registry()[OWN].from_config(config, feature_config=self.features, window_days=self.test_days)
            # Lists of the test customers only, without reasons: the rest is never asked for here.
            model.fit(self.train, cutoff=start, interactions=self.interactions, listed=self.split.customers,
                      fits=self.fits)
        else:
            model = _build(name, settings.peers[name], config, chosen)
            model.fit_data(self.data_before(start), self.interactions)
        fit_seconds = time.perf_counter() - began
        metrics = evaluate_model(model, self.split, settings.k_recall, settings.k_ndcg, settings.k_hit)
        metrics["fit_seconds"] = round(fit_seconds, 2)
        metrics["test_customers"] = self.every_test_customer
        # Not a number: the holdout metrics a training run logs are the numbers only. Tuning: the seconds of
        # the grid's fits and scoring (summed over the worker processes that ran them).
        metrics["timing"] = {"tuning": round(tuning_seconds, 2), "fit": round(fit_seconds, 2),
                             "all": round(tuning_seconds + time.perf_counter() - began, 2)}
        metrics["params"] = chosen
        if hasattr(model, "fit_seconds_"):
            metrics["fit_steps"] = dict(model.fit_seconds_)
        return metrics


def _done(name: str, metrics: dict[str, Any], progress: Progress | None, k_ndcg: int, k_recall: int
          ) -> dict[str, Any]:
    if progress:
        progress(f"{name}: ndcg@{k_ndcg} {metrics[f'ndcg@{k_ndcg}']:.4f}, recall@{k_recall} "
                 f"{metrics[f'recall@{k_recall}']:.4f}, fit {metrics['fit_seconds']:.1f} s")
    return metrics


_WORKER_RUN: list[_Run] = []


def _start_worker(run: _Run) -> None:
    """A worker process's copy of the run (its training data built once per window, for every model it gets)."""
    _WORKER_RUN[:] = [run]


def _group_in_worker(name: str, members: list[int], progress: Progress | None
                     ) -> tuple[dict[int, float], float]:
    return _WORKER_RUN[0].tune_fit(name, members, progress)


def _final_in_worker(name: str, chosen: dict[str, Any], tuning_seconds: float) -> dict[str, Any]:
    return _WORKER_RUN[0].final(name, chosen, tuning_seconds)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def best_peer_ratios(results: dict[str, dict[str, Any]], metrics: tuple[str, ...] = ("ndcg@10", "recall@20")
                     ) -> dict[str, dict[str, Any]]:
    """For each metric: the best peer, its value and the project's value divided by it."""
    out = {}
    peers = {k: v for k, v in results.items() if k != OWN}
    if OWN not in results or not peers:
        return out
    for metric in metrics:
        best = max(peers, key=lambda k: peers[k][metric])
        value = peers[best][metric]
        out[metric] = {"best_peer": best, "best_peer_value": value,
                       "ratio": results[OWN][metric] / value if value > 0 else float("inf")}
    return out


TABLE_COLUMNS = ("recall@20", "ndcg@10", "hit@10", "coverage@20", "recall@20_new", "ndcg@10_new", "hit@10_new",
                 "recall@20_repeat", "ndcg@10_repeat", "fit_seconds")


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a Markdown table (the README's format), best peer ratios below it."""
    lines = ["| model | " + " | ".join(TABLE_COLUMNS) + " |", "|---|" + "---:|" * len(TABLE_COLUMNS)]
    for name, metrics in results.items():
        cells = []
        for col in TABLE_COLUMNS:
            value = metrics.get(col)
            cells.append("-" if value is None else (f"{value:.1f}" if col == "fit_seconds" else f"{value:.4f}"))
        label = f"**{name}**" if name == OWN else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    ratios = best_peer_ratios(results)
    if ratios:
        lines.append("")
    for metric, info in ratios.items():
        lines.append(f"{OWN} / best peer on {metric}: {info['ratio']:.3f} (best peer: {info['best_peer']}, "
                     f"{info['best_peer_value']:.4f})")
    return "\n".join(lines)


def evaluate_recommender_cli(data: str | Path, mapping: str | Path | None, test_days: int, as_json: bool) -> dict:
    """``clientele evaluate recommender``: load the data, run :func:`evaluate_recommenders`, print the result.

    Parameters
    ----------
    data
        Transactions file or folder of tables.
    mapping
        Column-mapping YAML, or ``None`` for canonical data.
    test_days
        Length of the test window in days.
    as_json
        Print one JSON object (model name -> metrics, the project's own under ``clientele``) instead of the
        table. Either way stdout carries only that; progress goes to stderr.

    Returns
    -------
    dict
        What was printed, as JSON-able values.
    """
    from features.io import load_dataset
    from features.settings import get_settings

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    from features.config import FeatureConfig

    features = FeatureConfig.load()  # read before the data: a bad file stops here
    dataset = load_dataset(data, mapping, erasures=get_settings().erasures())
    results = json.loads(json.dumps(evaluate_recommenders(dataset.tables, test_days, progress=progress,
                                                          features=features), default=_jsonable))
    print(json.dumps(results) if as_json else format_table(results), flush=True)
    return results


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)
