"""Validation of mapped tables against the canonical schemas: coercion, reject reasons and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.columns import EventTypes, Groups, Tables
from features.exceptions import DataError
from features.limits import MAX_ID_LENGTH
from features.privacy import ErasureList
from features.mapping import (MappedTable, RejectTracker, TableMapping, TimestampRule, apply_mapping,
                              separator_hint)
from features.schema import BOOL, ID, INTEGER, MONTH_DAY, NUMBER, SCHEMAS, TEXT, TIMESTAMP, TableSchema
from features.timestamps import DateFormat, parse_column

ROW_NUMBER = "_row"
ROW_HASH = "_row_hash"
ID_TOO_LONG = "id_too_long"  # reject reason of an id longer than features.limits.MAX_ID_LENGTH
# Every id the contract keeps: text of 1 to MAX_ID_LENGTH characters without surrounding whitespace (coerce_id
# strips it), anything else allowed (unicode, '@', '/'). The API's customer ids and `clientele erase` use it, so
# every customer trained on can be named, and erased.
ID_PATTERN = rf"^\S(?:[\s\S]{{0,{MAX_ID_LENGTH - 2}}}\S)?$"
ID_RULE = f"1 to {MAX_ID_LENGTH} characters, no surrounding whitespace"
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
# Outside this range a timestamp is a unit or format mistake (epoch seconds read as ns, a year typo).
_EARLIEST = pd.Timestamp("1950-01-01")
_LATEST = pd.Timestamp("2100-01-01")


@dataclass
class TableReport:
    """What validation did to one table. Every source row is either kept or rejected with a reason."""

    table: str
    source: str
    rows_read: int
    rows_kept: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    details: dict[str, Any] = field(default_factory=dict)
    rows_erased: int = 0  # rows of customers on the erasure list: dropped, neither kept nor rejected

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TableResult:
    """A validated table: the canonical rows kept, the source rows rejected (with ``row`` and ``reason``)."""

    frame: pd.DataFrame
    rejects: pd.DataFrame
    report: TableReport
    erased: frozenset[str] = frozenset()  # pseudonyms of the erased customers whose rows were dropped


def strip_text(series: pd.Series) -> pd.Series:
    """Text without surrounding spaces; blank text is missing. Clean columns are returned as they are (a
    stripped copy of a 10M-row id column costs hundreds of MB)."""
    text = series if isinstance(series.dtype, pd.StringDtype) else series.astype("str")
    stripped = text.str.strip()
    if not ((stripped.str.len() != text.str.len()) | (stripped == "")).any():
        return text
    return stripped.where(series.notna() & (stripped != ""))


def id_error(value: str) -> str | None:
    """Why ``value`` can be no id the data contract keeps (None when it can be)."""
    if not value:
        return "is empty"
    if value != value.strip():
        return "has surrounding whitespace (ids are stripped when data is loaded)"
    if len(value) > MAX_ID_LENGTH:
        return f"is longer than {MAX_ID_LENGTH} characters"
    return None


def coerce_id(series: pd.Series) -> pd.Series:
    """Identifiers as text; whole floats (17850.0, how CSV/Parquet exports store ids) lose their '.0'."""
    if pd.api.types.is_float_dtype(series):
        whole = series.notna() & np.isfinite(series) & (series == np.floor(series))
        out = pd.Series(pd.NA, index=series.index, dtype="str")
        out[whole] = series[whole].astype("int64").astype("str")
        other = series.notna() & ~whole
        out[other] = series[other].astype("str")
        return out
    if pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series.astype("str").where(series.notna())
    return strip_text(series)


# An offset after a time of day (ISO 8601): such a value names its own zone, whatever the mapping's timezone.
_OFFSET = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d(?::?\d\d)?)$"


def coerce_timestamp(series: pd.Series, rule: TimestampRule, where: str = "timestamps",
                     key: str = "timestamps", date_format: DateFormat | None = None) -> pd.Series:
    """Timestamps as timezone-naive datetime64 (any resolution); unparseable values become NaT.

    Text is read with one format for the whole column (the mapping's, or one the values prove, see
    :mod:`features.timestamps`), never value by value.

    Parameters
    ----------
    series
        The column as mapped: text, datetimes, or epoch numbers when ``rule.unit`` is set.
    rule
        The table's ``timestamps`` mapping.
    where
        ``file: column 'name'`` for messages.
    key
        The mapping section named in messages (``transactions.timestamps``).
    date_format
        The text format decided beforehand for the whole column (over all Parquet parts); None: inferred here.

    Raises
    ------
    DataError
        The column's dates are ambiguous (day-first or month-first) or mix formats.
    """
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert(rule.timezone or "UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(series):
        return series
    if pd.api.types.is_numeric_dtype(series) and rule.unit:
        return pd.to_datetime(series, unit=rule.unit, errors="coerce")
    text = strip_text(series)
    if rule.unit and not rule.format:
        return coerce_timestamp(pd.to_numeric(text, errors="coerce"), rule, where, key)
    parsed = parse_column(text, where, key, rule.format, rule.dayfirst, date_format)
    if rule.timezone and not text.str.contains(_OFFSET, na=False).any():
        # Values without an offset are local times in rule.timezone: read them as such.
        return parsed.dt.tz_localize(None).dt.tz_localize(rule.timezone, ambiguous="NaT",
                                                          nonexistent="shift_forward") \
            .dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.dt.tz_convert(rule.timezone or "UTC").dt.tz_localize(None)


def coerce_bool(series: pd.Series) -> pd.Series:
    """Booleans from bools, 0/1 or text such as yes/no; anything else becomes missing."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    text = series.astype("str").str.strip().str.lower()
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[text.isin(_TRUE) & series.notna()] = True
    out[text.isin(_FALSE) & series.notna()] = False
    return out


