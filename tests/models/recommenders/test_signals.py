"""Shared signals of the recommenders: lookups that answer what numpy's general functions answer."""

from __future__ import annotations

import numpy as np

from models.recommenders import signals


def test_in_sorted_is_isin_against_sorted_keys():
    rng = np.random.default_rng(5)
    keys = np.unique(rng.integers(0, 10**12, size=5_000))
    values = np.concatenate([rng.choice(keys, 300), rng.integers(-5, 10**12 + 5, size=3_000), [keys[0], keys[-1]]])
    found = signals.in_sorted(keys, values)
    np.testing.assert_array_equal(found, np.isin(values, keys))
    assert found.sum() >= 302
    assert not signals.in_sorted(np.empty(0, dtype=np.int64), values).any()
