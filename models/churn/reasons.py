"""Plain-language churn reasons from LightGBM's per-feature contributions (``pred_contrib``).

Related features (orders in 30, 90, 180 days ...) tell one story, so contributions are summed per family and
the families that push the risk up most become the reasons, worded with the customer's own values.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import numpy as np
import pandas as pd

from features.i18n import message

# Feature name pattern -> family. The first matching pattern wins.
FAMILIES: list[tuple[str, str]] = [
    (r"^(recency_days|overdue_ratio|gap_last_days)$", "recency"),
    (r"^(gap_mean_days|gap_median_days|gap_std_days|purchase_days)$", "rhythm"),
    (r"^(frequency|orders_\d+d)$", "frequency"),
    (r"^(orders_trend_\d+d)$", "order_trend"),
    (r"^(spend_trend_\d+d)$", "spend_trend"),
    (r"^(monetary_total|monetary_avg_order|max_order_value|spend_\d+d)$", "spend"),
    (r"^(tenure_days|days_since_signup)$", "tenure"),
    (r"^(items_per_order|lines_per_order|distinct_products|repeat_product_share|distinct_categories|"
     r"top_category_share)$", "breadth"),
    (r"^share_", "channel"),
    (r"^return_", "returns"),
    (r"^discount_", "discounts"),
    (r"^(complaints_\d+d|days_since_last_complaint)$", "complaints"),
    (r"^(satisfaction_|feedback_count)", "satisfaction"),
    (r"^(events_\d+d|views_\d+d|carts_\d+d|wishlists_\d+d|try_ons_\d+d|days_since_last_event)$", "browsing"),
]


def family_of(feature: str) -> str:
    """The reason family of a feature; profile attributes and anything unknown are their own family."""
    for pattern, family in FAMILIES:
        if re.search(pattern, feature):
            return family
    return feature


def _num(row: pd.Series, col: str) -> float:
    value = row.get(col, np.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _pct_change(trend: float) -> float:
    """(recent - previous) / (recent + previous) back to a percent change of recent on previous."""
    return 200 * trend / (1 - trend) if trend < 1 else math.inf


def _recency(r: pd.Series) -> str:
    rec, gap = _num(r, "recency_days"), _num(r, "gap_median_days")
    if not math.isfinite(rec):
        return message("churn.no_purchase_yet")
    if math.isfinite(gap) and gap > 0 and rec / gap >= 1.5:
        return message("churn.recency_overdue", days=rec, ratio=round(rec / gap, 1))
    return message("churn.recency", days=rec)


def _rhythm(r: pd.Series) -> str:
    gap = _num(r, "gap_median_days")
    return message("churn.rhythm", days=gap) if math.isfinite(gap) else message("churn.rhythm_once")


def _frequency(r: pd.Series) -> str:
    n = _num(r, "frequency")
    return message("churn.frequency_single") if n <= 1 else message("churn.frequency", count=n)


PERIODS = {30: "month", 90: "quarter", 180: "half_year", 365: "year"}


def _trend(kind: str) -> Callable[[pd.Series], str]:
    noun = "spend" if kind == "spend" else "orders"

    def text(r: pd.Series) -> str:
        window = next((w for w in (90, 180, 30, 365) if math.isfinite(_num(r, f"{kind}_trend_{w}d"))), None)
        if window is None:  # no purchase in the last two of any window: the trend is undefined, not flat
            return message(f"churn.{noun}_none")
        change = _pct_change(_num(r, f"{kind}_trend_{window}d"))
        if change <= -99.5:
            return message(f"churn.{noun}_stopped", period=PERIODS[window])
        direction = "down" if change < 0 else "up"
        return message(f"churn.{noun}_{direction}", percent=round(abs(change) / 100, 2), period=PERIODS[window])
    return text


def _complaints(r: pd.Series) -> str:
    for w in (90, 365):
        n = _num(r, f"complaints_{w}d")
        if math.isfinite(n) and n > 0:
            return message("churn.complaint", days=w) if n == 1 else message("churn.complaints", count=n, days=w)
    return message("churn.complaints_any")


def _satisfaction(r: pd.Series) -> str:
    last = _num(r, "satisfaction_last")
    return message("churn.satisfaction", score=last) if math.isfinite(last) else message("churn.satisfaction_none")


def _returns(r: pd.Series) -> str:
    share = _num(r, "return_amount_share")
    return message("churn.returns", percent=round(share, 2)) if math.isfinite(share) else message("churn.returns_any")


def _browsing(r: pd.Series) -> str:
    last = _num(r, "days_since_last_event")
    return message("churn.browsing", days=last) if math.isfinite(last) else message("churn.browsing_none")


TEMPLATES: dict[str, Callable[[pd.Series], str]] = {
    "recency": _recency,
    "rhythm": _rhythm,
    "frequency": _frequency,
    "order_trend": _trend("orders"),
    "spend_trend": _trend("spend"),
    "spend": lambda r: message("churn.spend", amount=_num(r, "monetary_avg_order")),
    "tenure": lambda r: message("churn.tenure", days=_num(r, "tenure_days")),
    "breadth": lambda r: message("churn.breadth", count=_num(r, "distinct_products")),
    "channel": lambda r: message("churn.channel"),
    "returns": _returns,
    "discounts": lambda r: message("churn.discounts", percent=round(_num(r, "discount_line_share"), 2)),
    "complaints": _complaints,
    "satisfaction": _satisfaction,
    "browsing": _browsing,
}


def reason_text(family: str, row: pd.Series) -> str:
    """One short sentence for a family, from the customer's feature values: a message (:mod:`features.i18n`)
    the edges render in the reader's language."""
    if family in TEMPLATES:
        return TEMPLATES[family](row)
    value = row.get(family)
    return message("churn.attribute", feature=family.replace("_", " "), value=_plain(value))