# A month and day without a year: "05-20" or ISO 8601's "--05-20".
_MONTH_DAY = r"(?:--)?(\d{1,2})-(\d{1,2})"
_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])  # 29 February is a birthday too


def coerce_month_day(series: pd.Series, rule: TimestampRule, where: str = "column", key: str = "timestamps",
                     date_format: DateFormat | None = None) -> pd.Series:
    """Month and day as ``MM-DD`` text from ``MM-DD`` / ``--MM-DD`` or from full dates (read like any date
    column, one format for the column); the year of a full date is dropped. Values that name no real day of the
    year (``02-30``, ``13-01``) or cannot be read become missing.

    Raises
    ------
    DataError
        The full dates of the column are ambiguous (day-first or month-first) or mix formats.
    """
    out = pd.Series(pd.NA, index=series.index, dtype="string")
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = coerce_timestamp(series, rule, where, key, date_format)
        return out.mask(stamps.notna(), stamps.dt.strftime("%m-%d").astype("string"))
    text = strip_text(series)
    parts = text.str.fullmatch(_MONTH_DAY, na=False)
    if parts.any():
        found = text[parts].str.extract(_MONTH_DAY).astype("int64")
        month, day = found[0].to_numpy(), found[1].to_numpy()
        real = (month >= 1) & (month <= 12) & (day >= 1) & (day <= _DAYS_IN_MONTH[np.clip(month, 0, 12)])
        labels = pd.Series([f"{m:02d}-{d:02d}" for m, d in zip(month.tolist(), day.tolist())],
                           index=found.index, dtype="string")
        out[parts] = labels.where(real)
    dated = text.notna() & (text != "") & ~parts
    if dated.any():
        stamps = coerce_timestamp(text[dated], rule, where, key, date_format)
        out[dated] = stamps.dt.strftime("%m-%d").astype("string").where(stamps.notna())
    return out


