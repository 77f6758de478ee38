"""Churn labels and rolling backtest cutoffs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.columns import Tables
from features.purchases import returned


def data_end(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The last transaction time in the data: how far labels can look."""
    return pd.Timestamp(tables[Tables.transactions][C.timestamp].max())


def label_available(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, horizon_days: int,
                    end: pd.Timestamp | None = None) -> bool:
    """True when the data (ending at ``end``, by default its last transaction) reaches the last day of the
    horizon after ``cutoff``."""
    end = data_end(tables) if end is None else pd.Timestamp(end)
    return end >= pd.Timestamp(cutoff) + pd.Timedelta(days=horizon_days) - pd.Timedelta(days=1)


def churn_labels(tables: dict[str, pd.DataFrame], customer_ids: pd.Index | np.ndarray,
                 cutoff: pd.Timestamp | str, horizon_days: int) -> pd.DataFrame:
    """Whether each customer bought in [cutoff, cutoff + horizon_days).

    Parameters
    ----------
    tables
        Canonical tables (transactions required).
    customer_ids
        The population, e.g. the ``customer_id`` column of :func:`features.customer.customer_features`.
    cutoff
        Start of the horizon (the features' as-of time).
    horizon_days
        Length of the horizon (the preset's ``churn.horizon_days`` by default).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``churned`` (1 = no purchase in the horizon), ``future_orders`` and ``future_spend``
        in the horizon, in the order of ``customer_ids``.
    """
    cutoff = pd.Timestamp(cutoff)
    end = cutoff + pd.Timedelta(days=horizon_days)
    tx = tables[Tables.transactions]
    window = (tx[C.timestamp] >= cutoff) & (tx[C.timestamp] < end)
    window &= ~returned(tx)
    future = tx.loc[window]
    ids = pd.Index(customer_ids).astype("str")
    codes = ids.get_indexer(future[C.customer_id])
    known = codes >= 0
    future, codes = future[known], codes[known]
    if C.order_id in future.columns:
        occasion = future[C.order_id].to_numpy(dtype=object)
    else:
        occasion = future[C.timestamp].dt.floor("D").to_numpy()
    orders = pd.DataFrame({"c": codes, "o": occasion}).drop_duplicates()
    n_orders = np.bincount(orders["c"].to_numpy(), minlength=len(ids)).astype(np.float64)
    spend = np.bincount(codes, weights=future[C.amount].to_numpy(dtype=np.float64), minlength=len(ids))
    return pd.DataFrame({C.customer_id: ids.to_numpy(), "churned": (n_orders == 0).astype(np.int8),
                         "future_orders": n_orders, "future_spend": spend})


def backtest_cutoffs(tables: dict[str, pd.DataFrame], horizon_days: int, n: int, step_days: int,
                     latest: pd.Timestamp | None = None) -> list[pd.Timestamp]:
    """Rolling cutoffs, oldest first, each with a full horizon of data after it.

    The latest is ``latest`` when given, otherwise the day after the last data day minus the horizon, so that
    its horizon ends exactly at the end of the data.
    """
    if latest is None:
        latest = data_end(tables).normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=horizon_days)
    latest = pd.Timestamp(latest)
    return [latest - pd.Timedelta(days=step_days * i) for i in reversed(range(n))]
