"""Feature frames: customer features as of a cutoff, with the churn label when the data reaches far enough."""

from __future__ import annotations

import pandas as pd

from features.columns import Columns as C
from features.config import FeatureConfig
from features.customer import Population, customer_features
from features.labels import backtest_cutoffs, churn_labels, label_available

CUTOFF = "cutoff"
LABEL = "churned"


def feature_frame(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp | str, horizon_days: int | None = None,
                  config: FeatureConfig | None = None, population: Population = "purchasers",
                  with_label: bool | None = None, data_end: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per customer: ``customer_id``, the features as of ``cutoff`` and, when the data reaches
    ``cutoff + horizon_days``, the label columns (``churned``, ``future_orders``, ``future_spend``).

    Parameters
    ----------
    tables
        Canonical tables.
    cutoff
        As-of time; features use data strictly before it.
    horizon_days
        Churn horizon; no label without it.
    config
        Feature settings (``configs/features.yaml``).
    population
        ``purchasers`` or ``all`` (see :func:`features.customer.population_before`).
    with_label
        Force (True) or suppress (False) the label; by default it is added when the data covers the horizon.
    data_end
        Last transaction time of the whole data (when ``tables`` hold only part of the customers).

    Returns
    -------
    pandas.DataFrame
    """
    config = config or FeatureConfig()
    cutoff = pd.Timestamp(cutoff)
    frame = customer_features(tables, cutoff, config.customer, population=population)
    if horizon_days is None:
        return frame
    if with_label is None:
        with_label = label_available(tables, cutoff, horizon_days, data_end)
    if with_label:
        labels = churn_labels(tables, frame[C.customer_id], cutoff, horizon_days)
        frame = pd.concat([frame, labels.drop(columns=C.customer_id)], axis=1)
    return frame


def training_frames(tables: dict[str, pd.DataFrame], horizon_days: int, config: FeatureConfig | None = None,
                    cutoffs: list[pd.Timestamp] | None = None) -> pd.DataFrame:
    """Labelled feature frames over rolling cutoffs (a backtest), stacked, with a ``cutoff`` column.

    Each cutoff has its own population (customers who had bought before it) and a full horizon of data after it.

    Parameters
    ----------
    cutoffs
        Explicit cutoffs; by default ``config.backtest`` rolling cutoffs ending at the last labelled day.
    """
    config = config or FeatureConfig()
    if cutoffs is None:
        cutoffs = backtest_cutoffs(tables, horizon_days, config.backtest.cutoffs, config.backtest.step_days)
    frames = []
    for cutoff in cutoffs:
        frame = feature_frame(tables, cutoff, horizon_days, config, with_label=True)
        frame.insert(1, CUTOFF, pd.Timestamp(cutoff))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def bucket_features(tables: dict[str, pd.DataFrame], data_end: pd.Timestamp, cutoff: pd.Timestamp,
                    horizon_days: int | None, config: FeatureConfig) -> pd.DataFrame:
    """:func:`feature_frame` on one customer bucket of the Dask engine (the label decided on the whole data)."""
    return feature_frame(tables, cutoff, horizon_days, config, data_end=data_end)
