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


def _days(x: float) -> str:
    if not math.isfinite(x):  # a customer without the purchase the feature counts from
        return "an unknown number of days"
    return f"{x:.0f} day" + ("" if round(x) == 1 else "s")


def _pct_change(trend: float) -> float:
    """(recent - previous) / (recent + previous) back to a percent change of recent on previous."""
    return 200 * trend / (1 - trend) if trend < 1 else math.inf


def _recency(r: pd.Series) -> str:
    rec, gap = _num(r, "recency_days"), _num(r, "gap_median_days")
    if not math.isfinite(rec):
        return "has not bought yet"
    if math.isfinite(gap) and gap > 0 and rec / gap >= 1.5:
        return f"no purchase for {_days(rec)}, {rec / gap:.1f}x longer than usual"
    return f"no purchase for {_days(rec)}"


def _rhythm(r: pd.Series) -> str:
    gap = _num(r, "gap_median_days")
    return f"buys only every {_days(gap)} or so" if math.isfinite(gap) else "has bought only once"


def _frequency(r: pd.Series) -> str:
    n = _num(r, "frequency")
    return "a single order so far" if n <= 1 else f"only {n:.0f} orders so far"


def _trend(kind: str) -> Callable[[pd.Series], str]:
    def text(r: pd.Series) -> str:
        window = next((w for w in (90, 180, 30, 365) if math.isfinite(_num(r, f"{kind}_trend_{w}d"))), None)
        if window is None:  # no purchase in the last two of any window: the trend is undefined, not flat
            return f"no {'spend' if kind == 'spend' else 'orders'} in the last two years"
        change = _pct_change(_num(r, f"{kind}_trend_{window}d"))
        noun = "spend" if kind == "spend" else "orders"
        period = {30: "month", 90: "quarter", 180: "half-year", 365: "year"}[window]
        if change <= -99.5:
            return f"no {noun} in the last {period}, after some the {period} before"
        direction = "down" if change < 0 else "up"
        return f"{noun} {direction} {abs(change):.0f}% on the previous {period}"
    return text


def _complaints(r: pd.Series) -> str:
    for w in (90, 365):
        n = _num(r, f"complaints_{w}d")
        if math.isfinite(n) and n > 0:
            return f"{n:.0f} complaint{'s' if n > 1 else ''} in {w} days"
    return "complaints on record"


def _satisfaction(r: pd.Series) -> str:
    last = _num(r, "satisfaction_last")
    return f"last satisfaction score {last:.0f}/5" if math.isfinite(last) else "little feedback"


def _returns(r: pd.Series) -> str:
    share = _num(r, "return_amount_share")
    return f"returned {100 * share:.0f}% of what they bought" if math.isfinite(share) else "returns"


def _browsing(r: pd.Series) -> str:
    last = _num(r, "days_since_last_event")
    return f"no browsing for {_days(last)}" if math.isfinite(last) else "no recent browsing"


TEMPLATES: dict[str, Callable[[pd.Series], str]] = {
    "recency": _recency,
    "rhythm": _rhythm,
    "frequency": _frequency,
    "order_trend": _trend("orders"),
    "spend_trend": _trend("spend"),
    "spend": lambda r: f"spends {_num(r, 'monetary_avg_order'):.0f} per order",
    "tenure": lambda r: f"customer for {_days(_num(r, 'tenure_days'))}",
    "breadth": lambda r: f"buys from a narrow range ({_num(r, 'distinct_products'):.0f} products)",
    "channel": lambda r: "shops through one channel only",
    "returns": _returns,
    "discounts": lambda r: f"buys mostly on discount ({100 * _num(r, 'discount_line_share'):.0f}% of lines)",
    "complaints": _complaints,
    "satisfaction": _satisfaction,
    "browsing": _browsing,
}


def reason_text(family: str, row: pd.Series) -> str:
    """One short sentence for a family, from the customer's feature values."""
    if family in TEMPLATES:
        return TEMPLATES[family](row)
    value = row.get(family)
    return f"{family.replace('_', ' ')}: {value}"


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
    out = []
    rows = frame.reset_index(drop=True)
    for i in range(len(per_family)):
        order = np.argsort(-per_family[i], kind="stable")[:top]
        reasons = []
        for j in order:
            if per_family[i, j] < min_contribution:
                break
            fam = names[j]
            reasons.append({"code": fam, "text": reason_text(fam, rows.iloc[i]),
                            "contribution": round(float(per_family[i, j]), 4),
                            "features": [f for f, ff in zip(feature_names, families) if ff == fam]})
        out.append(reasons)
    return out
