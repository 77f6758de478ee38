"""CSV injection (issue 11): every CSV the product writes opens in a spreadsheet as data, never as formulas."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from features.csvsafe import csv_row, csv_text, neutralise
from features.dask_engine import _write_rejects
from features.io import load_dataset

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR"]


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_starts_are_quoted_text(value):
    field = csv_row([value]).rstrip("\n")
    assert field == '"' + ("'" + value).replace('"', '""') + '"'
    assert cells(field + "\n") == [["'" + value]]


@pytest.mark.parametrize("value", ["C0001", "-5", "+1.5", "-1e3", ".5", "", "a=b", "x-1"])
def test_plain_text_and_numbers_stay_as_they_are(value):
    assert neutralise(value) == value


def test_numeric_columns_stay_numbers_and_text_columns_are_neutralised():
    frame = pd.DataFrame({"customer_id": HOSTILE, "amount": [-1.5, -2.0, np.nan, 3.0, -4.25, 0.0],
                          "orders": [-1, 2, 3, 4, 5, 6], "segment": pd.Categorical(["-x", "ok", None, "a", "b", "c"]),
                          "when": pd.to_datetime(["2024-01-01"] * 6)})
    text = csv_text(frame)
    rows = cells(text)
    assert rows[0] == ["customer_id", "amount", "orders", "segment", "when"]
    assert [r[0] for r in rows[1:]] == ["'" + v for v in HOSTILE]
    assert [r[1] for r in rows[1:]] == ["-1.5", "-2.0", "", "3.0", "-4.25", "0.0"]
    assert [r[2] for r in rows[1:]] == ["-1", "2", "3", "4", "5", "6"]
    assert [r[3] for r in rows[1:]] == ["'-x", "ok", "", "a", "b", "c"]
    # Read back by pandas: the same numbers, the text with its quote mark.
    back = pd.read_csv(io.StringIO(text))
    assert back["amount"].tolist()[:2] == [-1.5, -2.0] and back["orders"].tolist() == frame["orders"].tolist()
    # Apart from neutralised cells, the text is what pandas writes.
    plain = frame.assign(customer_id=[f"C{i}" for i in range(6)], segment="s")
    assert csv_text(plain) == plain.to_csv(index=False, lineterminator="\n")


def test_rejects_files_neutralise_raw_ids(tmp_path):
    data = tmp_path / "transactions.csv"
    lines = ["customer_id,timestamp,amount"]
    for value in ("=cmd|'/C calc'!A0", "@evil", "+evil", "-evil", "\tevil"):
        lines += [f'"{value}",2024-01-01,-3', f'"{value}",2024-01-01,-3']  # the repeat is rejected
    data.write_text("\n".join(lines) + "\n")
    written = load_dataset(data).write_rejects(tmp_path / "rejects")
    text = (tmp_path / "rejects" / "transactions.rejects.csv").read_text()
    assert written["transactions"].endswith("transactions.rejects.csv")
    for line in text.splitlines()[1:]:
        assert '"\'' in line, line
    ids = pd.read_csv(tmp_path / "rejects" / "transactions.rejects.csv")["customer_id"].tolist()
    assert sorted(ids) == sorted(["'=cmd|'/C calc'!A0", "'@evil", "'+evil", "'-evil", "'\tevil"])


def test_dask_rejects_files_neutralise_raw_ids(tmp_path):
    rejects = pd.DataFrame({"reason": ["duplicate_row"] * 2, "row": [3, 4], "customer_id": ["=1+1", "C1"],
                            "amount": [-3.0, 2.0]})
    _write_rejects(rejects, tmp_path, "transactions", "part-0")
    rows = cells((tmp_path / "transactions.rejects.part-0.csv").read_text())
    assert rows[1] == ["duplicate_row", "3", "'=1+1", "-3.0"] and rows[2] == ["duplicate_row", "4", "C1", "2.0"]
