"""The reranker's feature matrix: assembled in row blocks, the values of a plain column stack."""

from __future__ import annotations

import numpy as np

from models.ranking import features
from models.ranking.features import stack_columns


def test_stacked_columns_are_those_of_numpy_column_stack(monkeypatch):
    monkeypatch.setattr(features, "_STACK_ROWS", 7)  # several row blocks, the last one short
    rng = np.random.default_rng(0)
    rows = 30
    single = rng.random(rows)  # float64: converted as column_stack converts
    several = rng.random((rows, 3)).astype(np.float32)
    table = rng.random((5, 4)).astype(np.float32)
    index = rng.integers(0, 5, size=rows)
    with_nan = np.where(rng.random(rows) < 0.3, np.nan, rng.random(rows)).astype(np.float32)
    out = stack_columns([single, several, (table, index), with_nan], rows)
    expected = np.column_stack([single, several, table[index], with_nan]).astype(np.float32)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)
    assert stack_columns([several], 0).shape == (0, 3)


def test_candidates_described_for_some_customers_have_the_values_of_a_description_of_everyone():
    import pandas as pd

    from features.synthetic import generate
    from models.ranking.features import CandidateFeatures, PairFeatures
    from models.recommenders.data import TrainingData
    from models.recommenders.two_stage import _vocabularies

    tables = generate("beauty", customers=300, seed=3)
    cutoff = tables["transactions"]["timestamp"].max().normalize() - pd.Timedelta(days=30)
    data = TrainingData.build(tables, cutoff)
    vocab = _vocabularies(tables)
    rng = np.random.default_rng(1)
    some = np.sort(rng.choice(data.n_users, data.n_users // 3, replace=False))
    everyone = CandidateFeatures(data, tables, PairFeatures(), vocab, 30.0)
    described = CandidateFeatures(data, tables, PairFeatures(), vocab, 30.0, customers=some)
    # Random pairs and every pair the customers bought, so the pair history's columns are filled too.
    bought = np.isin(data.log.user, some)
    users = np.concatenate([rng.choice(some, 2_000), data.log.user[bought]])
    items = np.concatenate([rng.integers(0, data.n_items, 2_000), data.log.item[bought]])
    full, names = everyone.build(users, items)
    part, part_names = described.build(users, items)
    assert part_names == names and np.isfinite(full).any(axis=0).sum() > 0.8 * len(names)
    np.testing.assert_array_equal(part, full)
    others = np.setdiff1d(np.arange(data.n_users), some)
    assert np.isnan(described.customer.values[others]).all()
    assert np.isfinite(described.customer.values[some]).mean() > 0.5
