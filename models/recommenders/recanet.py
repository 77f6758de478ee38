"""Repeat consumption: which of their own products a customer buys again within the window (ReCANet-style).

Ariannezhad et al., "ReCANet: A Repeat Consumption-Aware Neural Network for Next Basket Recommendation in
Grocery Shopping" (SIGIR 2022): the next basket is mostly products bought before, and whether one comes back is
best read from the pair's own history of repeat gaps. Each (customer, product) pair bought before the cutoff is
described by its latest ``history`` purchase days (how long ago, the gap to the purchase before, the units), read
by a small recurrent network (a GRU, section 3.2's LSTM over repetition features) beside a learned product
embedding and the pair's and the customer's totals (section 3.3's user-item representation, with the customer's
pace in place of a customer embedding, which a retailer's many light customers could not learn). It is trained
on label windows before the cutoff (was the pair bought again in the ``window_days`` after a past cutoff,
from what was known at it) and scores every pair at the cutoff with the probability of a purchase in the next
``window_days``. Products never bought by the customer get no score: it ranks the buy-again half only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from features.i18n import message
from models.recommenders.attribute_tower import _Adam
from models.recommenders.base import Recommender, RecommenderParams, _sparse, _unsparse
from models.recommenders.data import TrainingData

# Per purchase day of the sequence: present, log days before the reference, log gap to the pair's purchase before
# (0 for its first), log units.
_STEP_FEATURES = 4
# Per pair: log purchase days, log days since the first, log share of the customer's purchase days; per customer:
# log purchase days, log days since their latest purchase.
_PAIR_FEATURES = 5


class RecanetParams(RecommenderParams):
    """Hyperparameters of :class:`Recanet`.

    Attributes
    ----------
    window_days
        The horizon: a pair is a positive when bought again within this many days after a (past) cutoff.
    label_windows
        Past label windows trained on, side by side, ending at the cutoff.
    history
        Latest purchase days of a pair read by the network.
    hidden, item_dims
        Size of the recurrent state and of the product embedding.
    epochs, batch_size, learning_rate, weight_decay
        Training (Adam, binary cross-entropy).
    min_steps
        Training steps at least (more epochs on a small log).
    max_pairs
        Training pairs at most (a random share beyond it: the fit's cost does not grow with the log).
    threads
        PyTorch CPU threads.
    """

    window_days: float = Field(30.0, gt=0)
    label_windows: int = Field(2, ge=1)
    history: int = Field(6, ge=1)
    hidden: int = Field(24, ge=1)
    item_dims: int = Field(16, ge=1)
    epochs: int = Field(3, ge=1)
    min_steps: int = Field(100, ge=1)
    batch_size: int = Field(4096, ge=1)
    learning_rate: float = Field(6e-3, gt=0)
    weight_decay: float = Field(1e-6, ge=0)
    max_pairs: int = Field(200_000, ge=1)
    threads: int = Field(1, ge=1)


class Recanet(Recommender):
    """The probability that the customer buys each of their own products again within the window."""

    name = "recanet"
    Params = RecanetParams
    default_reason = message("rec.regular")

    def _fit(self, data: TrainingData) -> None:
        p = self.params
        days = _purchase_days(data)
        rng = np.random.default_rng(p.random_state)
        parts = [_pairs_at(days, p.window_days * k, p.history, p.window_days) for k in range(1, p.label_windows + 1)]
        parts = [part for part in parts if len(part["label"])]
        shape = (data.n_users, data.n_items)
        if not parts:
            self.score_ = sp.csr_matrix(shape, dtype=np.float32)
            return
        train = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
        if len(train["label"]) > p.max_pairs:
            keep = np.sort(rng.choice(len(train["label"]), p.max_pairs, replace=False))
            train = {k: v[keep] for k, v in train.items()}
        now = _pairs_at(days, 0.0, p.history, None)
        probability = self._train_and_score(train, now, data.n_items)
        self.score_ = sp.csr_matrix((probability.astype(np.float32), (now["user"], now["item"])), shape=shape)

    def _train_and_score(self, train: dict[str, np.ndarray], now: dict[str, np.ndarray], n_items: int) -> np.ndarray:
        import torch

        p = self.params
        torch.set_num_threads(p.threads)
        torch.manual_seed(p.random_state)
        rng = np.random.default_rng(p.random_state)
        gru = torch.nn.GRU(_STEP_FEATURES, p.hidden, batch_first=True)
        items = torch.nn.Embedding(n_items, p.item_dims)
        with torch.no_grad():
            items.weight.mul_(0.1)
        head = torch.nn.Sequential(torch.nn.Linear(p.hidden + p.item_dims + _PAIR_FEATURES, 32), torch.nn.ReLU(),
                                   torch.nn.Linear(32, 1))
        params = [*gru.parameters(), *items.parameters(), *head.parameters()]
        opt = _Adam(params, p.learning_rate, p.weight_decay, torch)

        def logits(part: dict[str, np.ndarray], rows: np.ndarray) -> Any:
            _, state = gru(torch.as_tensor(part["steps"][rows]))
            x = torch.cat([state[0], items(torch.as_tensor(part["item"][rows].astype(np.int64))),
                           torch.as_tensor(part["pair"][rows])], dim=1)
            return head(x).squeeze(1)

        label = torch.as_tensor(train["label"].astype(np.float32))
        n = len(train["label"])
        per_epoch = -(-n // p.batch_size)
        # A small log still gets enough steps to learn (one batch an epoch would be a handful of steps).
        epochs = max(p.epochs, -(-p.min_steps // per_epoch))
        for _ in range(epochs):
            order = rng.permutation(n)
            for begin in range(0, n, p.batch_size):
                rows = order[begin:begin + p.batch_size]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits(train, rows),
                                                                            label[torch.as_tensor(rows)])
                opt.step(loss)
        out = np.empty(len(now["user"]), dtype=np.float32)
        with torch.no_grad():
            for begin in range(0, len(out), 8 * p.batch_size):
                rows = np.arange(begin, min(begin + 8 * p.batch_size, len(out)))
                out[rows] = torch.sigmoid(logits(now, rows)).numpy()
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = self.score_[users].toarray()
        scores[scores <= 0] = -np.inf
        return scores

    def _explain(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.where(items >= 0, self.default_reason, "").astype(object)

    def _state(self) -> dict[str, np.ndarray]:
        return _sparse("score", self.score_)

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.score_ = _unsparse("score", state)


def _purchase_days(data: TrainingData) -> pd.DataFrame:
    """One row per (customer, product, calendar day) bought: ``user``, ``item``, ``age`` (days before the cutoff),
    ``units``; sorted by pair, oldest first."""
    log = data.log
    frame = pd.DataFrame({"user": log.user, "item": log.item, "day": log.day, "age": log.age,
                          "units": log.quantity})
    days = frame.groupby(["user", "item", "day"], sort=True).agg(age=("age", "min"), units=("units", "sum"))
    return days.reset_index()


def _pairs_at(days: pd.DataFrame, offset: float, history: int, window: float | None) -> dict[str, np.ndarray]:
    """The network's inputs for every pair bought before a reference point ``offset`` days before the cutoff,
    and (with ``window``) whether the pair was bought again in the ``window`` days after it."""
    seen = days[days["age"] > offset]
    user, item = seen["user"].to_numpy(), seen["item"].to_numpy()
    age = seen["age"].to_numpy(dtype=np.float64) - offset
    key = user.astype(np.int64) << 32 | item.astype(np.int64)
    head = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    pair_of = np.cumsum(head) - 1
    starts = np.flatnonzero(head)
    count = np.diff(np.r_[starts, len(key)])
    n = len(starts)
    # Place of each purchase day counted back from the pair's latest (0), and the gap to the one before it.
    back = np.repeat(starts + count, count) - 1 - np.arange(len(key))
    gap = np.where(head, 0.0, np.r_[0.0, age[:-1] - age[1:]])
    steps = np.zeros((n, history, _STEP_FEATURES), dtype=np.float32)
    kept = back < history
    slot = history - 1 - back[kept]  # the latest last, as the recurrent network reads time forward
    rows = pair_of[kept]
    steps[rows, slot, 0] = 1.0
    steps[rows, slot, 1] = np.log1p(age[kept])
    steps[rows, slot, 2] = np.log1p(gap[kept])
    steps[rows, slot, 3] = np.log1p(np.maximum(seen["units"].to_numpy(dtype=np.float64)[kept], 0.0))
    pair_user = user[starts]
    first_age = age[starts]
    user_days = pd.Series(seen["day"].to_numpy()).groupby(user).nunique()
    user_last = pd.Series(age).groupby(user).min()
    u_days = user_days.reindex(pair_user).to_numpy(dtype=np.float64)
    pair = np.stack([np.log1p(count), np.log1p(first_age), np.log1p(count / np.maximum(u_days, 1.0)),
                     np.log1p(u_days), np.log1p(user_last.reindex(pair_user).to_numpy(dtype=np.float64))],
                    axis=1).astype(np.float32)
    out = {"user": pair_user.astype(np.int64), "item": item[starts].astype(np.int64), "steps": steps, "pair": pair}
    if window is not None:
        later = days[(days["age"] <= offset) & (days["age"] > offset - window)]
        bought = np.unique(later["user"].to_numpy().astype(np.int64) << 32 | later["item"].to_numpy().astype(np.int64))
        out["label"] = np.isin(key[starts], bought).astype(np.float32)
    return out