def coerce(series: pd.Series, kind: str, rule: TimestampRule, where: str = "column",
           key: str = "timestamps", date_format: DateFormat | None = None) -> pd.Series:
    """Coerce ``series`` to the canonical dtype of ``kind``; values that cannot be read become missing.

    ``where`` (``file: column 'name'``) and ``key`` (the mapping's ``<table>.timestamps``) name the column in
    the errors of :func:`coerce_timestamp`.
    """
    if kind == ID:
        return coerce_id(series)
    if kind == TIMESTAMP:
        return coerce_timestamp(series, rule, where, key, date_format)
    if kind in (NUMBER, INTEGER):
        out = pd.to_numeric(series, errors="coerce").astype("float64")
        out = out.where(np.isfinite(out))
        if kind == INTEGER:
            out = out.where(out == np.floor(out)).astype("Int64")
        return out
    if kind == BOOL:
        return coerce_bool(series)
    if kind == TEXT:
        return strip_text(series)
    if kind == MONTH_DAY:
        return coerce_month_day(series, rule, where, key, date_format)
    raise ValueError(f"unknown column kind {kind!r}")  # a bug in schema.py, not user input


def _check_required_columns(frame: pd.DataFrame, schema: TableSchema, source: str, mapping: TableMapping,
                            raw_columns: pd.Index) -> None:
    for col in schema.required:
        if col not in frame.columns:
            hint = "" if mapping.is_identity else " after mapping"
            found = ", ".join(map(str, frame.columns[:20])) + (
                f" and {len(frame.columns) - 20:,} more" if len(frame.columns) > 20 else "")
            sep_hint = separator_hint(raw_columns, schema.name, mapping.rename.get(col, col))
            raise DataError(f"{source}: column '{col}' is missing{hint} "
                            f"(required for {schema.name}: {', '.join(schema.required)}; "
                            f"found: {found}){sep_hint}")


def column_where(source: str, col: str, mapping: TableMapping) -> str:
    """``file: column 'timestamp'``, with the source column when the mapping renamed one onto it."""
    renamed = mapping.rename.get(col)
    return f"{source}: column '{col}'" + (f" (source column '{renamed}')" if renamed and renamed != col else "")


