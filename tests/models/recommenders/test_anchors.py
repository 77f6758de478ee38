"""The anchor of a reason ("bought together with X"): the history product that relates most to the
recommendation, found in bulk exactly as one customer at a time would find it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.recommenders import base
from models.recommenders.base import Recommender


def one_at_a_time(history: sp.csr_matrix, items: np.ndarray, relation: np.ndarray) -> np.ndarray:
    out = np.full(items.shape, -1, dtype=np.int64)
    for r in range(items.shape[0]):
        row = history[r].toarray().ravel()
        for c, target in enumerate(items[r]):
            if target < 0:
                continue
            value = row * relation[:, target]
            value[target] = 0  # not its own reason
            if value.max() > 0:
                out[r, c] = int(np.argmax(value))  # the lowest index among equals
    return out


@pytest.mark.parametrize("dense_cells", [10**9, 0])  # a dense lookup and the sorted-keys lookup
def test_bulk_anchors_are_the_one_at_a_time_anchors(monkeypatch, dense_cells):
    monkeypatch.setattr(base, "_DENSE_RELATION_CELLS", dense_cells)
    monkeypatch.setattr(base, "_ANCHOR_PAIRS", 50)  # many chunks
    rng = np.random.default_rng(3)
    n_users, n_items = 40, 30
    history = sp.random(n_users, n_items, density=0.15, random_state=4, format="csr", dtype=np.float32)
    history.data = np.round(history.data * 3).astype(np.float32) + 1  # equal weights: ties happen
    relation = sp.random(n_items, n_items, density=0.3, random_state=5, format="csr", dtype=np.float32)
    relation.data = np.round(relation.data * 4).astype(np.float32)  # zeros and ties too
    items = rng.integers(-1, n_items, size=(n_users, 12))
    got = Recommender._anchors(object(), history, items, relation)
    assert (got == one_at_a_time(history, items, relation.toarray())).all()
    assert (got >= 0).sum() > 50 and (got[items < 0] == -1).all()
