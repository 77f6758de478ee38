"""Returns are left out the same way by every step that counts purchases, also when the flag has gaps."""

import numpy as np
import pandas as pd
import pytest

from features.clv_summary import clv_summary
from features.columns import Columns as C
from features.columns import Tables
from features.customer import population_before
from features.interactions import interaction_triplets
from features.labels import churn_labels
from features.purchases import returned, without_returns


def _transactions(flag_dtype: str) -> pd.DataFrame:
    # a: one purchase and its return on a later day; b: only a return; c: a purchase whose flag is missing
    flags = pd.array([False, True, True, pd.NA], dtype="boolean")
    return pd.DataFrame({
        C.customer_id: ["a", "a", "b", "c"],
        C.product_id: ["p", "p", "q", "r"],
        C.timestamp: pd.to_datetime(["2024-01-02", "2024-01-05", "2024-01-03", "2024-01-04"]),
        C.amount: [10.0, -10.0, -5.0, 7.0],
        C.quantity: [1.0, -1.0, -1.0, 1.0],
        C.is_return: flags if flag_dtype == "boolean" else flags.fillna(False).astype(bool),
    })


@pytest.mark.parametrize("flag_dtype", ["boolean", "bool"])
def test_the_flag_is_read_in_one_way(flag_dtype):
    tx = _transactions(flag_dtype)
    assert returned(tx).tolist() == [False, True, True, False]
    assert without_returns(tx)[C.customer_id].tolist() == ["a", "c"]
    no_flag = tx.drop(columns=C.is_return)
    assert not returned(no_flag).any() and without_returns(no_flag) is no_flag


@pytest.mark.parametrize("flag_dtype", ["boolean", "bool"])
def test_every_step_counts_the_same_purchases(flag_dtype):
    tx = _transactions(flag_dtype)
    tables = {Tables.transactions: tx}
    cutoff = pd.Timestamp("2024-01-10")
    assert population_before(tables, cutoff).tolist() == ["a", "c"]  # b only returned something
    assert sorted(clv_summary(tx, cutoff).index.astype(str)) == ["a", "c"]
    labels = churn_labels(tables, pd.Index(["a", "b", "c"]), pd.Timestamp("2024-01-01"), 30)
    assert labels["churned"].tolist() == [0, 1, 0]
    triplets = interaction_triplets(tables, cutoff)
    strength = dict(zip(triplets[C.customer_id].astype(str), triplets.iloc[:, -1].astype(float)))
    assert strength.get("c", 0.0) > 0 and strength.get("b", 0.0) <= 0
    assert np.isfinite(list(strength.values())).all()
