"""Column mappings (configs/datasets/*.yaml) that turn any export into the canonical tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import yaml

from features.columns import Tables
from features.exceptions import ConfigError
from features import storage
from features.expressions import Expression

_TABLE_KEYS = {"file", "read", "rename", "derive", "constants", "values", "numeric", "timestamps", "filters",
               "returns", "duplicates", "keep"}
_TIMESTAMP_KEYS = {"format", "dayfirst", "unit", "timezone"}
EXPERIMENT_SECTION = "experiment"  # a mapping's customer-level experiment table (features/experiment.py)


@dataclass
class TimestampRule:
    """How timestamp text or numbers are parsed (``format`` as in strftime, or epoch ``unit`` s/ms)."""

    format: str | None = None
    dayfirst: bool | None = None  # None: the data decides (a day above 12), or the column is ambiguous
    unit: str | None = None
    timezone: str | None = None  # source values without an offset are in this zone; output is UTC-naive


@dataclass
class TableMapping:
    """How one canonical table is built from a source table. Empty means "already canonical"."""

    where: str
    file: str | None = None
    read: dict[str, Any] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)
    derive: dict[str, Expression] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    values: dict[str, dict[Any, Any]] = field(default_factory=dict)
    numeric: list[str] = field(default_factory=list)
    timestamps: TimestampRule = field(default_factory=TimestampRule)
    filters: dict[str, Expression] = field(default_factory=dict)
    returns: Expression | None = None
    duplicates: str = "reject"
    keep: list[str] = field(default_factory=list)

    @property
    def is_identity(self) -> bool:
        """True when the source is taken as canonical (no renames, derivations or constants)."""
        return not (self.rename or self.derive or self.constants)

    def source_columns_for(self, canonical: str) -> str | None:
        """Source column renamed onto ``canonical``, if any."""
        return self.rename.get(canonical)


@dataclass
class DatasetMapping:
    """A whole mapping file: one :class:`TableMapping` per table it mentions."""

    name: str
    path: str | Path | None
    tables: dict[str, TableMapping]
    # A customer-level experiment table (one row per customer: assignment, outcomes, features), as written;
    # features.experiment reads it.
    experiment: dict[str, Any] | None = None

    def table(self, name: str) -> TableMapping:
        """Mapping of ``name``; tables the file does not mention are taken as canonical."""
        return self.tables.get(name) or TableMapping(where=f"{self.name}: {name}")


def identity_mapping() -> DatasetMapping:
    """The mapping for data already in canonical column names."""
    return DatasetMapping(name="canonical", path=None, tables={})


def _mapping_of(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of name: value")
    return value


_UNITS = ("s", "ms", "us", "ns")


def parse_timestamp_rule(spec: dict[str, Any], where: str) -> TimestampRule:
    """Check a ``timestamps`` section: types, a real strftime format, a known time zone.

    Raises
    ------
    ConfigError
        A value of the wrong type, a format without a ``%`` directive (or ``mixed``, which reads each value on
        its own and so can read one file's dates in two orders), an unknown epoch unit or time zone.
    """
    fmt, dayfirst, unit, zone = (spec.get(k) for k in ("format", "dayfirst", "unit", "timezone"))
    if fmt is not None and (not isinstance(fmt, str) or (fmt != "ISO8601" and "%" not in fmt)):
        raise ConfigError(f"{where}.format: expected a strftime format such as '%d/%m/%Y %H:%M' or 'ISO8601', "
                          f"not {fmt!r}")
    if dayfirst is not None and not isinstance(dayfirst, bool):
        raise ConfigError(f"{where}.dayfirst: expected true or false, not {dayfirst!r}")
    if fmt is not None and dayfirst is not None:
        raise ConfigError(f"{where}: set format or dayfirst, not both (the format already says where the day is)")
    if unit is not None and unit not in _UNITS:
        raise ConfigError(f"{where}.unit: expected one of {', '.join(_UNITS)}, not {unit!r}")
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where}.timezone: unknown time zone {zone!r} (use a name such as "
                              f"Europe/London)") from None
    return TimestampRule(format=fmt, dayfirst=dayfirst, unit=unit, timezone=zone)


def parse_table_mapping(spec: Any, where: str) -> TableMapping:
    """Parse one table's section of a mapping file.

    Parameters
    ----------
    spec
        The section as loaded from YAML.
    where
        ``file: table`` prefix for error messages.

    Returns
    -------
    TableMapping

    Raises
    ------
    ConfigError
        Unknown keys, malformed values or expressions outside the allowed vocabulary.
    """
    spec = _mapping_of(spec, where)
    unknown = sorted(set(spec) - _TABLE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(_TABLE_KEYS))})")
    ts = _mapping_of(spec.get("timestamps"), f"{where}.timestamps")
    bad_ts = sorted(set(ts) - _TIMESTAMP_KEYS)
    if bad_ts:
        raise ConfigError(f"{where}.timestamps: unknown key '{bad_ts[0]}' "
                          f"(allowed: {', '.join(sorted(_TIMESTAMP_KEYS))})")
    duplicates = spec.get("duplicates", "reject")
    if duplicates not in ("reject", "keep"):
        raise ConfigError(f"{where}.duplicates: must be 'reject' or 'keep', not {duplicates!r}")
    for key in ("numeric", "keep"):
        if not isinstance(spec.get(key, []), list):
            raise ConfigError(f"{where}.{key}: expected a list of source column names")
    values = _mapping_of(spec.get("values"), f"{where}.values")
    for col, recode in values.items():
        _mapping_of(recode, f"{where}.values.{col}")
    returns = spec.get("returns")
    return TableMapping(
        where=where,
        file=spec.get("file"),
        read=_mapping_of(spec.get("read"), f"{where}.read"),
        rename={str(k): str(v) for k, v in _mapping_of(spec.get("rename"), f"{where}.rename").items()},
        derive={str(k): Expression(v, f"{where}.derive.{k}")
                for k, v in _mapping_of(spec.get("derive"), f"{where}.derive").items()},
        constants=dict(_mapping_of(spec.get("constants"), f"{where}.constants")),
        values={str(k): dict(v) for k, v in values.items()},
        numeric=[str(c) for c in spec.get("numeric", [])],
        timestamps=parse_timestamp_rule(ts, f"{where}.timestamps"),
        filters={str(k): Expression(v, f"{where}.filters.{k}")
                 for k, v in _mapping_of(spec.get("filters"), f"{where}.filters").items()},
        returns=Expression(returns, f"{where}.returns") if returns is not None else None,
        duplicates=duplicates,
        keep=[str(c) for c in spec.get("keep", [])],
    )


def load_mapping(path: str | Path | None) -> DatasetMapping:
    """Read a column-mapping YAML file; ``None`` gives the identity mapping.

    Raises
    ------
    ConfigError
        The file is missing, not YAML, or names an unknown table or key.
    """
    if path is None:
        return identity_mapping()
    path = storage.as_location(path)
    try:
        spec = yaml.safe_load(storage.read_text(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: mapping file does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read mapping ({str(exc).splitlines()[0]})") from None
    spec = _mapping_of(spec, str(path))
    name = str(spec.pop("name", storage.stem_of(path)))
    spec.pop("description", None)
    experiment = spec.pop(EXPERIMENT_SECTION, None)
    unknown = sorted(set(spec) - set(Tables.ALL))
    if unknown:
        raise ConfigError(f"{storage.name_of(path)}: unknown table '{unknown[0]}' (tables: {', '.join(Tables.ALL)})")
    tables = {t: parse_table_mapping(s, f"{storage.name_of(path)}: {t}") for t, s in spec.items()}
    return DatasetMapping(name=name, path=path, tables=tables,
                          experiment=_mapping_of(experiment, f"{storage.name_of(path)}: {EXPERIMENT_SECTION}") or None)


@dataclass
class MappedTable:
    """A source table after its mapping: canonical columns, return flags and per-row reject reasons."""

    frame: pd.DataFrame
    returns: pd.Series | None
    reasons: "RejectTracker"


class RejectTracker:
    """Per-row reject reasons; the first reason a row gets is the one recorded."""

    def __init__(self, n_rows: int):
        self.codes = np.zeros(n_rows, dtype=np.int16)  # 0 = kept
        self.names: list[str] = []
        self.withheld = np.zeros(n_rows, dtype=bool)  # neither kept nor rejected: erased customers' rows

    def withhold(self, mask: np.ndarray) -> None:
        """Rows that are neither kept nor rejected, whatever reason they have: an erased customer's rows
        must not reach a rejects file."""
        self.withheld |= np.asarray(mask, dtype=bool)

    def reject(self, mask: Any, reason: str) -> None:
        """Reject rows where ``mask`` is true and that have no reason yet."""
        if isinstance(mask, pd.Series):
            mask = mask.fillna(False).to_numpy(dtype=bool)
        mask = np.asarray(mask, dtype=bool)
        hit = mask & (self.codes == 0)
        if hit.any():
            if reason not in self.names:
                self.names.append(reason)
            self.codes[hit] = self.names.index(reason) + 1

    @property
    def kept(self) -> np.ndarray:
        return (self.codes == 0) & ~self.withheld

    @property
    def rejected(self) -> np.ndarray:
        return (self.codes != 0) & ~self.withheld

    def reason_labels(self) -> np.ndarray:
        """Reason per row as text ('' for kept rows)."""
        return np.asarray([""] + self.names, dtype=object)[self.codes]

    def counts(self) -> dict[str, int]:
        """Rejected rows per reason, largest first."""
        counts = np.bincount(self.codes[~self.withheld], minlength=len(self.names) + 1)[1:]
        return {n: int(c) for n, c in sorted(zip(self.names, counts), key=lambda x: -x[1]) if c}


_SEPARATORS = (";", "\t", "|", ",")


def separator_hint(columns: pd.Index, table: str, source_column: str) -> str:
    """Hint for a missing column: ``; did you mean read: {sep: ';'}`` when a column name holds the wanted
    column and a separator, i.e. the header was read with the wrong separator (a semicolon export read as
    comma-separated). Empty when nothing suggests it."""
    for name in map(str, columns):
        for sep in _SEPARATORS:
            if sep in name and source_column in (part.strip().strip('"') for part in name.split(sep)):
                shown = "\\t" if sep == "\t" else sep
                return f"; did you mean `read: {{sep: '{shown}'}}` in the mapping's {table} section?"
    return ""


def to_number(series: pd.Series, decimal: str | None = None, thousands: str | None = None) -> pd.Series:
    """Numbers from text written with the export's decimal and thousands separators; others become NaN."""
    if pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    if thousands or (decimal and decimal != "."):
        series = series.astype("str")
        if thousands:
            series = series.str.replace(thousands, "", regex=False)
        if decimal and decimal != ".":
            series = series.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(series, errors="coerce")


def apply_mapping(raw: pd.DataFrame, mapping: TableMapping) -> MappedTable:
    """Build canonical columns from ``raw``: coercions, filters, returns, renames, derivations, constants.

    Parameters
    ----------
    raw
        The source table as read, indexed 0..n-1.
    mapping
        This table's mapping (an identity mapping keeps the columns as they are).

    Returns
    -------
    MappedTable
        Canonical frame (same index as ``raw``), return flags when the mapping defines them, and the reject
        reasons assigned so far (unparseable numeric source columns, failed filters).
    """
    reasons = RejectTracker(len(raw))
    source = raw
    if mapping.numeric:
        source = raw.copy()
        for col in mapping.numeric:
            if col not in raw.columns:
                raise ConfigError(f"{mapping.where}.numeric: unknown column '{col}' "
                                  f"(columns: {', '.join(map(str, raw.columns))})")
            converted = to_number(raw[col], mapping.read.get("decimal"), mapping.read.get("thousands"))
            reasons.reject(converted.isna() & raw[col].notna(), f"unparseable_{col}")
            source[col] = converted
    for reason, expr in mapping.filters.items():
        keep = expr.evaluate(source)
        if not isinstance(keep, pd.Series):
            keep = pd.Series(bool(keep), index=source.index)
        # A filter that cannot be evaluated on a row (missing value) keeps it: the canonical checks then
        # reject it with a precise reason such as missing_product_id.
        reasons.reject(~keep.fillna(True).astype(bool), reason)
    returns = None
    if mapping.returns is not None:
        returns = mapping.returns.evaluate(source)
        returns = (returns if isinstance(returns, pd.Series) else pd.Series(bool(returns), index=source.index))
        returns = returns.fillna(False).astype(bool)

    if mapping.is_identity:
        frame = source.copy(deep=False)  # columns are replaced, never written in place
    else:
        columns: dict[str, Any] = {}
        for canonical, col in mapping.rename.items():
            if col not in source.columns:
                shown = ", ".join(map(str, source.columns[:20])) + (
                    f" and {len(source.columns) - 20:,} more" if len(source.columns) > 20 else "")
                hint = separator_hint(source.columns, mapping.where.rsplit(": ", 1)[-1], col)
                raise ConfigError(f"{mapping.where}.rename.{canonical}: unknown column '{col}' "
                                  f"(columns: {shown}){hint}")
            columns[canonical] = source[col]
        for canonical, expr in mapping.derive.items():
            value = expr.evaluate(source)
            columns[canonical] = value if isinstance(value, pd.Series) else pd.Series(value, index=source.index)
        for canonical, value in mapping.constants.items():
            columns[canonical] = pd.Series(value, index=source.index)
        for col in mapping.keep:
            if col not in source.columns:
                raise ConfigError(f"{mapping.where}.keep: unknown column '{col}'")
            columns.setdefault(col, source[col])
        frame = pd.DataFrame(columns, index=source.index)
    for col, recode in mapping.values.items():
        if col not in frame.columns:
            raise ConfigError(f"{mapping.where}.values.{col}: no such column after mapping")
        frame[col] = frame[col].replace(recode)
    return MappedTable(frame=frame, returns=returns, reasons=reasons)
