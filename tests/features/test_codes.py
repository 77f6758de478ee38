"""Id-column helpers: membership of text ids is exactly pandas' ``isin``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.codes import among, texts


def test_among_is_isin_for_text_ids_missing_values_and_numbers():
    rng = np.random.default_rng(2)
    ids = pd.Series(rng.choice(np.array(["a", "b", "顾客", "", "c-1", None], dtype=object), 500), dtype="str")
    for allowed in (pd.Index(["a", "顾客", "zz"], dtype="str"), ["", "c-1"], np.array([], dtype=object),
                    pd.Index(["b"], dtype=object)):
        np.testing.assert_array_equal(among(ids, allowed), ids.isin(allowed).to_numpy(dtype=bool))
    objects = pd.Series(np.array(["a", "b", None], dtype=object), dtype=object)
    np.testing.assert_array_equal(among(objects, ["b"]), [False, True, False])
    numbers = pd.Series([1, 2, 3])
    np.testing.assert_array_equal(among(numbers, [2, 3]), [False, True, True])


def test_texts_are_pandas_text_of_the_gathered_values():
    names = np.array(["x", "y", "名字"], dtype=object)
    codes = np.array([2, -1, 0, 0, 1, -1])
    want = pd.Series(np.where(codes >= 0, names[np.maximum(codes, 0)], None)).astype("str").where(codes >= 0)
    pd.testing.assert_series_equal(texts(names, codes), want)
    pd.testing.assert_series_equal(texts(np.array([], dtype=object), np.array([-1, -1])),
                                   pd.Series([None, None], dtype="str"))
    pd.testing.assert_series_equal(texts(np.array([7, 12], dtype=object), np.array([1, 0])),
                                   pd.Series(["12", "7"], dtype="str"))
