"""Fitting the churn and CLV models as of a cutoff: which training cutoffs, which frames, in which order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.clv_summary import clv_summary
from features.columns import Columns as C
from features.columns import Tables
from features.config import FeatureConfig
from features.exceptions import DataError
from features.pipeline import CUTOFF, training_frames
from models.churn.config import ChurnConfig
from models.churn.lightgbm import ChurnModel
from models.clv.lifetime_value import LifetimeValueModel


def training_cutoffs(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, horizon_days: int,
                     config: ChurnConfig) -> list[pd.Timestamp]:
    """Training cutoffs for a model used at ``cutoff``, oldest first.

    Every training label window ends on or before ``cutoff``: a window reaching past it would train on the
    very outcomes being predicted. They step back by ``training.step_days`` while there is
    ``training.min_history_days`` of history before them.
    """
    first = pd.Timestamp(tables[Tables.transactions][C.timestamp].min())
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
        frames = training_frames(tables, horizon_days, feature_config, cutoffs=cutoffs)
    calibration_cutoff = cutoffs[-1] if config.training.calibrate_on_latest and len(cutoffs) > 1 else None
    if calibration_cutoff is None:
        train, calibration = frames, None
    else:
        train = frames[frames[CUTOFF] < calibration_cutoff]
        calibration = frames[frames[CUTOFF] == calibration_cutoff]
    model = ChurnModel(**config.model.model_dump()).fit(train, calibration)
    return ChurnFit(model=model, cutoffs=cutoffs, calibration_cutoff=calibration_cutoff, train_rows=len(train),
                    calibration_rows=0 if calibration is None else len(calibration))


def fit_clv(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, config: ChurnConfig) -> LifetimeValueModel:
    """BG/NBD + Gamma-Gamma on purchases before ``cutoff`` (unsupervised: no label window needed)."""
    summary = clv_summary(tables[Tables.transactions], cutoff, config.clv.time_unit_days)
    return LifetimeValueModel(time_unit_days=config.clv.time_unit_days, horizon_months=config.clv.horizon_months,
                              annual_discount_rate=config.clv.annual_discount_rate,
                              penalizer=config.clv.penalizer).fit(summary)


def clv_frame(model: LifetimeValueModel, tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp,
              customer_ids: pd.Series | np.ndarray, horizon_days: int, config: ChurnConfig) -> pd.DataFrame:
    """P(alive), expected purchases in the churn horizon, P(no purchase in it), expected spend and CLV per
    customer, in the order of ``customer_ids`` (customers without purchases get the model's new-customer view)."""
    summary = clv_summary(tables[Tables.transactions], cutoff, config.clv.time_unit_days)
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

