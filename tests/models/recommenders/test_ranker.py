"""The reranker learns an ordering from candidate groups, whichever objective it is given."""

from __future__ import annotations

import numpy as np
import pytest

from models.recommenders import signals  # noqa: F401  (the package first: it imports the ranking module)
from models.ranking.lambdarank import LambdaRanker, RankerParams  # noqa: I001


@pytest.mark.parametrize("objective", ["lambdarank", "rank_xendcg", "binary"])
def test_every_objective_ranks_the_bought_candidates_first(objective):
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(300), 20)
    signal = rng.random(len(groups))
    noise = rng.random(len(groups))
    labels = (signal + 0.2 * rng.random(len(groups)) > 0.9).astype(np.float32)
    features = np.column_stack([signal, noise]).astype(np.float32)
    params = RankerParams(objective=objective, n_estimators=40, num_leaves=7, min_child_samples=10)
    ranker = LambdaRanker(params, random_state=0).fit(features, labels, groups, ["signal", "noise"])
    importance = ranker.importance()
    assert importance["signal"] > importance["noise"]
    scores = ranker.predict(features)
    assert np.corrcoef(scores, signal)[0, 1] > 0.5
