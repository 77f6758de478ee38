"""TIFU-KNN: a customer's time-decayed item frequencies blended with their nearest neighbours'.

Hu et al., "Modeling Personalized Item Frequency Information for Next-basket Recommendation" (SIGIR 2020),
found hard to beat by the 2023 reproducibility studies of next-basket recommendation. Each customer's baskets
(orders), newest last, are cut into groups of ``group_size`` counted back from the newest; inside a group a
basket counts ``within_decay`` times the one after it, and a group ``group_decay`` times the one after it (section
3.2: repeated purchases within a rhythm, and the rhythm drifting). The customer's vector is blended with the mean
vector of their ``neighbours`` most similar customers (cosine): ``alpha`` x own + (1 - alpha) x neighbours'
(section 3.3).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from features.i18n import message
from models.recommenders.base import Recommender, RecommenderParams, _sparse, _unsparse
from models.recommenders.data import TrainingData
from models.recommenders.signals import basket_positions

# Neighbour weights a fitted model keeps from its latest searches (about 32 MB): an evaluation grid's batches of
# validation customers at two values of ``neighbours``.
_KEPT_WEIGHTS = 4_000_000


class TifuParams(RecommenderParams):
    """Hyperparameters of :class:`TifuKNN` (defaults: the paper's).

    Attributes
    ----------
    group_size
        Baskets per group (m).
    within_decay
        Decay between consecutive baskets of a group (r_b).
    group_decay
        Decay between consecutive groups (r_g).
    neighbours
        Nearest customers whose mean vector is blended in (k).
    alpha
        Weight of the customer's own vector against the neighbours' mean.
    neighbour_pool
        Customers the neighbours are drawn from at most: beyond it, a fixed random share of them (drawn at the
        fit), so that scoring one customer costs the same whatever the size of the customer base.
    """

    group_size: int = Field(7, ge=1)
    within_decay: float = Field(0.9, gt=0, le=1)
    group_decay: float = Field(0.7, gt=0, le=1)
    neighbours: int = Field(300, ge=0)
    alpha: float = Field(0.7, ge=0, le=1)
    neighbour_pool: int = Field(30_000, ge=1)


class TifuKNN(Recommender):
    """Personal item frequency with basket and group decay, plus the nearest customers' (TIFU-KNN)."""

    name = "tifu_knn"
    Params = TifuParams
    default_reason = message("rec.shop_like_you")
    scoring_params = frozenset({"neighbours", "alpha"})  # the fit builds the vectors only

    def _fit(self, data: TrainingData) -> None:
        p = self.params
        self.vectors_ = self._vectors(data)
        norms = np.sqrt(np.asarray(self.vectors_.multiply(self.vectors_).sum(axis=1)).ravel())
        self.unit_ = sp.csr_matrix(sp.diags(np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0))
                                   @ self.vectors_).astype(np.float32)
        n_users = self.vectors_.shape[0]
        self.pool_ = np.arange(n_users) if n_users <= p.neighbour_pool else \
            np.sort(np.random.default_rng(p.random_state).choice(n_users, p.neighbour_pool, replace=False))
        self._prepare_pool()

    def _prepare_pool(self) -> None:
        # The pool's unit vectors, transposed once; and the latest neighbour searches, which copies sharing this
        # fit (:meth:`with_params`: another alpha) read instead of searching the same neighbours again.
        self._pool_unit_t = sp.csr_matrix(self.unit_[self.pool_].T)
        self._neighbour_means: OrderedDict = OrderedDict()

    def _vectors(self, data: TrainingData) -> sp.csr_matrix:
        """Each customer's decayed, grouped item-frequency vector (section 3.2)."""
        p = self.params
        log = data.log
        shape = (data.n_users, data.n_items)
        if not len(log):
            return sp.csr_matrix(shape, dtype=np.float32)
        baskets_of = basket_positions(log)
        back, baskets, basket_of_line = baskets_of.back, baskets_of.count, baskets_of.of_line
        group = back // p.group_size  # 0 = the newest group
        inside = back % p.group_size  # 0 = the newest basket of its group
        n_groups = (baskets + p.group_size - 1) // p.group_size
        # The oldest group may be short: its baskets are averaged over its own size.
        group_len = np.where(group == n_groups - 1, baskets - group * p.group_size, p.group_size)
        weight = (p.within_decay ** inside / group_len) * (p.group_decay ** group) / n_groups
        # A product counts once per basket.
        once = baskets_of.first_lines(log, data.n_items)
        rows = log.user[once]
        cols = log.item[once]
        values = weight[basket_of_line[once]]
        return sp.csr_matrix((values.astype(np.float32), (rows, cols)), shape=shape)

    def _score(self, users: np.ndarray) -> np.ndarray:
        p = self.params
        own = self.vectors_[users].toarray()
        scores = p.alpha * own if p.neighbours > 0 else own
        if p.neighbours > 0 and p.alpha < 1:
            mean = self._neighbour_mean(users, p.neighbours)
            if mean is not None:
                scores = scores + (1 - p.alpha) * (mean @ self.vectors_).toarray()
        scores = scores.astype(np.float32)
        scores[scores <= 0] = -np.inf
        return scores

    def _neighbour_mean(self, users: np.ndarray, neighbours: int) -> sp.csr_matrix | None:
        """Per customer, the weights of their ``neighbours`` most similar customers of the pool (cosine > 0, not
        themselves) in the neighbours' mean vector; None when there is nobody else. Worked out for a few customers
        at a time (memory: ``_NEIGHBOUR_CELLS`` similarities, whatever the block).

        The search is most of the scoring's cost and depends on the fit and ``neighbours`` only, so a fitted
        model and its :meth:`with_params` variants keep the latest searches (an evaluation grid scores the same
        customers with every ``alpha``; the two-stage model's generators differ in ``alpha`` only)."""
        users = np.asarray(users, dtype=np.int64)
        key = (neighbours, users.tobytes())
        shared = self._neighbour_means
        kept = shared.get(key)
        if kept is not None:
            return kept
        pool = self.pool_
        k = min(neighbours, len(pool) - 1)
        if k <= 0:
            return None
        step = max(1, _NEIGHBOUR_CELLS // max(len(pool), 1))
        sampled = len(pool) < self.vectors_.shape[0]
        parts = []
        for start in range(0, len(users), step):
            chunk = users[start:start + step]
            product = self.unit_[chunk] @ self._pool_unit_t
            at = np.minimum(np.searchsorted(pool, chunk), len(pool) - 1)
            mine = pool[at] == chunk
            if sampled:
                rows, chosen = _nearest_sparse(sp.csr_matrix(product), np.where(mine, at, -1), k)
            else:
                # Everyone is in the pool: the exact dense search of the paper (ties cut as argpartition cuts them).
                similarity = product.toarray()
                similarity[np.flatnonzero(mine), at[mine]] = -np.inf  # not their own neighbour
                nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
                picked = np.take_along_axis(similarity, nearest, axis=1) > 0
                rows = np.repeat(np.arange(len(chunk)), k)[picked.ravel()]
                chosen = nearest.ravel()[picked.ravel()]
            part = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, pool[chosen])),
                                 shape=(len(chunk), self.vectors_.shape[0]))
            found = np.maximum(np.asarray(part.sum(axis=1)).ravel(), 1.0)
            parts.append(sp.csr_matrix(sp.diags(1.0 / found) @ part))
        mean = sp.csr_matrix(sp.vstack(parts))
        # The oldest go first: memory stays bounded whatever the callers ask (serving threads may share it).
        while shared and sum(m.nnz for m in list(shared.values())) + mean.nnz > _KEPT_WEIGHTS:
            try:
                shared.popitem(last=False)
            except KeyError:
                break
        shared[key] = mean
        return mean

    def _explain(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        own = np.zeros(items.shape, dtype=bool)
        valid = items >= 0
        rows, cols = np.nonzero(valid)
        own[rows, cols] = np.asarray(self.vectors_[users[rows], items[rows, cols]]).ravel() > 0
        out = np.where(own, message("rec.regular"), self.default_reason).astype(object)
        out[~valid] = ""
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {**_sparse("vectors", self.vectors_), **_sparse("unit", self.unit_), "pool": self.pool_}

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.vectors_ = _unsparse("vectors", state)
        self.unit_ = _unsparse("unit", state)
        self.pool_ = state["pool"].astype(np.int64) if "pool" in state else np.arange(self.vectors_.shape[0])
        self._prepare_pool()


def _nearest_sparse(similarity: sp.csr_matrix, own: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each row's ``k`` largest positive entries, the lower column first among equals, leaving
    out column ``own[row]`` (-1: none). Only the stored entries are read: a customer shares products with a few
    thousand of the pool, and the pool's other customers (similarity 0) are never neighbours. Each row's columns
    come out in increasing order, whatever the order they are stored in (a sparse product leaves them unsorted,
    and sorting every stored entry costs more than the search)."""
    rows_out, cols_out = [], []
    indptr, indices, data = similarity.indptr, similarity.indices, similarity.data
    for row in range(similarity.shape[0]):
        cols, values = indices[indptr[row]:indptr[row + 1]], data[indptr[row]:indptr[row + 1]]
        keep = (values > 0) & (cols != own[row])
        cols, values = cols[keep], values[keep]
        if len(values) > k:
            kth = np.partition(values, len(values) - k)[len(values) - k]  # the k-th largest
            above = cols[values > kth]
            tied = np.sort(cols[values == kth])[:k - len(above)]  # equals: the lower columns
            cols = np.concatenate([above, tied])
        cols = np.sort(cols)
        rows_out.append(np.full(len(cols), row, dtype=np.int64))
        cols_out.append(cols.astype(np.int64))
    if not rows_out:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(rows_out), np.concatenate(cols_out)


# Similarities held at once while searching neighbours (float32 and their int64 order: about 100 MB).
_NEIGHBOUR_CELLS = 8_000_000