def _plain(value: Any) -> Any:
    """A JSON value for a message parameter."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    return None if value is None or value is pd.NA else str(value)


# A family adding less than this to the log-odds is not worth telling anyone about.
MIN_CONTRIBUTION = 0.01


def top_reasons(contributions: np.ndarray, feature_names: list[str], frame: pd.DataFrame,
                top: int, min_contribution: float = MIN_CONTRIBUTION) -> list[list[dict[str, Any]]]:
    """The ``top`` families raising each customer's churn score most.

    Parameters
    ----------
    contributions
        ``pred_contrib`` output: one column per feature, the bias last.
    feature_names
        Model features in column order.
    frame
        The customers' feature values (same row order), for the wording.

    Returns
    -------
    list of lists of dicts
        Per customer, up to ``top`` reasons ``{"code", "text", "contribution", "features"}``, strongest first;
        only families raising the risk by at least ``min_contribution`` (log-odds) are listed.
    """
    families = [family_of(f) for f in feature_names]
    names = sorted(set(families))
    index = {n: i for i, n in enumerate(names)}
    membership = np.zeros((len(feature_names), len(names)))
    for i, fam in enumerate(families):
        membership[i, index[fam]] = 1.0
    per_family = contributions[:, : len(feature_names)] @ membership
    members = {fam: [f for f, ff in zip(feature_names, families) if ff == fam] for fam in names}
    # Column arrays read once: a pandas row per customer would cost more than the rest (1M customers).
    columns = {col: frame[col].to_numpy() for col in frame.columns}
    # every row's families ordered at once (the same stable order as row by row), read back as Python lists
    order = np.argsort(-per_family, axis=1, kind="stable")[:, :top]
    strongest = np.take_along_axis(per_family, order, axis=1).tolist()
    out = []
    for i, (families_i, values_i) in enumerate(zip(order.tolist(), strongest)):
        reasons = []
        row = _Row(columns, i)
        for j, value in zip(families_i, values_i):
            if value < min_contribution:
                break
            fam = names[j]
            reasons.append({"code": fam, "text": reason_text(fam, row), "contribution": round(value, 4),
                            "features": list(members[fam])})
        out.append(reasons)
    return out


class _Row:
    """One customer's feature values, read as the templates read a row (``row.get(column, default)``)."""

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: dict[str, np.ndarray], i: int):
        self._columns, self._i = columns, i

    def get(self, column: str, default: Any = None) -> Any:
        values = self._columns.get(column)
        return default if values is None else values[self._i]
