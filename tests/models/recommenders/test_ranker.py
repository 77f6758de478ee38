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


def test_a_customer_held_out_for_early_stopping_is_held_out_in_every_label_window(monkeypatch):
    """Overlapping label windows share purchases: a customer with groups on both sides of the early-stopping
    split would let it watch rows the model learned from."""
    import lightgbm as lgb

    rng = np.random.default_rng(1)
    customers, windows, per_group = 200, 3, 10
    window = np.repeat(np.arange(windows), customers * per_group)
    customer = np.tile(np.repeat(np.arange(customers), per_group), windows)
    groups = window * 10**9 + customer
    signal = rng.random(len(groups))
    labels = (signal > 0.8).astype(np.float32)
    seen = []
    original = lgb.Dataset.__init__

    def spy(self, data, label=None, *args, **kwargs):
        seen.append(np.asarray(data)[:, 1].copy())  # the second column carries the customer
        original(self, data, label, *args, **kwargs)

    monkeypatch.setattr(lgb.Dataset, "__init__", spy)
    features = np.column_stack([signal, customer]).astype(np.float32)
    params = RankerParams(n_estimators=5, num_leaves=7, min_child_samples=10)
    LambdaRanker(params, random_state=0).fit(features, labels, groups, ["signal", "customer"],
                                             held_out_by=customer)
    trained, held_out = (set(np.unique(part).tolist()) for part in seen)
    assert held_out and trained and not (trained & held_out)
    seen.clear()
    LambdaRanker(params, random_state=0).fit(features, labels, groups, ["signal", "customer"])
    trained, held_out = (set(np.unique(part).tolist()) for part in seen)
    assert trained & held_out  # without the key each window's group is drawn on its own


def test_an_ensemble_averages_members_of_their_own_seeds_and_saves_them_all():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(300), 20)
    signal, noise = rng.random(len(groups)), rng.random(len(groups))
    labels = (signal + 0.3 * rng.random(len(groups)) > 0.9).astype(np.float32)
    features = np.column_stack([signal, noise]).astype(np.float32)
    params = RankerParams(n_estimators=30, num_leaves=7, min_child_samples=10, ensemble=3)
    ranker = LambdaRanker(params, random_state=0).fit(features, labels, groups, ["signal", "noise"])
    assert len(ranker.boosters_) == 3
    members = [b.predict(features) for b in ranker.boosters_]
    assert not np.allclose(members[0], members[1])  # each member its own seed and held-out customers
    np.testing.assert_allclose(ranker.predict(features), np.mean(members, axis=0), rtol=1e-6)
    single = LambdaRanker(params.model_copy(update={"ensemble": 1}), random_state=0).fit(
        features, labels, groups, ["signal", "noise"])
    np.testing.assert_allclose(single.predict(features), members[0], rtol=1e-6)  # member 0: the model's seed
    loaded = LambdaRanker.from_text(ranker.to_text(), params)
    np.testing.assert_allclose(loaded.predict(features), ranker.predict(features), rtol=1e-6)
    assert LambdaRanker.from_text(single.to_text()).num_trees() == single.num_trees()
    assert ranker.num_trees() == sum(b.num_trees() for b in ranker.boosters_)


def _groups_with_missing_values(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """400 groups of 20 candidates: a signal and a noise column (a tenth of the values missing), labels."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(400), 20)
    signal, noise = rng.random(len(groups)), rng.random(len(groups))
    labels = (signal + 0.3 * rng.random(len(groups)) > 0.9).astype(np.float32)
    features = np.column_stack([signal, noise]).astype(np.float32)
    features[rng.random(features.shape) < 0.1] = np.nan
    return features, labels, groups


def test_members_boosted_side_by_side_are_the_boosters_each_seed_gives_alone(monkeypatch):
    from models.ranking import lambdarank

    features, labels, groups = _groups_with_missing_values(3)
    params = RankerParams(n_estimators=30, num_leaves=7, min_child_samples=10, ensemble=3, threads=1)
    monkeypatch.setattr(lambdarank, "prediction_threads", lambda: 3)  # three cores: every member at once
    ranker = LambdaRanker(params, random_state=4)
    assert ranker._side_by_side() == 3
    ranker.fit(features, labels, groups, ["signal", "noise"], held_out_by=groups % 50)
    for member, booster in enumerate(ranker.boosters_):
        alone = LambdaRanker(params.model_copy(update={"ensemble": 1}), random_state=4 + 1000 * member).fit(
            features, labels, groups, ["signal", "noise"], held_out_by=groups % 50)
        assert booster.model_to_string() == alone.booster_.model_to_string()
    assert LambdaRanker(params.model_copy(update={"threads": 0}))._side_by_side() == 1


def test_members_past_the_memory_budget_boost_one_at_a_time_into_the_same_boosters(monkeypatch):
    from models.ranking import lambdarank

    features, labels, groups = _groups_with_missing_values(5)
    params = RankerParams(n_estimators=30, num_leaves=7, min_child_samples=10, ensemble=3, threads=1)
    monkeypatch.setattr(lambdarank, "prediction_threads", lambda: 3)
    member = len(groups) * (features.shape[1] + lambdarank._MEMBER_ROW_BYTES)
    assert LambdaRanker(params)._side_by_side(features.shape) == 3
    tight = params.model_copy(update={"side_by_side_gb": 2.5 * member / 1e9})
    assert LambdaRanker(tight)._side_by_side(features.shape) == 2
    alone = params.model_copy(update={"side_by_side_gb": 0.0})
    assert LambdaRanker(alone)._side_by_side(features.shape) == 1
    workers = []
    pool = lambdarank.ThreadPoolExecutor

    def recording_pool(max_workers):
        workers.append(max_workers)
        return pool(max_workers=max_workers)

    monkeypatch.setattr(lambdarank, "ThreadPoolExecutor", recording_pool)
    together = LambdaRanker(params, random_state=6).fit(features, labels, groups, ["signal", "noise"])
    one_by_one = LambdaRanker(alone, random_state=6).fit(features, labels, groups, ["signal", "noise"])
    assert workers == [3, 1]
    assert [b.model_to_string() for b in one_by_one.boosters_] == [b.model_to_string() for b in together.boosters_]