def validate_table(raw: pd.DataFrame, schema: TableSchema, mapping: TableMapping, source: str,
                   row_offset: int = 0, allow_empty: bool = False, defer_duplicates: bool = False,
                   date_formats: dict[str, DateFormat] | None = None,
                   erasures: ErasureList | None = None) -> TableResult:
    """Map, coerce and check one table; every source row ends up kept or rejected with a reason.

    Parameters
    ----------
    raw
        The source table as read from ``source``.
    schema
        The canonical table it becomes.
    mapping
        The table's mapping (identity when the data is already canonical).
    source
        File name used in messages and the report.
    row_offset
        Rows of the source before ``raw`` (when ``raw`` is one part of a larger file), for reject row numbers.
    allow_empty
        Return an empty table instead of raising when no row is usable (one part among many may be all bad).
    defer_duplicates
        Leave duplicate detection to :func:`reject_duplicates` on the combined parts: the kept rows carry
        their source row number (``_row``) and a hash of their source row (``_row_hash``).
    date_formats
        Text date format per timestamp column, decided beforehand over the whole table (one Parquet part among
        many must read its dates as the others do); columns not named infer theirs from ``raw``.
    erasures
        Customers on the erasure list: their rows are dropped first, neither kept nor rejected (an erased
        customer's raw row must never reach a rejects file), and counted as ``rows_erased``.

    Returns
    -------
    TableResult

    Raises
    ------
    DataError
        A required column is missing, or no row is usable.
    """
    raw = raw.reset_index(drop=True)
    mapped: MappedTable = apply_mapping(raw, mapping)
    frame, reasons = mapped.frame, mapped.reasons
    _check_required_columns(frame, schema, source, mapping, raw.columns)

    for col in schema.columns:
        if col not in frame.columns:
            if col in schema.defaults:
                frame[col] = schema.defaults[col]
            continue
        original = frame[col]
        frame[col] = coerce(original, schema.kinds[col], mapping.timestamps, column_where(source, col, mapping),
                            f"{schema.name}.timestamps", (date_formats or {}).get(col))
        present = original.notna()
        if not pd.api.types.is_numeric_dtype(original) and not pd.api.types.is_datetime64_any_dtype(original):
            present &= original.astype("str").str.strip() != ""
        if col in schema.required or col in schema.required_if_present:
            reasons.reject(~present, f"missing_{col}")
        reasons.reject(frame[col].isna() & present, f"unparseable_{col}")
        if schema.kinds[col] == ID:
            reasons.reject(frame[col].str.len() > MAX_ID_LENGTH, ID_TOO_LONG)
        if schema.kinds[col] == TIMESTAMP:
            out_of_range = (frame[col] < _EARLIEST) | (frame[col] >= _LATEST)
            reasons.reject(out_of_range, f"{col}_out_of_range")
            frame[col] = frame[col].where(~out_of_range).astype("datetime64[ns]")
        if col in schema.defaults:
            frame[col] = frame[col].fillna(schema.defaults[col])

    erased: set[str] = set()
    if erasures and C.customer_id in frame.columns:
        # After the id is coerced (the id the API and the erasure list know), before any rule or rejects file.
        withheld, erased = erasures.rows(frame[C.customer_id])
        reasons.withhold(withheld)

    details: dict[str, Any] = {}
    if schema.name == Tables.transactions:
        _transaction_rules(frame, mapped, reasons)
    elif schema.name == Tables.products and C.price in frame.columns:
        reasons.reject(frame[C.price] < 0, "negative_price")
    elif schema.name == Tables.inventory and C.quantity in frame.columns:
        reasons.reject(frame[C.quantity] < 0, "negative_quantity")
    elif schema.name == Tables.events:
        frame[C.event_type] = frame[C.event_type].str.lower()
        reasons.reject(~frame[C.event_type].isin(EventTypes.ALL) & frame[C.event_type].notna(),
                       "unknown_event_type")
    elif schema.name == Tables.campaigns:
        frame[C.group] = frame[C.group].str.lower()
        reasons.reject(~frame[C.group].isin(Groups.ALL) & frame[C.group].notna(), "unknown_group")
        reasons.reject(frame[C.cost] < 0, "negative_cost")
        if C.response_window_days in frame.columns:
            reasons.reject(frame[C.response_window_days] <= 0, "non_positive_response_window_days")

    if defer_duplicates:
        frame[ROW_NUMBER] = np.arange(len(raw)) + 1 + row_offset
        frame[ROW_HASH] = pd.util.hash_pandas_object(raw, index=False).to_numpy()
    else:
        dup = np.zeros(len(raw), dtype=bool)
        kept_rows = np.flatnonzero(reasons.kept)
        dup[kept_rows] = (frame[list(schema.key)].iloc[kept_rows].duplicated().to_numpy() if schema.key
                          else exact_duplicates(raw.iloc[kept_rows]))
        if schema.key or mapping.duplicates == "reject":
            reasons.reject(dup, duplicate_reason(schema))
        details["duplicates"] = int(dup.sum())

    kept, rejected = reasons.kept, reasons.rejected
    report = TableReport(
        table=schema.name, source=source, rows_read=len(raw), rows_kept=int(kept.sum()),
        rows_rejected=int(rejected.sum()), rejected_by_reason=reasons.counts(), details=details,
        rows_erased=int(reasons.withheld.sum()),
    )
    # A table whose only usable rows were erased customers' is empty, not broken (but transactions are needed).
    empty_by_erasure = report.rows_erased > 0 and schema.name != Tables.transactions
    if report.rows_kept == 0 and not (allow_empty or empty_by_erasure):
        top = next(iter(report.rejected_by_reason), "no rows")
        raise DataError(f"{source}: no usable row in {schema.name} ({report.rows_read} read; most rejected as "
                        f"{top})")
    rejects = raw.loc[rejected].copy()
    rejects.insert(0, "reason", reasons.reason_labels()[rejected])
    rejects.insert(0, "row", np.flatnonzero(rejected) + 1 + row_offset)
    ordered = [c for c in schema.columns if c in frame.columns]
    extra = [c for c in frame.columns if c not in ordered]
    frame = frame[ordered + extra] if kept.all() else frame.loc[kept, ordered + extra].reset_index(drop=True)
    if schema.name == Tables.transactions and not defer_duplicates:
        details["returns"] = returns_summary(frame)
    return TableResult(frame=frame, rejects=rejects.reset_index(drop=True), report=report, erased=frozenset(erased))


