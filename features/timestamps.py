"""Timestamp text read with one format per column: the mapping's, or one inferred from the column's values.

Reading each value on its own (pandas' ``format="mixed"``) silently reads ``01/03/2024`` as January 3rd and
``13/03/2024`` as March 13th in the same file. Here a column gets one date order for all its values: the
mapping's ``timestamps.format`` / ``timestamps.dayfirst``, or the one its values prove (a day above 12). A column
whose values prove nothing (every day and month <= 12), or that mixes formats, stops with one line that says
which mapping key to set. Values that do not match the column's format are returned as NaT, so the caller
rejects their rows as unparseable; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from features.exceptions import DataError

ISO = "ISO8601"
# Rows looked at to infer a column's format; their distinct values are tried against every candidate format.
# The chosen format then parses the whole column, and values it cannot read are checked again (see
# parse_column), so a format used only past the sample is still found.
SAMPLE_ROWS = 20_000
_TIMES = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f", "T%H:%M", "T%H:%M:%S", "T%H:%M:%S.%f",
          " %I:%M %p", " %I:%M:%S %p")


@dataclass(frozen=True)
class DateFormat:
    """One way of writing dates: a few strftime formats (with and without a time of day) read as one.

    ``shape`` groups formats that look alike (``01/03/2024``); two formats of one shape but different ``order``
    (day first, month first) are what a column must decide between.
    """

    name: str
    formats: tuple[str, ...]
    pattern: str  # regex a value's start matches when it may be in this format (a cheap first filter)
    shape: str
    order: str  # "ymd", "dmy" or "mdy"


def _numeric(sep: str, order: str, year: str) -> DateFormat:
    first, second = ("%d", "%m") if order == "dmy" else ("%m", "%d")
    date = f"{first}{sep}{second}{sep}{year}"
    digits = 4 if year == "%Y" else 2
    shown = {"%d": "DD", "%m": "MM"}
    name = f"{shown[first]}{sep}{shown[second]}{sep}{'Y' * digits}"
    pattern = rf"\d{{1,2}}{_re(sep)}\d{{1,2}}{_re(sep)}\d{{{digits}}}(?!\d)"
    return DateFormat(name, tuple(date + t for t in _TIMES), pattern, f"nn{sep}nn{sep}{digits}", order)


def _re(sep: str) -> str:
    return "\\" + sep if sep in ".-" else sep


def _named(order: str) -> DateFormat:
    if order == "dmy":
        dates = ("%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%d-%b-%y", "%d %b, %Y", "%d %B, %Y")
        pattern = r"\d{1,2}[ -][A-Za-z]{3}"
    else:
        dates = ("%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y")
        pattern = r"[A-Za-z]{3,9} \d{1,2}"
    return DateFormat("3 Mar 2024" if order == "dmy" else "Mar 3, 2024",
                      tuple(d + t for d in dates for t in _TIMES), pattern, f"named-{order}", order)


FORMATS: tuple[DateFormat, ...] = (
    DateFormat("ISO 8601 (YYYY-MM-DD)", (ISO,), r"\d{4}-\d\d-\d\d", "iso", "ymd"),
    *(DateFormat(f"YYYY{sep}MM{sep}DD", tuple(f"%Y{sep}%m{sep}%d{t}" for t in _TIMES),
                 rf"\d{{4}}{_re(sep)}\d{{1,2}}{_re(sep)}\d{{1,2}}", f"4{sep}nn{sep}nn", "ymd") for sep in "/."),
    *(_numeric(sep, order, year) for sep in "/-." for year in ("%Y", "%y") for order in ("dmy", "mdy")),
    _named("dmy"), _named("mdy"),
)


def _parse(values: pd.Series, formats: tuple[str, ...] | list[str], todo: np.ndarray | None = None
           ) -> tuple[np.ndarray, list[str]]:
    """Parse ``values`` (text, no missing) with each format in turn, each on what the earlier ones left.

    Returns
    -------
    (parsed, used)
        UTC wall times as datetime64[ns] (NaT where no format reads the value; a value with an offset is
        converted to UTC) and the formats that read at least one value, most used first.
    """
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    todo = np.ones(len(values), dtype=bool) if todo is None else todo.copy()
    used: list[tuple[int, str]] = []
    for fmt in formats:
        rows = np.flatnonzero(todo)
        if not len(rows):
            break
        parsed = pd.to_datetime(values if len(rows) == len(values) else values.iloc[rows], format=fmt,
                                errors="coerce", utc=True)
        got = parsed.notna().to_numpy()
        if got.any():
            out[rows[got]] = parsed[got].dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
            todo[rows[got]] = False
            used.append((int(got.sum()), fmt))
    return out, [fmt for _, fmt in sorted(used, key=lambda x: -x[0])]


def _try(values: pd.Series, date_format: DateFormat) -> tuple[np.ndarray, list[str]]:
    """:func:`_parse` with a date format's variants, on the values its pattern lets through."""
    return _parse(values, date_format.formats, values.str.match(date_format.pattern).to_numpy(dtype=bool))


