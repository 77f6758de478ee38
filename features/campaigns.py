"""Campaign outcomes: what each contacted or held-out customer did after a campaign was sent.

Outcomes are read from transactions at or after ``sent_at`` (returns excluded), by the same function that labels
churn (:func:`features.labels.churn_labels`), so a campaign's "bought" and the churn model's "did not churn" can
never disagree:

- ``purchased``: any purchase within the response window (the row's ``response_window_days``, else the default),
- ``orders``: orders within the response window,
- ``spend``: money spent within the response window,
- ``retained``: any purchase within the retention horizon (the churn horizon: no churn after the campaign).

Features for the uplift models are the customer features as of ``sent_at`` (data strictly before it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.columns import Groups, Tables
from features.config import FeatureConfig
from features.customer import customer_features
from features.exceptions import DataError
from features.labels import churn_labels, data_end

OUTCOMES = ("purchased", "orders", "spend", "retained")
COMPLETE = "complete"  # the data reaches the end of the row's response window
RETENTION_COMPLETE = "retention_complete"  # ... and of its retention horizon
DEFAULT_WINDOW_DAYS = 14


def campaigns_table(tables: dict[str, pd.DataFrame], campaign_id: str | None = None) -> pd.DataFrame:
    """The exposure rows (all campaigns, or one).

    Raises
    ------
    DataError
        The data has no campaigns table, or no row of ``campaign_id``.
    """
    campaigns = tables.get(Tables.campaigns)
    if campaigns is None or campaigns.empty:
        raise DataError("the data has no campaigns table (customer_id, campaign_id, sent_at, group)")
    if campaign_id is None:
        return campaigns
    rows = campaigns[campaigns[C.campaign_id] == str(campaign_id)]
    if rows.empty:
        known = ", ".join(sorted(campaigns[C.campaign_id].unique())[:10])
        raise DataError(f"campaigns: no campaign '{campaign_id}' (campaigns: {known})")
    return rows


def campaign_outcomes(tables: dict[str, pd.DataFrame], campaigns: pd.DataFrame,
                      window_days: int = DEFAULT_WINDOW_DAYS, retention_days: int = 90) -> pd.DataFrame:
    """Each exposure row with its outcomes (``purchased``, ``orders``, ``spend``, ``retained``) and ``complete``.

    Parameters
    ----------
    tables
        Canonical tables (transactions required).
    campaigns
        Exposure rows: ``customer_id``, ``campaign_id``, ``sent_at``, ``group`` (and optional columns).
    window_days
        Response window of rows without their own ``response_window_days``.
    retention_days
        Horizon of ``retained`` (the churn horizon of the preset).

    Returns
    -------
    pandas.DataFrame
        The rows of ``campaigns`` in their order, with the outcome columns added; ``complete`` is False where the
        data ends before the response window does (outcomes of such rows are still counted, but incomplete), and
        ``retention_complete`` where it ends before the retention horizon does.
    """
    out = campaigns.reset_index(drop=True).copy()
    windows = (out[C.response_window_days].fillna(window_days) if C.response_window_days in out.columns
               else pd.Series(float(window_days), index=out.index)).astype(int)
    for col in OUTCOMES:
        out[col] = 0.0
    end = data_end(tables)
    for (sent, window), rows in out.groupby([C.sent_at, windows], sort=False).groups.items():
        ids = out.loc[rows, C.customer_id].to_numpy()
        response = churn_labels(tables, ids, sent, int(window))
        retention = churn_labels(tables, ids, sent, retention_days)
        out.loc[rows, "purchased"] = 1.0 - response["churned"].to_numpy(dtype=float)
        out.loc[rows, "orders"] = response["future_orders"].to_numpy(dtype=float)
        out.loc[rows, "spend"] = response["future_spend"].to_numpy(dtype=float)
        out.loc[rows, "retained"] = 1.0 - retention["churned"].to_numpy(dtype=float)
    out[COMPLETE] = end >= out[C.sent_at] + pd.to_timedelta(windows, unit="D") - pd.Timedelta(days=1)
    out[RETENTION_COMPLETE] = end >= out[C.sent_at] + pd.Timedelta(days=retention_days - 1)
    return out


def treatment_flag(campaigns: pd.DataFrame) -> np.ndarray:
    """1 for the contacted group, 0 for the held-out control."""
    return (campaigns[C.group] == Groups.treatment).to_numpy(dtype=float)


def campaign_features(tables: dict[str, pd.DataFrame], campaigns: pd.DataFrame,
                      config: FeatureConfig | None = None) -> pd.DataFrame:
    """Customer features of every exposure row as of its ``sent_at`` (one feature computation per send time),
    in the rows' order; numeric and text columns only, ``customer_id`` dropped."""
    config = config or FeatureConfig()
    parts = []
    rows = campaigns.reset_index(drop=True)
    for sent, index in rows.groupby(C.sent_at, sort=False).groups.items():
        ids = pd.Index(rows.loc[index, C.customer_id]).astype("str")
        frame = customer_features(tables, sent, config.customer, customer_ids=ids)
        frame.index = index
        parts.append(frame.drop(columns=C.customer_id))
    features = pd.concat(parts).sort_index()
    keep = [c for c in features.columns if not pd.api.types.is_datetime64_any_dtype(features[c])]
    features = features[keep]
    # Counts and amounts as float64 whatever the rows hold (a few customers' sums can come out as integers), so
    # the models see one schema.
    whole = [c for c in keep if pd.api.types.is_integer_dtype(features[c]) and not pd.api.types.is_bool_dtype(
        features[c])]
    return features.astype({c: "float64" for c in whole}) if whole else features
