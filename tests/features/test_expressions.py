"""Mapping expressions: the allowed vocabulary evaluates like pandas, everything else is refused."""

import numpy as np
import pandas as pd
import pytest

from features.exceptions import ConfigError
from features.expressions import Expression

FRAME = pd.DataFrame({
    "Quantity": [2.0, -1.0, 3.0, np.nan],
    "UnitPrice": [1.5, 2.0, 0.0, 4.0],
    "InvoiceNo": ["536365", "C536379", "536380", "536381"],
    "Unit Price": [1.0, 1.0, 1.0, 1.0],
    "Store": ["S1", None, "s2", "S3"],
})


def ev(text):
    return Expression(text, "test.yaml: transactions.derive.x").evaluate(FRAME)


def test_arithmetic_matches_pandas():
    pd.testing.assert_series_equal(ev("Quantity * UnitPrice"), FRAME.Quantity * FRAME.UnitPrice)
    pd.testing.assert_series_equal(ev("(Quantity + 1) / 2 - UnitPrice ** 2"),
                                   (FRAME.Quantity + 1) / 2 - FRAME.UnitPrice ** 2)


def test_string_methods_and_boolean_logic():
    assert ev("InvoiceNo.str.startswith('C')").tolist() == [False, True, False, False]
    assert ev("not InvoiceNo.str.startswith('C') and UnitPrice > 0").tolist() == [True, False, False, True]
    assert ev("UnitPrice == 0 or Quantity < 0").tolist() == [False, True, True, False]
    assert ev("InvoiceNo in ['536365', '536381']").tolist() == [True, False, False, True]
    assert ev("InvoiceNo not in ['536365']").tolist() == [False, True, True, True]
    assert ev("0 < UnitPrice <= 2").tolist() == [True, True, False, False]


def test_functions_and_column_names_with_spaces():
    assert ev("col('Unit Price') * 2").tolist() == [2.0] * 4
    assert ev("where(Quantity < 0, 'return', 'sale')").tolist() == ["sale", "return", "sale", "sale"]
    assert ev("coalesce(Quantity, 1)").tolist() == [2.0, -1.0, 3.0, 1.0]
    assert ev("upper(Store)").tolist()[::2] == ["S1", "S2"]
    assert ev("'sale' if UnitPrice > 1 else 'cheap'").tolist() == ["sale", "sale", "cheap", "sale"]


def test_constant_expression_is_a_scalar():
    assert ev("2 * 21") == 42


@pytest.mark.parametrize("text, fragment", [
    ("__import__('os')", "unknown function __import__()"),
    ("__import__('os').system('true')", "method .system()"),
    ("Quantity.to_csv('x')", "method .to_csv()"),
    ("InvoiceNo.__class__", "attribute .__class__"),
    ("[x for x in Quantity]", "ListComp"),
    ("lambda: 1", "Lambda"),
])
def test_unsafe_constructs_are_refused(text, fragment):
    with pytest.raises(ConfigError) as err:
        Expression(text, "m.yaml: transactions.derive.amount")
    assert fragment in str(err.value)
    assert str(err.value).startswith("m.yaml: transactions.derive.amount:")


def test_unknown_column_is_named():
    with pytest.raises(ConfigError, match=r"unknown column 'Qty' in 'Qty \* UnitPrice'"):
        ev("Qty * UnitPrice")


def test_syntax_error_is_one_line():
    with pytest.raises(ConfigError) as err:
        Expression("Quantity *", "m.yaml: transactions.derive.amount")
    assert "\n" not in str(err.value) and "cannot parse" in str(err.value)