@dataclass
class _Fit:
    date_format: DateFormat
    parsed: np.ndarray
    variants: list[str]

    @property
    def read(self) -> np.ndarray:
        return ~np.isnat(self.parsed)

    @property
    def hits(self) -> int:
        return int(self.read.sum())


def _fits(values: pd.Series, candidates: tuple[DateFormat, ...]) -> list[_Fit]:
    fits = [_Fit(f, *_try(values, f)) for f in candidates]
    return [f for f in fits if f.hits]


def _examples(*values: object) -> str:
    return ", ".join(repr(str(v)) for v in values)


def _candidates(dayfirst: bool | None) -> tuple[DateFormat, ...]:
    if dayfirst is None:
        return FORMATS
    dropped = "mdy" if dayfirst else "dmy"
    return tuple(f for f in FORMATS if f.order != dropped)


def _distinct_sample(text: pd.Series) -> pd.Series:
    """Distinct values of the first rows and of rows spread over the column (a date range shows at both ends)."""
    if len(text) > SAMPLE_ROWS:
        rng = np.random.default_rng(0)  # the same rows on every run: the same file always reads the same way
        rows = np.union1d(np.arange(SAMPLE_ROWS // 2), rng.choice(len(text), SAMPLE_ROWS // 2, replace=False))
        text = text.iloc[rows]
    return pd.Series(pd.unique(text), dtype="str")


def _first_read(values: pd.Series, fit: _Fit) -> str:
    return str(values[fit.read].iloc[0])


def _mixed_error(where: str, key: str, a: str, a_format: DateFormat, b: str, b_format: DateFormat) -> DataError:
    return DataError(f"{where}: mixes date formats ({_examples(a)} is {a_format.name}, {_examples(b)} is "
                     f"{b_format.name}); write one format, or set {key}.format in the mapping (values that do not "
                     f"match it are then rejected as unparseable)")


def infer_format(values: pd.Series, where: str, key: str, dayfirst: bool | None = None,
                 everything: Callable[[], pd.Series] | None = None) -> DateFormat | None:
    """The one date format that reads the column, decided from ``values`` (distinct, non-missing text).

    Parameters
    ----------
    values
        Distinct values of the column (a sample of them for a long column).
    where
        ``file: column 'name'`` for messages.
    key
        The mapping section that sets the format, e.g. ``transactions.timestamps``.
    dayfirst
        The mapping's ``dayfirst``: True or False leaves only day-first or month-first formats; None decides
        from the data.
    everything
        Gives all distinct values of the column; called only when ``values`` cannot decide between day-first and
        month-first (the deciding day above 12 may lie outside the sample).

    Returns
    -------
    DateFormat or None
        None when no known format reads any value (every row is then unparseable).

    Raises
    ------
    DataError
        The values fit no single format (two formats each read some of them), or they read as well day-first as
        month-first and nothing decides it.
    """
    fits = _fits(values, _candidates(dayfirst))
    if not fits:
        return None
    best = max(fits, key=lambda f: f.hits)  # the first listed among equals
    rivals = [f for f in fits if f.date_format.shape == best.date_format.shape
              and f.date_format.order != best.date_format.order and np.array_equal(f.read, best.read)]
    if rivals and everything is not None:
        # Day-first and month-first read the sample alike: let every distinct value decide.
        return infer_format(everything(), where, key, dayfirst)
    if rivals:
        shown = values[best.read]
        pair = shown.iloc[[0, -1]] if len(shown) > 1 else shown.iloc[[0]]
        raise DataError(f"{where}: dates are ambiguous, day-first or month-first ({_examples(*pair)}: no day "
                        f"above 12 decides it); set {key}.dayfirst: true or false (or {key}.format) in the "
                        f"mapping")
    unread = ~best.read
    for other in fits:
        if other is not best and (other.read & unread).any():
            b = str(values[other.read & unread].iloc[0])
            raise _mixed_error(where, key, _first_read(values, best), best.date_format, b, other.date_format)
    return best.date_format


def date_sample(text: pd.Series) -> pd.Series:
    """Distinct present values of a stripped text column, at most ``SAMPLE_ROWS`` (what inference looks at).

    The Dask engine takes one from every part and decides a single format from their union
    (:func:`infer_format`), so no part reads its dates its own way.
    """
    present = text.dropna()
    return _distinct_sample(present) if len(present) else pd.Series([], dtype="str")


def parse_column(text: pd.Series, where: str, key: str, fmt: str | None = None,
                 dayfirst: bool | None = None, decided: DateFormat | None = None) -> pd.Series:
    """Parse a text column of timestamps with one format; values it cannot read become NaT.

    Parameters
    ----------
    text
        Stripped text, missing where blank.
    where, key
        As in :func:`infer_format`.
    fmt
        The mapping's strftime format (or ``ISO8601``): used as it is, nothing inferred.
    dayfirst
        The mapping's ``dayfirst`` (None: decided by the data).
    decided
        The format already decided for the whole column (the Dask engine decides it from every part before it
        reads one): used instead of inferring one from ``text``.

    Returns
    -------
    pandas.Series
        Timezone-aware (UTC) timestamps, NaT where missing or unreadable.

    Raises
    ------
    DataError
        As :func:`infer_format`, also when values the inferred format cannot read are in another known format.
    """
    if fmt:
        return pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    present = text.dropna()
    out = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    chosen = None
    if not present.empty:
        sample = _distinct_sample(present)
        everything = (lambda: pd.Series(pd.unique(present), dtype="str")) if len(present) > SAMPLE_ROWS else None
        chosen = decided or infer_format(sample, where, key, dayfirst, everything)
    if chosen is not None:
        variants = _try(sample, chosen)[1]
        variants += [v for v in chosen.formats if v not in variants]
        sampled = min(len(present), SAMPLE_ROWS)
        if len(sample) < sampled // 2:
            # Few distinct values (dates without a time): parse each once. pandas' own cache does not apply to
            # explicit formats on Arrow text.
            codes, distinct = pd.factorize(present)
            parsed = _parse(pd.Series(distinct, dtype="str"), variants)[0][codes]
        else:
            parsed, _ = _parse(present, variants)
        out[np.flatnonzero(text.notna().to_numpy())] = parsed
        todo = present[np.isnat(parsed)]
        if not todo.empty:
            # Values the column's format cannot read: garbage (rejected as unparseable) unless another known format
            # reads them, which means the column mixes formats after all.
            unread = pd.Series(pd.unique(todo), dtype="str")
            for other in _fits(unread, _candidates(dayfirst)):
                if other.date_format != chosen:
                    a = _first_read(sample, _Fit(chosen, *_try(sample, chosen)))
                    raise _mixed_error(where, key, a, chosen, _first_read(unread, other), other.date_format)
    return pd.Series(out, index=text.index).dt.tz_localize("UTC")
