"""Tests of the point-in-time CLV summary (frequency, recency, T, monetary value)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.clv_summary import SUMMARY_COLUMNS, clv_summary
from features.exceptions import DataError

CUTOFF = pd.Timestamp("2024-01-29")  # a Monday, 00:00


def _tx(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "is_return"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df["is_return"] = df["is_return"].astype("boolean")
    return df


@pytest.fixture()
def tiny() -> pd.DataFrame:
    return _tx([
        ("A", "2024-01-01 10:00", 10.0, None),
        ("A", "2024-01-01 15:00", 5.0, None),  # same day as the one above: one purchase worth 15
        ("A", "2024-01-08 12:00", 20.0, False),
        ("A", "2024-01-15 09:00", 30.0, None),
        ("A", "2024-01-15 18:00", 30.0, True),  # flagged return: not a purchase
        ("A", "2024-01-29 09:00", 100.0, None),  # on the cutoff day, after 00:00: not seen
        ("B", "2024-01-22 08:00", 40.0, None),
        ("C", "2024-01-10 08:00", -5.0, None),  # refund without the flag
        ("C", "2024-01-12 08:00", 0.0, None),  # free item
        ("D", "2024-02-01 08:00", 70.0, None),  # after the cutoff only
        ("E", "2024-01-05 08:00", 50.0, None),
        ("E", "2024-01-28 23:59", 70.0, None),  # on the last observed day
    ])


def test_hand_computed_summary(tiny: pd.DataFrame) -> None:
    s = clv_summary(tiny, CUTOFF)
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    assert s.index.name == "customer_id"
    assert list(s.index) == ["A", "B", "E"]  # C bought nothing of value, D only after the cutoff
    # The window ends on 2024-01-28, the day holding the last instant before the cutoff.
    expected = pd.DataFrame(
        {
            "frequency": [2.0, 0.0, 1.0],
            "recency": [14 / 7, 0.0, 23 / 7],
            "T": [27 / 7, 6 / 7, 23 / 7],
            "monetary_value": [(20 + 30) / 2, 0.0, 70.0],  # repeat purchases only: A's first day (15) is left out
        },
        index=pd.Index(["A", "B", "E"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(s, expected)
    assert s.attrs["time_unit_days"] == 7.0


def test_cutoff_during_a_day_sees_that_day_up_to_the_cutoff(tiny: pd.DataFrame) -> None:
    s = clv_summary(tiny, pd.Timestamp("2024-01-29 12:00"), time_unit_days=1.0)
    assert s.loc["A"].tolist() == [3.0, 28.0, 28.0, (20 + 30 + 100) / 3]
    assert s.loc["E", "T"] == 24.0


def test_zero_amounts_count_only_when_asked(tiny: pd.DataFrame) -> None:
    s = clv_summary(tiny, CUTOFF, time_unit_days=1.0, count_zero_amount=True)
    assert s.loc["C"].tolist() == [0.0, 0.0, 16.0, 0.0]  # the free item is C's first purchase; the refund is not


def test_no_purchase_before_cutoff_gives_empty_summary(tiny: pd.DataFrame) -> None:
    s = clv_summary(tiny, pd.Timestamp("2023-01-01"))
    assert s.empty and list(s.columns) == list(SUMMARY_COLUMNS)


def test_is_return_column_is_optional(tiny: pd.DataFrame) -> None:
    s = clv_summary(tiny.drop(columns="is_return"), CUTOFF)
    assert s.loc["A", "monetary_value"] == (20 + 60) / 2  # the unflagged return now counts as spend


def test_missing_column_and_timezone_mismatch_are_clear_errors(tiny: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="'amount' is missing"):
        clv_summary(tiny.drop(columns="amount"), CUTOFF)
    aware = tiny.assign(timestamp=tiny["timestamp"].dt.tz_localize("UTC"))
    with pytest.raises(DataError, match="timezone"):
        clv_summary(aware, CUTOFF)
    assert len(clv_summary(aware, CUTOFF.tz_localize("UTC"))) == 3


# ---------------------------------------------------------------------- property: no leakage across the cutoff

_START = pd.Timestamp("2024-01-01")
_PROP_CUTOFF = pd.Timestamp("2024-03-01 06:00")
_HOURS_BEFORE = int((_PROP_CUTOFF - _START) / pd.Timedelta(hours=1))

_row_before = st.tuples(
    st.sampled_from(["a", "b", "c", "d"]),
    st.integers(0, _HOURS_BEFORE - 1),
    st.one_of(st.floats(-50, 500, allow_nan=False), st.just(0.0)),
    st.booleans(),
)
_row_after = st.tuples(
    st.sampled_from(["a", "b", "c", "d", "new"]),
    st.integers(0, 24 * 60),  # hours after the cutoff; 0 is the cutoff itself
    st.floats(-50, 5000, allow_nan=False),
    st.booleans(),
)


def _frame(before: list[tuple], after: list[tuple]) -> pd.DataFrame:
    rows = [(c, _START + pd.Timedelta(hours=h), amt, ret) for c, h, amt, ret in before]
    rows += [(c, _PROP_CUTOFF + pd.Timedelta(hours=h), amt, ret) for c, h, amt, ret in after]
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "is_return"])
    # Fixed dtypes, so that an empty history compares equal to an empty history with future rows.
    dtypes = {"customer_id": "str", "timestamp": "datetime64[ns]", "amount": "float64", "is_return": "bool"}
    return df.astype(dtypes)


@settings(max_examples=50, deadline=None)
@given(
    before=st.lists(_row_before, max_size=30),
    after=st.lists(_row_after, max_size=15),
    changed=st.lists(_row_after, max_size=15),
    seed=st.integers(0, 2**16),
)
def test_rows_on_or_after_cutoff_never_change_the_summary(before, after, changed, seed) -> None:
    reference = clv_summary(_frame(before, []), _PROP_CUTOFF)
    with_future = _frame(before, after)
    # The same history with the future rows replaced by others, in a shuffled order.
    altered = _frame(before, changed).sample(frac=1.0, random_state=seed)
    pd.testing.assert_frame_equal(clv_summary(with_future, _PROP_CUTOFF), reference)
    pd.testing.assert_frame_equal(clv_summary(altered, _PROP_CUTOFF), reference)


@settings(max_examples=50, deadline=None)
@given(before=st.lists(_row_before, max_size=40), unit=st.sampled_from([1.0, 7.0, 30.0]))
def test_summary_invariants(before, unit) -> None:
    s = clv_summary(_frame(before, []), _PROP_CUTOFF, time_unit_days=unit)
    assert np.all(s["frequency"] == np.round(s["frequency"])) and np.all(s["frequency"] >= 0)
    assert np.all((s["recency"] >= 0) & (s["recency"] <= s["T"]))
    assert np.all((s["frequency"] > 0) | (s["recency"] == 0))
    assert np.all((s["monetary_value"] > 0) == (s["frequency"] > 0))  # only positive amounts are purchases
