"""Campaigns in synthetic data: randomised holdouts and known heterogeneous effects.

Every exposed customer has a response type, drawn from what the data shows about them at the send (how long since
their last purchase), so a model can learn it:

- ``persuadable``: buys because of the offer (an extra order with probability ``persuade`` when contacted),
- ``sure_thing``: buys in the window whether contacted or not (an extra order with probability ``sure``),
- ``lost_cause``: nothing the campaign sends changes anything,
- ``sleeping_dog``: a contact puts them off (their own purchases in the window are lost when contacted).

Both potential outcomes of every exposed customer are worked out from the same draws, so the truth holds each
customer's outcome with and without contact, and the true effect of any campaign on any subset is known exactly.
Only the outcome of the group the customer was in is written to the transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.columns import Groups, Tables
from features.privacy import marketing_consent
from features.purchases import returned

RESPONSE_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
TRUTH_COLUMNS = ("campaign_id", "customer_id", "group", "response_type", "true_uplift", "purchased_if_contacted",
                 "purchased_if_not", "spend_if_contacted", "spend_if_not")


@dataclass(frozen=True)
class CampaignEffects:
    """How customers respond; a preset's ``generator.campaigns`` section overrides what it names."""

    persuade: float = 0.5  # P(extra order | persuadable, contacted)
    sure: float = 0.6  # P(extra order | sure thing), contacted or not
    # Type shares by days since the last purchase at the send: recent, lapsing, lapsed (RESPONSE_TYPES order).
    recent_days: int = 30
    lapsed_days: int = 120
    recent: tuple[float, ...] = (0.15, 0.55, 0.15, 0.15)
    lapsing: tuple[float, ...] = (0.60, 0.10, 0.20, 0.10)
    lapsed: tuple[float, ...] = (0.25, 0.05, 0.60, 0.10)
    window_days: int = 14
    # Offer strength: persuasion probability multiplier per offer (an offer not listed: 1).
    offers: tuple[tuple[str, float], ...] = (("10_percent_off", 1.0), ("free_gift", 0.6))

    @classmethod
    def of(cls, spec: dict | None) -> "CampaignEffects":
        spec = dict(spec or {})
        for key in ("recent", "lapsing", "lapsed"):
            if key in spec:
                spec[key] = tuple(float(v) for v in spec[key])
        if "offers" in spec:
            spec["offers"] = tuple((str(k), float(v)) for k, v in dict(spec["offers"]).items())
        return cls(**spec)


def _recency_days(tx: pd.DataFrame, ids: np.ndarray, sent: pd.Timestamp) -> np.ndarray:
    before = tx[(tx[C.timestamp] < sent)]
    last = before.groupby(C.customer_id, observed=True)[C.timestamp].max()
    seen = pd.Series(ids).map(last)
    return ((sent - seen).dt.total_seconds() / 86_400).fillna(10_000).to_numpy()


