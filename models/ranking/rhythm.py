"""The personal purchase rhythm of (customer, product) pairs, counted in the customer's own baskets.

Days since a product was last bought mean little without the customer's pace: ten days is a whole cycle for a
weekly shopper and nothing for a quarterly one. Counted in baskets (TIFU-KNN's unit of time, Hu et al. SIGIR 2020)
the same pair features read alike for both: how many of the customer's baskets ago they last bought it, in how
many of their latest baskets it was, and how often the customer's own pace says they will buy it within the
window the reranker ranks for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.recommenders import signals
from models.recommenders.data import TrainingData

RECENT_BASKETS = (3, 10)


class RhythmFeatures:
    """Basket-counted rhythm of every (customer, product) pair bought before the cutoff, looked up per pair.

    Parameters
    ----------
    data
        Training data of the cutoff.
    history
        The pairs' purchase history (:func:`signals.pair_history` of ``data.log``).
    horizon_days
        Length of the window the candidates are ranked for.
    """

    def __init__(self, data: TrainingData, history: signals.PairHistory, horizon_days: float):
        log, n_items = data.log, data.n_items
        self._n_items = n_items
        self._horizon = float(horizon_days)
        self._history = history
        baskets = signals.basket_positions(log)
        n_baskets = np.zeros(data.n_users, dtype=np.float64)
        if len(log):
            n_baskets[log.user[baskets.of_line]] = baskets.count[baskets.of_line]
        self._baskets = n_baskets
        # The customer's pace: baskets per day since their first purchase (at least one window, so a customer
        # who started last week is not read as shopping daily).
        first_age = np.zeros(data.n_users, dtype=np.float64)
        np.maximum.at(first_age, log.user, log.age)
        self._pace = n_baskets / np.maximum(first_age, self._horizon)
        once = baskets.first_lines(log, n_items)
        frame = pd.DataFrame({"key": log.user[once].astype(np.int64) * n_items + log.item[once],
                              "back": baskets.back[baskets.of_line[once]]})
        grouped = frame.groupby("key", sort=True)["back"]
        stats = {"since": grouped.min(), "in": grouped.size()}
        for m in RECENT_BASKETS:
            stats[f"last_{m}"] = (frame["back"] < m).groupby(frame["key"]).sum()
        table = pd.DataFrame(stats)
        # Indexed like the history (one row per pair bought, sorted by key).
        table = table.reindex(history.key(n_items))
        self._since = table["since"].to_numpy(dtype=np.float64)
        self._in = table["in"].to_numpy(dtype=np.float64)
        self._last = {m: table[f"last_{m}"].to_numpy(dtype=np.float64) for m in RECENT_BASKETS}

    def build(self, users: np.ndarray, where: np.ndarray, bought: np.ndarray) -> dict[str, np.ndarray]:
        """Rhythm features of pairs.

        Parameters
        ----------
        users
            Customer of each pair.
        where, bought
            Row of each pair in the history, and whether the pair is in it at all (never bought: NaN or 0).

        Returns
        -------
        dict of str to numpy.ndarray
            ``r_baskets_since`` (the customer's baskets since the last one with the product; 0: the newest),
            ``r_last_{m}_share`` (share of the customer's latest m baskets with it), ``r_basket_share`` (of all
            their baskets), ``r_expected_pair`` (purchase days of the pair per day since its first, times the
            window) and ``r_expected_pace`` (the basket share times the baskets the customer's pace puts in the
            window).
        """
        h = self._history

        def pick(values: np.ndarray, missing: float) -> np.ndarray:
            return np.where(bought, values[where], missing) if len(values) else np.full(len(users), missing)

        baskets = self._baskets[users]
        share = pick(self._in, 0.0) / np.maximum(baskets, 1.0)
        out = {"r_baskets_since": pick(self._since, np.nan)}
        for m in RECENT_BASKETS:
            out[f"r_last_{m}_share"] = pick(self._last[m], 0.0) / np.maximum(np.minimum(baskets, m), 1.0)
        out["r_basket_share"] = share
        out["r_expected_pair"] = pick(h.days, 0.0) / np.maximum(pick(h.first_age, np.inf), self._horizon) \
            * self._horizon
        out["r_expected_pace"] = share * self._pace[users] * self._horizon
        return out
