"""The interaction matrix: type weights, quantity damping, recency decay, returns, id maps."""

import numpy as np
import pandas as pd
import pytest

from features.config import InteractionConfig
from features.interactions import interaction_matrix, interaction_triplets
from tests.features.fixtures import CUTOFF, tiny_tables


def weights(config):
    t = interaction_triplets(tiny_tables(), CUTOFF, config)
    return {(c, p): w for c, p, w in t.itertuples(index=False)}


def test_weights_by_hand_without_decay():
    w = weights(InteractionConfig(half_life_days=None, quantity_damping="none"))
    # c1 bought p1 twice (1 unit each) and viewed (0.1) and carted (0.5) it before the cutoff.
    assert w[("c1", "p1")] == pytest.approx(2 + 0.1 + 0.5)
    assert w[("c1", "p2")] == pytest.approx(2.0)  # two units, no damping
    assert ("c1", "p3") not in w  # bought and returned: nothing left
    assert ("c2", "p1") not in w  # bought exactly at the cutoff
    assert w[("c2", "p3")] == pytest.approx(0.4)  # a wishlist
    assert ("c3", "p1") not in w


def test_damping_decay_and_returns_are_configurable():
    damped = weights(InteractionConfig(half_life_days=None, quantity_damping="log"))
    assert damped[("c1", "p2")] == pytest.approx(np.log1p(2) / np.log(2))  # damp(1) = 1, damp(2) = 1.58
    keep_returns = weights(InteractionConfig(half_life_days=None, subtract_returns=False))
    assert keep_returns[("c1", "p3")] == pytest.approx(1.0)
    decayed = weights(InteractionConfig(half_life_days=30, quantity_damping="none", weights={"purchase": 1.0}))
    # The Feb 1 12:00 and Jan 1 10:00 purchases of p1, 59.5 and 91 - 10/24 days before the cutoff.
    assert decayed[("c1", "p1")] == pytest.approx(2 ** (-59.5 / 30) + 2 ** (-(91 - 10 / 24) / 30))
    assert ("c1", "p3") not in decayed  # other event types weigh 0 with these weights


def test_matrix_and_id_maps():
    inter = interaction_matrix(tiny_tables(), CUTOFF)
    assert inter.customers.external_ids.tolist() == ["c1", "c2", "c4"]
    assert inter.products.external_ids.tolist() == ["p1", "p2", "p3"]
    dense = inter.matrix.toarray()
    assert dense.shape == (3, 3) and (dense >= 0).all()
    assert dense[0, 0] > dense[0, 1] > 0 and dense[0, 2] == 0
    # A fixed product map (a trained model's) keeps its columns; unknown products are dropped.
    from features.idmap import IdMap
    fixed = interaction_matrix(tiny_tables(), CUTOFF, products=IdMap(["p2", "p9"]))
    assert fixed.shape == (3, 2) and fixed.matrix[:, 1].nnz == 0


def test_empty_before_cutoff():
    t = interaction_triplets(tiny_tables(), pd.Timestamp("2020-01-01"))
    assert len(t) == 0 and list(t.columns) == ["customer_id", "product_id", "weight"]