def run_campaign(tables: dict[str, pd.DataFrame], exposures: pd.DataFrame, effects: CampaignEffects,
                 rng: np.random.Generator, dropout_at: pd.Series | None = None
                 ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Apply one campaign's exposures to the data: the tables as they would be observed, and the truth.

    Parameters
    ----------
    tables
        Canonical tables (transactions required); the campaigns table, if any, gains the exposure rows.
    exposures
        One campaign's rows: ``customer_id``, ``campaign_id``, ``sent_at`` (one time), ``group``, ``offer``, ...
    effects
        Response parameters.
    rng
        Randomness of the types and the responses.
    dropout_at
        Per customer id, the first day they can no longer buy (NaT: never): a customer gone before the window
        ends is a lost cause whatever they are sent.

    Returns
    -------
    (tables, truth)
        The new tables, and per exposure ``campaign_id``, ``customer_id``, ``response_type``, ``true_uplift``
        (P(purchase | contacted) - P(purchase | not)), ``purchased_if_contacted``, ``purchased_if_not``,
        ``spend_if_contacted``, ``spend_if_not`` within the response window.
    """
    tx = tables[Tables.transactions]
    ids = exposures[C.customer_id].astype("str").to_numpy()
    previous = tables.get(Tables.campaigns)
    campaigns = exposures.reset_index(drop=True) if previous is None else pd.concat(
        [previous, exposures], ignore_index=True)
    if exposures.empty:  # nobody to contact (a tiny or brand-new dataset)
        return {**tables, Tables.campaigns: campaigns}, pd.DataFrame(columns=TRUTH_COLUMNS)
    sent = pd.Timestamp(exposures[C.sent_at].iloc[0])
    end = sent + pd.Timedelta(days=effects.window_days)
    n = len(ids)
    recency = _recency_days(tx, ids, sent)
    shares = np.where((recency <= effects.recent_days)[:, None], np.asarray(effects.recent)[None, :],
                      np.where((recency <= effects.lapsed_days)[:, None], np.asarray(effects.lapsing)[None, :],
                               np.asarray(effects.lapsed)[None, :]))
    shares = shares / shares.sum(axis=1, keepdims=True)
    kind = (rng.random(n)[:, None] > np.cumsum(shares, axis=1)).sum(axis=1)
    kind = np.minimum(kind, len(RESPONSE_TYPES) - 1)
    if dropout_at is not None:
        gone = pd.Series(ids).map(dropout_at).to_numpy(dtype="datetime64[ns]") <= np.datetime64(end)
        kind = np.where(gone, RESPONSE_TYPES.index("lost_cause"), kind)
    strength = dict(effects.offers)
    offer = exposures[C.offer].astype("str").to_numpy() if C.offer in exposures.columns else np.full(n, "")
    persuade = effects.persuade * np.array([strength.get(o, 1.0) for o in offer])
    u = rng.random(n)
    extra_if_contacted = np.where(kind == 0, u < persuade, np.where(kind == 1, u < effects.sure, False))
    extra_if_not = (kind == 1) & (u < effects.sure)
    lose_own = kind == 3  # sleeping dogs' own purchases in the window are lost when contacted

    window = (tx[C.timestamp] >= sent) & (tx[C.timestamp] < end) & (tx[C.amount] > 0)
    window &= ~returned(tx)
    own = tx.loc[window].groupby(C.customer_id, observed=True)[C.amount].sum()
    own_spend = pd.Series(ids).map(own).fillna(0.0).to_numpy()
    # An extra order repeats the customer's last purchase line before the send (product, quantity, price,
    # channel, store) at a random time in the window.
    bought = tx[(tx[C.timestamp] < sent) & (tx[C.amount] > 0)]
    last_row = pd.Series(np.arange(len(bought)), index=bought.index).groupby(
        bought[C.customer_id].to_numpy()).last()
    template = pd.Series(ids).map(last_row).fillna(0).astype(int).to_numpy()
    basket = bought[C.amount].to_numpy(dtype=float)[template] if len(bought) else np.zeros(n)
    spend_if_not = own_spend + np.where(extra_if_not, basket, 0.0)
    spend_if_contacted = np.where(lose_own, 0.0, own_spend) + np.where(extra_if_contacted, basket, 0.0)
    bought_own = own_spend > 0
    p_own = bought_own.astype(float)
    # Expected effect on P(purchase) given what the customer would do on their own.
    true_uplift = np.select([kind == 0, kind == 3], [persuade * (1 - p_own), -p_own], 0.0)

    contacted = (exposures[C.group].to_numpy() == Groups.treatment)
    # Observed world: drop the contacted sleeping dogs' own window purchases, add the extra orders.
    dogs = set(ids[contacted & lose_own])
    lost = window & tx[C.customer_id].isin(dogs)
    if C.order_id in tx.columns:  # a lost order's later returns go with it
        lost |= tx[C.order_id].isin(set(tx.loc[lost, C.order_id])) & tx[C.customer_id].isin(dogs)
    keep = ~lost
    extra = np.where(contacted, extra_if_contacted, extra_if_not)
    when = sent + pd.to_timedelta(rng.random(n) * effects.window_days * 86_400, unit="s")
    added = bought.iloc[template[extra]].reset_index(drop=True).copy()
    added[C.customer_id] = pd.array(ids[extra], dtype=tx[C.customer_id].dtype)
    when = sent + pd.to_timedelta(rng.random(n) * effects.window_days * 86_400, unit="s")
    added[C.timestamp] = np.asarray(when[extra], dtype="datetime64[ns]")
    if C.is_return in added.columns:
        added[C.is_return] = pd.array([False] * len(added), dtype="boolean")
    if C.order_id in added.columns:
        # New order numbers after the highest one in the data, in the data's own pattern (prefix + digits).
        numbers = pd.to_numeric(tx[C.order_id].str.extract(r"(\d+)$")[0], errors="coerce")
        prefix = str(tx[C.order_id].dropna().iloc[0]).rstrip("0123456789") if tx[C.order_id].notna().any() else ""
        first = int(numbers.max()) + 1 if numbers.notna().any() else 1
        added[C.order_id] = pd.array([f"{prefix}{first + i:07d}" for i in range(len(added))],
                                     dtype=tx[C.order_id].dtype)
    new_tx = pd.concat([tx[keep], added[tx.columns]], ignore_index=True)
    new_tx = new_tx.sort_values(C.timestamp, kind="stable", ignore_index=True)
    out = dict(tables)
    out[Tables.transactions] = new_tx
    out[Tables.campaigns] = campaigns
    truth = pd.DataFrame({
        C.campaign_id: exposures[C.campaign_id].to_numpy(), C.customer_id: ids, C.group: exposures[C.group].to_numpy(),
        "response_type": np.asarray(RESPONSE_TYPES)[kind], "true_uplift": true_uplift,
        "purchased_if_contacted": ((spend_if_contacted > 0)).astype(float),
        "purchased_if_not": (spend_if_not > 0).astype(float),
        "spend_if_contacted": spend_if_contacted, "spend_if_not": spend_if_not,
    })
    return out, truth


def draw_exposures(tables: dict[str, pd.DataFrame], campaign_id: str, sent_at: pd.Timestamp, share: float,
                   holdout: float, offer: str, cost: float, rng: np.random.Generator,
                   channel: str = "email", window_days: int = 14) -> pd.DataFrame:
    """A past campaign: a random ``share`` of the customers who consented to marketing and bought before the send,
    a random ``holdout`` of them held out as control."""
    tx = tables[Tables.transactions]
    buyers = pd.Index(tx.loc[tx[C.timestamp] < sent_at, C.customer_id].unique()).astype("str")
    buyers = buyers[marketing_consent(pd.Series(buyers), tables.get(Tables.customers))]
    chosen = np.sort(rng.choice(np.asarray(buyers), size=int(len(buyers) * share), replace=False))
    group = np.where(rng.random(len(chosen)) < holdout, Groups.control, Groups.treatment)
    return pd.DataFrame({C.customer_id: chosen, C.campaign_id: campaign_id,
                         C.sent_at: pd.Series(pd.Timestamp(sent_at), index=range(len(chosen))).astype("datetime64[ns]"),
                         C.group: group, C.offer: offer, C.channel: channel, C.cost: float(cost),
                         C.response_window_days: float(window_days)})