def _transaction_rules(frame: pd.DataFrame, mapped: MappedTable, reasons: RejectTracker) -> None:
    """Returns and signs: returns are kept as returns (negative amount and quantity), never dropped."""
    if mapped.returns is not None:
        is_return = mapped.returns
    elif C.is_return in frame.columns:
        is_return = frame[C.is_return].fillna(False).astype(bool)
    else:
        is_return = frame[C.amount] < 0
    is_return = is_return.fillna(False).astype(bool)
    reasons.reject(~is_return & (frame[C.amount] < 0), "negative_amount")
    reasons.reject(~is_return & (frame[C.quantity] < 0), "negative_quantity")
    frame[C.is_return] = is_return
    frame[C.amount] = frame[C.amount].abs().where(~is_return, -frame[C.amount].abs())
    frame[C.quantity] = frame[C.quantity].abs().where(~is_return, -frame[C.quantity].abs())


def returns_summary(transactions: pd.DataFrame) -> dict[str, Any]:
    """Return lines among kept transactions and their (negative) amount."""
    returned = transactions[C.is_return].to_numpy(dtype=bool)
    return {"rows": int(returned.sum()), "amount": round(float(transactions.loc[returned, C.amount].sum()), 2)}


def duplicate_reason(schema: TableSchema) -> str:
    """Reject reason for a repeated row (tables without a key) or a repeated key."""
    return f"duplicate_{'_'.join(schema.key)}" if schema.key else "duplicate_row"


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits of 64-bit values so that sums of them rarely collide."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _repeated(key: np.ndarray) -> np.ndarray:
    """Whether each value occurs more than once (a sort: a hash table over 10M keys is slower)."""
    order = np.argsort(key)
    ordered = key[order]
    same = ordered[1:] == ordered[:-1]
    repeated = np.zeros(len(key), dtype=bool)
    repeated[1:] = same
    repeated[:-1] |= same
    out = np.empty(len(key), dtype=bool)
    out[order] = repeated
    return out


def exact_duplicates(raw: pd.DataFrame) -> np.ndarray:
    """Rows equal in every column to an earlier row.

    Hashing every text column of a 10M-row export is slow, so the numeric, time and boolean columns first pick
    candidates (rows whose numbers repeat) and only those are compared in full: the answer is exact.
    """
    # dtypes, not raw[c]: selecting each column of a 100,000-column export costs seconds.
    numeric = [c for c, t in raw.dtypes.items() if pd.api.types.is_numeric_dtype(t) or
               pd.api.types.is_datetime64_any_dtype(t) or pd.api.types.is_bool_dtype(t)]
    if not numeric or len(raw) < 2:
        return raw.duplicated().to_numpy()
    with np.errstate(over="ignore"):
        key = np.zeros(len(raw), dtype=np.uint64)
        for i, col in enumerate(numeric):
            values = raw[col]
            if pd.api.types.is_bool_dtype(values):
                bits = values.to_numpy(dtype=np.float64, na_value=np.nan).view(np.uint64)
            elif pd.api.types.is_datetime64_any_dtype(values):
                bits = values.to_numpy(dtype="datetime64[ns]").view(np.uint64)
            else:
                bits = np.ascontiguousarray(values.to_numpy(dtype=np.float64, na_value=np.nan)).view(np.uint64)
            key = _mix(key ^ (bits * np.uint64(2 * i + 0x9E3779B97F4A7C15)))
    candidates = np.flatnonzero(_repeated(key))
    out = np.zeros(len(raw), dtype=bool)
    if len(candidates):
        out[candidates] = raw.iloc[candidates].duplicated().to_numpy()
    return out


