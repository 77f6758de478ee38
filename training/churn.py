"""Fitting the churn and CLV models as of a cutoff: which training cutoffs, which frames, in which order."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.clv_summary import clv_summary
from features.columns import Columns as C
from features.columns import Tables
from features.config import FeatureConfig
from features.exceptions import ClusterError, DataError
from features.pipeline import CUTOFF, LABEL, training_frames
from features.privacy import ErasureList, drop_erased
from models.churn.config import ChurnConfig
from models.churn.lightgbm import ChurnModel
from models.clv.lifetime_value import LifetimeValueModel
from training.data import customers_only


def training_cutoffs(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, horizon_days: int,
                     config: ChurnConfig) -> list[pd.Timestamp]:
    """Training cutoffs for a model used at ``cutoff``, oldest first.

    Every training label window ends on or before ``cutoff``: a window reaching past it would train on the
    very outcomes being predicted. They step back by ``training.step_days`` while there is
    ``training.min_history_days`` of history before them.
    """
    return cutoffs_between(pd.Timestamp(tables[Tables.transactions][C.timestamp].min()), cutoff, horizon_days,
                           config)


def cutoffs_between(first: pd.Timestamp, cutoff: pd.Timestamp, horizon_days: int,
                    config: ChurnConfig) -> list[pd.Timestamp]:
    """:func:`training_cutoffs` for data starting at ``first``."""
    latest = pd.Timestamp(cutoff) - pd.Timedelta(days=horizon_days)
    cutoffs = [latest - pd.Timedelta(days=config.training.step_days * k) for k in range(config.training.max_cutoffs)]
    cutoffs = [c for c in cutoffs if c >= first + pd.Timedelta(days=config.training.min_history_days)]
    if not cutoffs:
        raise DataError(f"churn: the data starts {first.date()}, too late to learn a {horizon_days}-day churn "
                        f"horizon before {pd.Timestamp(cutoff).date()} (needs at least "
                        f"{horizon_days + config.training.min_history_days} days of history)")
    return sorted(cutoffs)


@dataclass
class ChurnFit:
    """A fitted churn model and the frames it saw."""

    model: ChurnModel
    cutoffs: list[pd.Timestamp]
    calibration_cutoff: pd.Timestamp | None
    train_rows: int
    calibration_rows: int


def fit_churn(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, horizon_days: int, config: ChurnConfig,
              feature_config: FeatureConfig | None = None, frames: pd.DataFrame | None = None) -> ChurnFit:
    """Fit the churn model for use at ``cutoff`` on earlier, fully labelled cutoffs.

    The latest training cutoff is held out for calibration when ``training.calibrate_on_latest`` is set and
    there is more than one cutoff.

    Parameters
    ----------
    frames
        Precomputed :func:`features.pipeline.training_frames` for :func:`training_cutoffs` (to share them
        with peers); computed here otherwise.
    """
    cutoffs = training_cutoffs(tables, cutoff, horizon_days, config)
    if frames is None:
        frames = training_frames(training_sample(tables, len(cutoffs), config), horizon_days, feature_config,
                                 cutoffs=cutoffs)
    calibration_cutoff = cutoffs[-1] if config.training.calibrate_on_latest and len(cutoffs) > 1 else None
    if calibration_cutoff is None:
        train, calibration = frames, None
    else:
        train = frames[frames[CUTOFF] < calibration_cutoff]
        calibration = frames[frames[CUTOFF] == calibration_cutoff]
    model = ChurnModel(**config.model.model_dump()).fit(train, calibration)
    return ChurnFit(model=model, cutoffs=cutoffs, calibration_cutoff=calibration_cutoff, train_rows=len(train),
                    calibration_rows=0 if calibration is None else len(calibration))


def training_sample(tables: dict[str, pd.DataFrame], n_cutoffs: int, config: ChurnConfig) -> dict[str, pd.DataFrame]:
    """The tables, or those of a random share of the customers when every customer at each of ``n_cutoffs``
    would pass ``training.max_rows`` training rows. A customer's features and label are their own rows' alone, so
    a sampled customer's training rows are exactly those of the full data."""
    tx = tables[Tables.transactions]
    customers = np.sort(np.asarray(tx[C.customer_id].dropna().unique(), dtype=object).astype(str))
    limit = max(config.training.max_rows // max(n_cutoffs, 1), 1)
    if len(customers) <= limit:
        return tables
    keep = pd.Index(np.random.default_rng(config.model.random_state).choice(customers, limit, replace=False))
    return customers_only(tables, keep)


def fit_clv(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, config: ChurnConfig,
            summary: pd.DataFrame | None = None) -> LifetimeValueModel:
    """BG/NBD + Gamma-Gamma on purchases before ``cutoff`` (unsupervised: no label window needed); ``summary``:
    their :func:`clv_summary` when already worked out (:func:`summary_of`)."""
    summary = summary_of(tables, cutoff, config) if summary is None else summary
    return LifetimeValueModel(time_unit_days=config.clv.time_unit_days, horizon_months=config.clv.horizon_months,
                              annual_discount_rate=config.clv.annual_discount_rate,
                              penalizer=config.clv.penalizer).fit(summary)


def summary_of(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, config: ChurnConfig) -> pd.DataFrame:
    """The :func:`clv_summary` the CLV model reads as of ``cutoff``: worked out once, passed to every step that
    reads it (fit, each horizon's frame)."""
    return clv_summary(tables[Tables.transactions], cutoff, config.clv.time_unit_days)


def clv_frame(model: LifetimeValueModel, tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp,
              customer_ids: pd.Series | np.ndarray, horizon_days: int, config: ChurnConfig,
              summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """P(alive), expected purchases in the churn horizon, P(no purchase in it), expected spend and CLV per
    customer, in the order of ``customer_ids`` (customers without purchases get the model's new-customer view);
    ``summary``: :func:`summary_of` when already worked out."""
    summary = summary_of(tables, cutoff, config) if summary is None else summary
    # Customers without a purchase yet are scored as brand-new (no repeat purchases, observed for no time).
    summary = summary.reindex(pd.Index(customer_ids, dtype="str")).fillna(0.0)
    values = model.predict(summary)
    t = horizon_days / config.clv.time_unit_days
    bg = model.transaction_model_
    out = pd.DataFrame({
        C.customer_id: np.asarray(customer_ids, dtype=object),
        "p_alive": np.asarray(values["p_alive"], float),
        "expected_purchases_horizon": np.asarray(bg.expected_purchases(t, summary["frequency"].to_numpy(),
                                                                       summary["recency"].to_numpy(),
                                                                       summary["T"].to_numpy()), float),
        "p_no_purchase_horizon": np.asarray(bg.p_no_purchase(t, summary["frequency"].to_numpy(),
                                                             summary["recency"].to_numpy(),
                                                             summary["T"].to_numpy()), float),
        "expected_spend": np.asarray(values["expected_spend"], float),
        "clv": np.asarray(values["clv"], float),
    })
    return out



def bucket_training_frames(tables: dict[str, pd.DataFrame], data_end: pd.Timestamp, cutoffs: list[pd.Timestamp],
                           horizon_days: int, feature_config: FeatureConfig | None,
                           erased: frozenset[str] = frozenset(), pseudonym_key: str = "") -> pd.DataFrame:
    """:func:`features.pipeline.training_frames` of one customer bucket (the Dask path), erased customers
    dropped first."""
    tables, _ = drop_erased(tables, erased, pseudonym_key)
    return training_frames(tables, horizon_days, feature_config, cutoffs=cutoffs)


def fit_churn_on_dask(path: str | Path, mapping: str | Path | None, horizon_days: int, config: ChurnConfig,
                      client: Any, feature_config: FeatureConfig | None = None,
                      cutoff: pd.Timestamp | None = None, erased: frozenset[str] = frozenset(),
                      pseudonym_key: str = "", fit_attempts: int = 3, time_out_minutes: int = 10) -> ChurnFit:
    """Fit the churn model on a Dask cluster: training frames are built per customer bucket on the workers and
    LightGBM trains on them through its own Dask API (``DaskLGBMClassifier``); nothing is collected on the
    client but the calibration cutoff's raw scores.

    Parameters
    ----------
    path, mapping
        A Parquet dataset (a folder of tables or parts).
    client
        A ``dask.distributed`` client (kept open).
    cutoff
        When the model will be used; by default the day after the data ends.
    erased, pseudonym_key
        Pseudonyms of erased customers (see :mod:`features.privacy`): dropped on the workers before any feature.
    fit_attempts, time_out_minutes
        See :func:`fit_lightgbm_on_dask`.
    """
    import dask.dataframe as dd

    from features.dask_engine import run_bucketed
    from models.churn.calibration import Calibrator
    from models.tabular import FrameEncoder

    chosen: dict[str, Any] = {}

    def kwargs(start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
        use_at = cutoff if cutoff is not None else end.normalize() + pd.Timedelta(days=1)
        chosen["cutoffs"] = cutoffs_between(start, use_at, horizon_days, config)
        return {"cutoffs": chosen["cutoffs"], "horizon_days": horizon_days, "feature_config": feature_config,
                "erased": frozenset(erased), "pseudonym_key": pseudonym_key}

    run = run_bucketed(path, mapping, bucket_training_frames, kwargs, client=client, gather=False,
                       erasures=ErasureList(frozenset(erased), pseudonym_key))
    cutoffs = chosen["cutoffs"]
    meta = client.submit(_head, run.results[0]).result()
    frames = dd.from_delayed(run.results, meta=meta, verify_meta=False)
    vocabularies = client.gather(client.map(_text_values, run.results))
    encoder = FrameEncoder().fit(meta)
    encoder.categories = {col: sorted(set().union(*(v.get(col, set()) for v in vocabularies)))
                          for col in encoder.categories}
    model = ChurnModel(**config.model.model_dump())
    calibration_cutoff = cutoffs[-1] if config.training.calibrate_on_latest and len(cutoffs) > 1 else None
    train = frames if calibration_cutoff is None else frames[frames[CUTOFF] < calibration_cutoff]
    X = train.map_partitions(encoder.transform, meta=encoder.transform(meta))
    y = train[LABEL]
    booster = fit_lightgbm_on_dask(client, X, y, {**model._lgb_params(), "n_estimators": model.n_estimators},
                                   encoder.categorical or "auto", fit_attempts, time_out_minutes)
    calibrator = Calibrator(model.calibration)
    calibration_rows = 0
    if calibration_cutoff is not None and model.calibration != "none":
        held_out = frames[frames[CUTOFF] == calibration_cutoff]
        scored = held_out.map_partitions(_raw_scores, booster, encoder, meta=pd.DataFrame(
            {"score": pd.Series([], dtype=float), LABEL: pd.Series([], dtype=float)})).compute()
        calibrator.fit(scored["score"].to_numpy(), scored[LABEL].to_numpy())
        calibration_rows = len(scored)
    rate = float(y.mean().compute())
    fitted = ChurnModel.from_parts(model.get_params(), encoder, booster, calibrator, rate)
    return ChurnFit(model=fitted, cutoffs=cutoffs, calibration_cutoff=calibration_cutoff,
                    train_rows=int(len(train)), calibration_rows=calibration_rows)


def fit_lightgbm_on_dask(client: Any, X: Any, y: Any, params: dict[str, Any], categorical: Any, attempts: int,
                         time_out_minutes: int) -> Any:
    """LightGBM's Dask fit, started again on the workers left when one of its workers is lost.

    LightGBM's distributed training is one collective over every worker holding data, pinned to them: it cannot
    move a lost worker's share elsewhere, and without a watch the client would wait for the lost worker forever.
    So the fit runs beside a watch on the scheduler's workers; when one of them leaves, this attempt's tasks are
    cancelled and the fit starts again (the lost training frames are rebuilt from the graph). The workers left
    wait for the lost one at most ``time_out_minutes`` (LightGBM's ``time_out``) before they are free again.

    Returns
    -------
    lightgbm.Booster

    Raises
    ------
    ClusterError
        A worker was lost in each of ``attempts`` attempts.
    """
    import lightgbm as lgb

    lost: set[str] = set()
    for _ in range(attempts):
        workers, lost = set(client.scheduler_info()["workers"]), set()
        classifier = lgb.DaskLGBMClassifier(client=client, time_out=time_out_minutes, **params)
        outcome: dict[str, Any] = {}

        def fit() -> None:
            try:
                classifier.fit(X, y, categorical_feature=categorical)
                outcome["booster"] = classifier.booster_
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc

        thread = threading.Thread(target=fit, name="lightgbm-dask-fit", daemon=True)
        thread.start()
        while thread.is_alive() and not lost:
            thread.join(WATCH_INTERVAL_S)
            lost = workers - set(client.scheduler_info()["workers"])
        while thread.is_alive():  # a worker was lost: this attempt ends, whatever it submits next
            _cancel_training(client)
            thread.join(WATCH_INTERVAL_S)
        if "booster" in outcome:
            return outcome["booster"]
        lost = lost or workers - set(client.scheduler_info()["workers"])
        if not lost:
            raise outcome["error"]
    raise ClusterError(f"churn: LightGBM's distributed training lost a worker in each of {attempts} attempts (last "
                       f"{', '.join(sorted(lost))}); nothing was registered; `train.yaml` dask.fit_attempts sets "
                       f"the attempts")


# How often the fit's watch asks the scheduler which workers are alive.
WATCH_INTERVAL_S = 0.5


def _cancel_training(client: Any) -> None:
    """Cancel this client's LightGBM training tasks, so the fit waiting on a lost worker's part returns."""
    from distributed import Future

    keys = [k for k in list(client.futures) if str(k).startswith("_train_part-")]  # lightgbm.dask's task names
    client.cancel([Future(k, client) for k in keys], force=True)


def _head(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:0]


def _text_values(frame: pd.DataFrame) -> dict[str, set[str]]:
    """Distinct values of each text column of one bucket (the encoder's vocabulary is their union)."""
    return {col: set(frame[col].dropna().astype("str")) for col in frame.columns
            if not (pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col]))}


def _raw_scores(frame: pd.DataFrame, booster: Any, encoder: Any) -> pd.DataFrame:
    scores = booster.predict(encoder.transform(frame), raw_score=True) if len(frame) else np.zeros(0)
    return pd.DataFrame({"score": scores, LABEL: frame[LABEL].to_numpy(dtype=float)}, index=frame.index)
