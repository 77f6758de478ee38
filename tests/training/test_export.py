"""Serving exports: the text columns of the precomputed lists are those pandas' own conversion gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.recommenders.base import CandidateLists
from features.codes import texts
from training.export import _lists_frame


def _lists_frame_by_pandas(lists, keys, key, item, products):
    """Every row's text converted by pandas, as the export wrote it before."""
    counts = np.diff(lists.offsets)
    rank = np.arange(len(lists.items)) - np.repeat(lists.offsets[:-1], counts) + 1
    return pd.DataFrame({key: pd.Series(np.repeat(keys, counts), dtype="str"), "rank": rank.astype(np.int32),
                         item: pd.Series(products[lists.items], dtype="str"),
                         "score": lists.scores.astype(np.float32),
                         "reason": pd.Series(lists.reasons, dtype="str")})


def test_lists_frame_is_the_frame_of_pandas_conversions(tmp_path):
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 6, 40)
    offsets = np.r_[0, np.cumsum(counts)]
    products = np.array([f"p-{i}" for i in range(30)] + ["商品", ""], dtype=object)
    reasons = rng.choice(np.array(["popular", "bought with 商品", "", None], dtype=object), offsets[-1])
    lists = CandidateLists(offsets=offsets, items=rng.integers(0, len(products), offsets[-1]),
                           scores=rng.normal(size=offsets[-1]).astype(np.float32), reasons=reasons, bought=None)
    keys = np.array([f"customer-{i}" for i in range(len(counts))], dtype=object)
    got = _lists_frame(lists, keys, "customer_id", "product_id", products)
    want = _lists_frame_by_pandas(lists, keys, "customer_id", "product_id", products)
    pd.testing.assert_frame_equal(got, want)
    got.to_parquet(tmp_path / "got.parquet", index=False)
    want.to_parquet(tmp_path / "want.parquet", index=False)
    assert (tmp_path / "got.parquet").read_bytes() == (tmp_path / "want.parquet").read_bytes()


def test_texts_of_ids_that_are_not_text():
    ids = np.array([7, 12, 7], dtype=object)
    pd.testing.assert_series_equal(texts(ids, np.array([2, 0])), pd.Series(["7", "7"], dtype="str"))
