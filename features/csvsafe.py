"""CSV that a spreadsheet opens as data: every CSV the product writes goes through :func:`csv_row` or
:func:`write_csv`.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel and
LibreOffice (CSV injection: ``=HYPERLINK(...)`` in a customer id runs when a CRM user opens the export). As OWASP
recommends, such a cell is prefixed with a single quote and written inside double quotes (inner quotes doubled),
so it reads as text. Numbers are not text: a numeric column is written as numbers, and a text cell holding a
plain number (``-5``, ``+1.5e3``, as in the raw columns of a rejects file) is left as it is.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from features import storage

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet shows it as text: a quote before a formula start, unchanged otherwise.

    Parameters
    ----------
    text
        One cell's text.

    Returns
    -------
    str
        ``"'" + text`` when it starts with one of ``= + - @``, a tab or a carriage return and is not a plain
        number; ``text`` otherwise.
    """
    if text and text[0] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_field(value: Any) -> str:
    """One CSV field: text neutralised and quoted where needed, None and NaN empty, numbers as Python writes
    them.

    Parameters
    ----------
    value
        A cell: text, a number, a bool, None or anything with a ``str``.

    Returns
    -------
    str
        The field as it goes between the commas.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if not isinstance(value, str):
        if value is pd.NA or value is pd.NaT:
            return ""
        return str(value)
    safe = neutralise(value)
    if safe is not value or _NEEDS_QUOTES.search(safe):
        return '"' + safe.replace('"', '""') + '"'
    return safe


def csv_row(values: Iterable[Any]) -> str:
    """One CSV line (with its newline) of ``values``, each through :func:`csv_field`."""
    return ",".join(csv_field(v) for v in values) + "\n"


def _is_text(column: pd.Series) -> bool:
    return column.dtype == object or isinstance(column.dtype, (pd.StringDtype, pd.CategoricalDtype))


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text, header first: numeric and time columns formatted by pandas as ``to_csv`` does,
    text columns through :func:`csv_field`.

    Parameters
    ----------
    frame
        Any frame; its index is not written.

    Returns
    -------
    str
        The CSV, one line per row, ``\\n`` line ends.
    """
    header = csv_row(str(name) for name in frame.columns)
    if frame.empty or not len(frame.columns):
        return header
    parts = []
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        if _is_text(column):
            values = column.astype(object).where(column.notna(), None).tolist()
            parts.append(pd.Series([csv_field(v) for v in values], dtype=object))
        else:
            text = column.to_csv(index=False, header=False, lineterminator="\n")
            # A one-column CSV quotes an empty field ("") so the line is not blank; in a row it is just empty.
            fields = pd.Series(text.split("\n")[:-1], dtype=object)
            parts.append(fields.replace('""', "") if frame.shape[1] > 1 else fields)
    lines = parts[0].str.cat(parts[1:], sep=",") if len(parts) > 1 else parts[0]
    return header + "\n".join(lines.tolist()) + "\n"


def write_csv(frame: pd.DataFrame, path: str | Path) -> str | Path:
    """Write ``frame`` to ``path`` (a local path or an fsspec URL) as :func:`csv_text` (UTF-8); returns it."""
    path = storage.as_location(path)
    storage.write_text(path, csv_text(frame))
    return path
