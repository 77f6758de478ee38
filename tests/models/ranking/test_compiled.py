"""The reranker's members compiled to machine code score every row exactly as LightGBM does: missing values,
zeros, categories never seen in training, ensembles and threads included; without the compiler LightGBM scores."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models.recommenders import signals  # noqa: F401  (the package first: it imports the ranking module)
from models.ranking import compiled, lambdarank  # noqa: I001
from models.ranking.lambdarank import LambdaRanker, RankerParams

pytest.importorskip("lleaves")


def _candidates(seed: int, groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups of 20 candidates: a signal, a noise column, a category (0-7) and a count; missing values, exact
    zeros and values next to zero throughout."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(groups), 20)
    rows = len(group)
    signal, noise = rng.normal(size=rows), rng.normal(size=rows)
    category = rng.integers(0, 8, rows).astype(np.float64)
    count = rng.poisson(2.0, rows).astype(np.float64)
    features = np.column_stack([signal, noise, category, count]).astype(np.float32)
    features[rng.random(features.shape) < 0.15] = np.nan
    features[rng.random(features.shape) < 0.1] = 0.0
    labels = ((signal + (category % 3 == 0) + 0.5 * rng.random(rows)) > 1.2).astype(np.float32)
    return features, labels, group


def _fitted(ensemble: int = 2) -> tuple[LambdaRanker, np.ndarray]:
    features, labels, groups = _candidates(0, 300)
    params = RankerParams(n_estimators=40, num_leaves=15, min_child_samples=10, ensemble=ensemble)
    ranker = LambdaRanker(params, random_state=0).fit(features, labels, groups,
                                                      ["signal", "noise", "category", "count"],
                                                      categorical=["category"])
    rows, _, _ = _candidates(1, 200)
    # What scoring sees and training did not: categories never seen (and negative), tiny values, huge ones.
    rows[::7, 2] = np.array([-3, 9, 31, 250, -1], dtype=np.float32)[np.arange(len(rows[::7])) % 5]
    rows[1::11, 0] = np.float32(1e-36)
    rows[2::13, 3] = np.float32(1e30)
    return ranker, rows


def _lightgbm_scores(ranker: LambdaRanker, rows: np.ndarray) -> np.ndarray:
    total = ranker.boosters_[0].predict(rows, num_threads=1)
    for booster in ranker.boosters_[1:]:
        total = total + booster.predict(rows, num_threads=1)
    return total / len(ranker.boosters_) if len(ranker.boosters_) > 1 else total


@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_members_score_every_row_as_lightgbm_does_bit_for_bit(monkeypatch, threads):
    ranker, rows = _fitted()
    expected = _lightgbm_scores(ranker, rows)
    monkeypatch.setattr(lambdarank, "COMPILE_AFTER_ROWS", len(rows))
    monkeypatch.setattr(compiled, "_SLICE_ROWS", 512)  # several slices, on both threads
    first = ranker.predict(rows, threads=threads)
    assert ranker._compiled is None  # not yet past the rows LightGBM predicts first
    second = ranker.predict(rows, threads=threads)
    assert isinstance(ranker._compiled, list) and len(ranker._compiled) == 2
    assert first.dtype == second.dtype == np.float64
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)
    one = LambdaRanker.from_text(ranker.to_text(), ranker.params).boosters_[0]
    alone = compiled.CompiledBooster.compile(one)
    np.testing.assert_array_equal(alone.predict(rows), one.predict(rows, num_threads=1))


def test_without_the_compiler_lightgbm_predicts_the_same_scores(monkeypatch):
    ranker, rows = _fitted(ensemble=1)
    monkeypatch.setattr(lambdarank, "COMPILE_AFTER_ROWS", 0)
    monkeypatch.setattr(compiled, "lleaves", None)
    np.testing.assert_array_equal(ranker.predict(rows), _lightgbm_scores(ranker, rows))
    assert ranker._compiled is False  # tried once, not again


def test_a_pickled_ranker_leaves_its_compiled_code_behind_and_compiles_again(monkeypatch):
    ranker, rows = _fitted()
    monkeypatch.setattr(lambdarank, "COMPILE_AFTER_ROWS", 0)
    scores = ranker.predict(rows)
    assert isinstance(ranker._compiled, list)
    copy = pickle.loads(pickle.dumps(ranker))
    assert copy._compiled is None and copy._predicted_rows == 0
    np.testing.assert_array_equal(copy.predict(rows), scores)
    assert isinstance(copy._compiled, list)
