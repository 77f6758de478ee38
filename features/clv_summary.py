"""Point-in-time frequency / recency / T / monetary-value summary that the CLV models are fitted on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.exceptions import DataError
from features.purchases import returned

FREQUENCY = "frequency"
RECENCY = "recency"
T = "T"
MONETARY_VALUE = "monetary_value"
SUMMARY_COLUMNS = (FREQUENCY, RECENCY, T, MONETARY_VALUE)


def clv_summary(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    time_unit_days: float = 7.0,
    count_zero_amount: bool = False,
) -> pd.DataFrame:
    """Summarise each customer's purchases before ``cutoff`` the way Fader, Hardie & Lee (2005) do.

    Purchases on the same calendar day are merged into one transaction (their amounts summed), as in the
    published CDNOW analyses: the models count purchase occasions, not order lines. Return rows
    (``is_return`` true, or ``amount <= 0``) are not purchases and are left out; they neither start a
    customer's history nor count as a repeat. Only rows strictly before ``cutoff`` are used, so the summary as
    of a cutoff never changes when data on or after it is added, changed or removed.

    Time runs on the same calendar-day grid as the merged purchases: the observation window ends on the
    last day before the cutoff (the day of its last instant: 1997-09-30 for a cutoff of 1997-10-01 00:00), so
    a customer whose last purchase fell on that day has ``recency == T``. This is the convention of Fader &
    Hardie's CDNOW summary (T = 38.86 weeks for a first purchase on 1997-01-01) and of ``lifetimes``; the
    published parameters are only reproduced with it.

    Parameters
    ----------
    transactions
        Canonical transactions table with at least ``customer_id``, ``timestamp`` and ``amount``;
        ``is_return`` is honoured when present (missing values mean "not a return"). Rows without a customer
        id, timestamp or numeric amount cannot be placed and are skipped (validation upstream records them as
        rejects). Other columns are ignored.
    cutoff
        The as-of moment. Rows with ``timestamp >= cutoff`` are ignored. Must be timezone-aware exactly when
        the timestamps are.
    time_unit_days
        Length of one time unit in days (7 = weeks, the unit of the published CDNOW fit).
    count_zero_amount
        Count rows with ``amount == 0`` that are not flagged as returns as purchase occasions worth 0 (free
        items, fully discounted orders). Off by default: such rows are treated like returns. The published
        CDNOW fit counts them (8 of its 2,357 customers bought only $0 items), so its reproduction sets it.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (one row per customer with at least one purchase before the cutoff, sorted),
        with float columns:

        - ``frequency``: number of repeat purchase days (purchase days minus one),
        - ``recency``: time from the first to the last purchase day,
        - ``T``: time from the first purchase day to the last day before ``cutoff``,
        - ``monetary_value``: mean value of the repeat purchase days (the first purchase excluded, as the
          Gamma-Gamma model is defined on repeat transactions); 0 when ``frequency`` is 0.

        Times are in units of ``time_unit_days``. ``attrs["time_unit_days"]`` and ``attrs["cutoff"]`` record
        the set-up. Empty (with these columns) when no purchase precedes the cutoff.

    Raises
    ------
    DataError
        A required column is missing, ``cutoff`` is not a single timestamp, or the timestamps cannot be
        compared with it (timezone-aware against naive).
    ValueError
        ``time_unit_days`` is not a positive finite number.
    """
    if not np.isfinite(time_unit_days) or time_unit_days <= 0:
        raise ValueError(f"time_unit_days must be a positive number of days, got {time_unit_days!r}")
    missing = [c for c in (C.customer_id, C.timestamp, C.amount) if c not in transactions.columns]
    if missing:
        raise DataError(f"transactions: column '{missing[0]}' is missing (needed for the CLV summary)")
    try:
        cutoff = pd.Timestamp(cutoff)
    except (TypeError, ValueError) as exc:
        raise DataError(f"cutoff {cutoff!r} is not a timestamp") from exc
    if pd.isna(cutoff):
        raise DataError("cutoff is missing (NaT)")

    ts = pd.to_datetime(transactions[C.timestamp])
    if (ts.dt.tz is None) != (cutoff.tz is None):
        raise DataError(
            f"transactions: column '{C.timestamp}' is timezone-{'naive' if ts.dt.tz is None else 'aware'} "
            f"but cutoff {cutoff} is not; give both or neither a timezone"
        )
    amount = pd.to_numeric(transactions[C.amount], errors="coerce")
    purchase = (amount >= 0) if count_zero_amount else (amount > 0)
    keep = (ts < cutoff) & purchase & transactions[C.customer_id].notna()
    keep &= ~returned(transactions)

    # Same-day purchases are one purchase occasion (Fader, Hardie & Lee 2005, CDNOW set-up).
    days = pd.DataFrame(
        {C.customer_id: transactions[C.customer_id][keep], "day": ts[keep].dt.normalize(), C.amount: amount[keep]}
    )
    daily = days.groupby([C.customer_id, "day"], sort=True)[C.amount].sum().reset_index()

    unit = pd.Timedelta(days=time_unit_days)
    # The calendar day holding the last instant before the cutoff (see the docstring on this convention).
    last_observed_day = (cutoff - pd.Timedelta(1, unit="ns")).normalize()
    grouped = daily.groupby(C.customer_id, sort=True)
    first_day = grouped["day"].min()
    last_day = grouped["day"].max()
    n_days = grouped["day"].size()
    # Summed directly rather than as total minus first purchase: a large first order would swamp small repeats.
    repeats = daily.loc[daily.duplicated(C.customer_id, keep="first")]
    repeat_total = repeats.groupby(C.customer_id, sort=True)[C.amount].sum().reindex(n_days.index, fill_value=0.0)

    frequency = (n_days - 1).astype(float)
    monetary = (repeat_total / frequency.where(frequency > 0)).fillna(0.0)

    summary = pd.DataFrame(
        {
            FREQUENCY: frequency,
            RECENCY: (last_day - first_day) / unit,
            T: (last_observed_day - first_day) / unit,
            MONETARY_VALUE: monetary.astype(float),
        },
        columns=list(SUMMARY_COLUMNS),
    ).astype(float)
    summary.index.name = C.customer_id
    summary.attrs["time_unit_days"] = float(time_unit_days)
    summary.attrs["cutoff"] = cutoff.isoformat()
    return summary
