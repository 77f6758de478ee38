"""Repeat purchase with each customer's own repurchase timing per product ("due in about N days")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from features.i18n import message
from models.recommenders import signals
from models.recommenders.base import Recommender, RecommenderParams, _sparse, _unsparse
from models.recommenders.data import TrainingData


# Added to "days since" before storing it sparse, so a purchase just before the cutoff (0 days) is not dropped.
_KEEP_NONZERO_DAYS = np.float32(1e-3)


class RepeatParams(RecommenderParams):
    """Hyperparameters of :class:`RepeatPurchase`.

    Attributes
    ----------
    half_life_days
        Each past purchase day counts ``2 ** (-age / half_life_days)``: frequent and recent first.
    horizon_days
        A product whose next purchase is due (last purchase + the customer's usual gap) within this many days
        gets the timing boost.
    timing_weight
        Multiplier ``1 + timing_weight`` of a product due within the horizon.
    lapsed_cycles
        A product not bought for this many of the customer's usual gaps is no longer due (they moved on).
    """

    half_life_days: float = 90.0
    horizon_days: float = 30.0
    timing_weight: float = 1.0
    lapsed_cycles: float = 3.0


class RepeatPurchase(Recommender):
    """What the customer bought before, ranked by decayed frequency and boosted when it is due again."""

    name = "repeat"
    Params = RepeatParams

    def _fit(self, data: TrainingData) -> None:
        p = self.params
        history = signals.pair_history(data.log, data.n_items)
        score = history.decayed(data.log, data.n_items, p.half_life_days)
        due = self._due_in(history.gap, history.last_age)
        boost = np.where(np.isfinite(due) & (due <= p.horizon_days)
                         & (history.last_age <= p.lapsed_cycles * np.nan_to_num(history.gap, nan=0.0)),
                         1.0 + p.timing_weight, 1.0)
        shape = (data.n_users, data.n_items)
        self.score_ = sp.csr_matrix(((score * boost).astype(np.float32), (history.user, history.item)), shape=shape)
        # Gap, days since the last purchase and purchase days, for the reasons ("you buy this about every 30
        # days"); stored sparse, so a value that could be 0 is kept as a tiny positive number.
        self.gap_ = sp.csr_matrix((np.nan_to_num(history.gap, nan=-1.0).astype(np.float32),
                                   (history.user, history.item)), shape=shape)
        self.since_ = sp.csr_matrix((history.last_age.astype(np.float32) + _KEEP_NONZERO_DAYS,
                                     (history.user, history.item)), shape=shape)
        self.days_ = sp.csr_matrix((history.days.astype(np.float32), (history.user, history.item)), shape=shape)

    @staticmethod
    def _due_in(gap: np.ndarray, since: np.ndarray) -> np.ndarray:
        """Days until the next purchase is due (negative: overdue); NaN without a usual gap."""
        return gap - since

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = self.score_[users].toarray()
        scores[scores <= 0] = -np.inf
        return scores

    def _explain(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.full(items.shape, "", dtype=object)
        for r, u in enumerate(users):
            valid = items[r] >= 0
            if u < 0 or not valid.any():
                continue
            targets = items[r][valid]
            gap = self.gap_[u, targets].toarray().ravel()
            gap[gap < 0] = np.nan
            since = self.since_[u, targets].toarray().ravel()
            days = self.days_[u, targets].toarray().ravel()
            out[r, np.flatnonzero(valid)] = timing_reasons(gap, since, days)
        return out

    def _score_history(self, rows: sp.csr_matrix) -> np.ndarray:
        scores = rows.toarray()
        scores[scores <= 0] = -np.inf
        return scores

    def _explain_history(self, rows: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return np.where(items >= 0, message("rec.recent_activity"), "").astype(object)

    def _state(self) -> dict[str, np.ndarray]:
        return {**_sparse("score", self.score_), **_sparse("gap", self.gap_), **_sparse("since", self.since_),
                **_sparse("days", self.days_)}

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.score_, self.gap_, self.since_, self.days_ = (_unsparse(k, state) for k in ("score", "gap", "since",
                                                                                           "days"))


# Two purchase days make one gap, not a habit: "you buy this every N days" needs at least this many.
CYCLE_MIN_PURCHASE_DAYS = 3


def timing_reasons(gap: np.ndarray, since: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The repurchase reason of many (customer, product) pairs at once, one text built per distinct wording.

    Parameters
    ----------
    gap
        The customer's mean days between purchase days of the product (NaN: bought on one day only).
    since
        Days since they last bought it.
    days
        Distinct days on which they bought it.

    Returns
    -------
    numpy.ndarray of str (object)
    """
    gap = np.asarray(gap, dtype=np.float64)
    since = np.asarray(since, dtype=np.float64)
    days = np.asarray(days, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        cycle = (days >= CYCLE_MIN_PURCHASE_DAYS) & np.isfinite(gap) & (gap > 0)
        due = np.where(cycle, gap - since, 0.0)
    every = np.where(cycle, np.maximum(np.rint(np.where(cycle, gap, 1.0)), 1), 0).astype(np.int64)
    # Wording: 0 due in N days, 1 due now, 2 bought N times, 3 bought before.
    kind = np.where(cycle, np.where(due >= 1, 0, 1), np.where(days >= 2, 2, 3)).astype(np.int64)
    count = np.where(kind == 0, np.rint(np.where(kind == 0, due, 0.0)),
                     np.where(kind == 2, np.nan_to_num(days), 0)).astype(np.int64)
    keys = np.stack([kind, every, count], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    texts = np.array([_timing_text(int(k), int(e), int(c)) for k, e, c in unique], dtype=object)
    return texts[np.asarray(inverse).ravel()] if len(keys) else np.empty(0, dtype=object)


def _timing_text(kind: int, every: int, count: int) -> str:
    if kind == 0:
        return message("rec.due_in", every_days=every, due_days=count)
    if kind == 1:
        return message("rec.due_now", every_days=every)
    if kind == 2:
        return message("rec.bought_times", count=count)
    return message("rec.bought_before")
