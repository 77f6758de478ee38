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


def test_the_holdout_sees_every_customer_up_to_the_bound_and_the_very_tables(synthetic):
    from training.data import holdout_sample

    customers = synthetic["customers"]["customer_id"].nunique()
    for bound in (None, customers, customers + 1):
        sample = holdout_sample(synthetic, bound)
        assert not sample.sampled and sample.size == sample.customers == customers
        assert sample.apply(synthetic) is synthetic  # nothing copied, nothing changed


def test_past_the_bound_a_keyed_hash_sample_cuts_every_customer_table_and_is_stable(synthetic):
    import pandas as pd

    from training.data import holdout_sample

    bound = 150
    sample = holdout_sample(synthetic, bound, seed=0)
    assert sample.sampled and sample.size == bound and sample.customers == 400
    kept = set(sample.kept)
    cut = sample.apply(synthetic)
    for name, table in synthetic.items():
        if "customer_id" in table.columns and name != "products":
            expected = table[table["customer_id"].isin(kept)]
            assert cut[name].equals(expected), name
            assert len(expected) > 0 or len(table) == 0
        else:
            assert cut[name] is table
    # Drawn from the ids alone: shuffled rows draw the same customers, another seed others.
    shuffled = {name: table.sample(frac=1.0, random_state=5) for name, table in synthetic.items()}
    assert list(holdout_sample(shuffled, bound, seed=0).kept) == list(sample.kept)
    assert set(holdout_sample(synthetic, bound, seed=1).kept) != kept
    # A customer's draw depends on their own id: of a smaller store's sample, those that hash lowest overall.
    fewer = {name: (table[table["customer_id"].isin(sorted(kept | set(list(set(synthetic["customers"]
                                                                                 ["customer_id"]) - kept)[:50])))]
                    if "customer_id" in table.columns and name != "products" else table)
             for name, table in synthetic.items()}
    assert set(holdout_sample(fewer, bound, seed=0).kept) == kept
    info = sample.describe()
    assert info["customers"] == 400 and info["sampled_customers"] == bound and info["sampled"]
    assert not any(str(c) in str(info) for c in kept)  # counts and the rule, no customer id
    assert isinstance(sample.kept, pd.Index)


def test_the_holdout_id_names_the_sample_only_when_one_is_drawn(synthetic):
    from training.data import holdout_sample
    from training.train import holdout_id

    fingerprint = {"sha256": "f" * 64}
    every = holdout_id(fingerprint, 30, 90, 25_000)
    assert holdout_id(fingerprint, 30, 90, 25_000, holdout_sample(synthetic, 400)) == every
    sampled = holdout_id(fingerprint, 30, 90, 25_000, holdout_sample(synthetic, 150))
    assert sampled != every
    assert holdout_id(fingerprint, 30, 90, 25_000, holdout_sample(synthetic, 150, seed=1)) != sampled
    assert holdout_id(fingerprint, 30, 90, 25_000, holdout_sample(synthetic, 151)) != sampled
