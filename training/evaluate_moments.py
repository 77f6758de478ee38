"""Occasion detection against planted truth: recall of the occasions the generator planted and the false-alarm rate
among customers it planted none for (``benchmarks/bench_moments.py``, ``tests/models/test_moments.py``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.columns import Columns as C
from features.columns import Tables
from features.synthetic import Simulation
from models.moments.config import OccasionConfig
from models.moments.detect import occasion_moments

# A found occasion matches a planted one when its date is at most this many days before the planted day (gifts are
# bought before it) or 3 days after.
MATCH_DAYS_BEFORE, MATCH_DAYS_AFTER = 14, 3


def evaluate_occasions(sim: Simulation, cutoff: pd.Timestamp, config: OccasionConfig) -> dict[str, Any]:
    """Occasions found as of ``cutoff`` in ``sim``'s tables against ``sim.occasion_truth``.

    Returns
    -------
    dict
        ``planted``: customers with planted purchases in two years or more before the cutoff; ``recall``: the share
        of them with a found occasion dated for their next planted day (any found occasion when the calendar holds
        no later one); ``others``: customers with two purchase days or more and no planted occasion;
        ``false_alarms``: the share of them with a found occasion; ``found``: the occasions.
    """
    cutoff = pd.Timestamp(cutoff)
    found = occasion_moments(sim.tables, cutoff, config)
    truth = sim.occasion_truth
    years = truth[truth[C.timestamp] < cutoff].groupby(C.customer_id)["occasion_date"].agg(
        lambda d: d.dt.year.nunique())
    upcoming = truth[truth["occasion_date"] >= cutoff].groupby(C.customer_id)["occasion_date"].min()
    planted = pd.DataFrame({"years": years}).join(upcoming)
    planted = planted[planted["years"] >= 2]
    dates = pd.to_datetime(found["date"])
    hits = 0
    for customer, row in planted.iterrows():
        mine = dates[found[C.customer_id] == customer]
        if pd.isna(row["occasion_date"]):
            hits += len(mine) > 0
            continue
        lead = (row["occasion_date"] - mine).dt.days
        hits += bool(((lead >= -MATCH_DAYS_AFTER) & (lead <= MATCH_DAYS_BEFORE)).any())
    tx = sim.tables[Tables.transactions]
    tx = tx[tx[C.timestamp] < cutoff]
    days = tx.groupby(C.customer_id)[C.timestamp].agg(lambda t: t.dt.normalize().nunique())
    others = days[days >= 2].index.difference(truth[C.customer_id].unique())
    alarmed = found.loc[found[C.customer_id].isin(others), C.customer_id].nunique()
    return {"planted": len(planted), "recall": hits / max(len(planted), 1), "others": len(others),
            "false_alarms": alarmed / max(len(others), 1), "found": found}