def _duplicate_mask(frame: pd.DataFrame, hashes: np.ndarray, schema: TableSchema) -> np.ndarray:
    """Rows repeating an earlier row's key, or (tables without a key) an earlier source row exactly."""
    if schema.key:
        return frame[list(schema.key)].duplicated().to_numpy()
    return pd.Series(hashes).duplicated().to_numpy()


def reject_duplicates(frame: pd.DataFrame, schema: TableSchema, policy: str
                      ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Duplicate detection over rows validated with ``defer_duplicates`` and then combined in source order.

    Returns
    -------
    (kept, rejects, duplicates)
        Kept rows without the helper columns; rejected rows (``row``, ``reason`` and the canonical columns);
        the number of duplicates found (rejected unless ``policy`` is ``keep`` for a table without a key).
    """
    dup = _duplicate_mask(frame, frame[ROW_HASH].to_numpy(), schema)
    found = int(dup.sum())
    if not schema.key and policy == "keep":
        dup[:] = False
    rejects = frame.loc[dup].drop(columns=[ROW_NUMBER, ROW_HASH])
    rejects.insert(0, "reason", duplicate_reason(schema))
    rejects.insert(0, "row", frame.loc[dup, ROW_NUMBER].to_numpy())
    kept = frame.loc[~dup].drop(columns=[ROW_NUMBER, ROW_HASH]).reset_index(drop=True)
    return kept, rejects.reset_index(drop=True), found


def transaction_summary(frame: pd.DataFrame) -> dict[str, Any]:
    """Counts a person checks first: customers, products, orders, date range."""
    out: dict[str, Any] = {
        "customers": int(frame[C.customer_id].nunique()),
        "date_range": {"start": str(frame[C.timestamp].min()), "end": str(frame[C.timestamp].max())},
    }
    if C.product_id in frame.columns:
        out["products"] = int(frame[C.product_id].nunique())
    if C.order_id in frame.columns:
        out["orders"] = int(frame[C.order_id].nunique())
    if C.channel in frame.columns:
        out["channels"] = {str(k): int(v) for k, v in frame[C.channel].value_counts().items()}
    return out


def capabilities(tables: dict[str, pd.DataFrame]) -> dict[str, bool]:
    """Which product capabilities the data supports (a log without product_id still serves churn/CLV/segments)."""
    tx = tables[Tables.transactions]
    has_products = C.product_id in tx.columns
    catalogue = tables.get(Tables.products)
    customers = tables.get(Tables.customers)
    return {
        "churn": True,
        "clv": True,
        "segments": True,
        "recommendations": has_products,
        "similar_products": has_products,
        "replenishment": has_products,
        "category_filters": catalogue is not None and C.category in catalogue.columns,
        "stock_filters": catalogue is not None and C.in_stock in catalogue.columns,
        "store_stock": Tables.inventory in tables,
        "channel_mix": C.channel in tx.columns,
        "price_filters": catalogue is not None and C.price in catalogue.columns,
        "event_features": Tables.events in tables,
        "feedback_features": Tables.feedback in tables,
        "campaigns": Tables.campaigns in tables,
        "consent": customers is not None and C.consent_profiling in customers.columns,
        "regional_popularity": C.region in tx.columns or (customers is not None and C.region in customers.columns),
    }


__all__ = ["SCHEMAS", "TableReport", "TableResult", "validate_table", "capabilities", "transaction_summary",
           "coerce"]
