"""The training job's recommender holdout scores a bounded random sample of the test customers."""

from __future__ import annotations

import numpy as np
import pytest

from features.synthetic import generate
from training import evaluate_recommender as ev


@pytest.fixture(scope="module")
def synthetic():
    return generate("beauty", customers=400, seed=11)


def test_a_sample_of_test_customers_keeps_their_targets_only_and_says_how_many_there_were(synthetic):
    start, end = ev.window_start(synthetic, 30)
    split = ev.temporal_split(synthetic, start, end)
    n = len(split.customers) // 3
    sample = split.sample(n)
    assert len(sample.customers) == n and set(sample.customers) <= set(split.customers)
    assert np.array_equal(sample.customers, np.sort(sample.customers))
    assert np.array_equal(split.sample(n).customers, sample.customers)  # seeded: the same draw
    for part in ("target", "seen"):
        whole, kept = getattr(split, part), getattr(sample, part)
        assert set(kept["customer_id"]) <= set(sample.customers)
        expected = whole[whole["customer_id"].isin(sample.customers)].reset_index(drop=True)
        assert kept.equals(expected)

    sampled = ev.evaluate_recommenders(synthetic, 30, models=["popularity"], test_customers=n)["popularity"]
    assert sampled["customers"] == n and sampled["test_customers"] == len(split.customers)
    every = ev.evaluate_recommenders(synthetic, 30, models=["popularity"])["popularity"]
    assert every["customers"] == every["test_customers"] == len(split.customers)
    # The sample's metrics are those of evaluating the sampled split itself.
    model = ev._build("popularity", ev.evaluation_settings(ev.load_config()).peers["popularity"], ev.load_config(),
                      sampled["params"])
    model.fit(ev.tables_before(synthetic, start), cutoff=start)
    direct = ev.evaluate_model(model, sample, 20, 10, 10)
    assert direct["ndcg@10"] == sampled["ndcg@10"] and direct["recall@20"] == sampled["recall@20"]
