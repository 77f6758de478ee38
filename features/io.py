"""Loaders: CSV or Parquet, a file or a folder with one file per table, mapped and validated into a Dataset."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import csvlines, storage
from features.codes import factorize
from features.columns import Columns as C
from features.columns import Tables
from features.csvsafe import write_csv
from features.exceptions import DataError
from features.limits import CELLS_PER_BATCH
from features.mapping import DatasetMapping, TableMapping, load_mapping, to_number
from features.linking import Links, apply_links, link_customers
from features.privacy import ErasureList
from features.schema import ID, MONTH_DAY, SCHEMAS, TEXT, TableSchema
from features.storage import Location
from features.validation import TableReport, TableResult, capabilities, transaction_summary, validate_table

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")


def _is_parquet(path: Location) -> bool:
    return storage.name_of(path).lower().endswith(PARQUET_SUFFIXES) or storage.is_dir(path)


def _is_csv(path: Location) -> bool:
    return storage.name_of(path).lower().endswith(CSV_SUFFIXES)


def find_sources(path: Location, mapping: DatasetMapping) -> dict[str, Location]:
    """Which file holds which table.

    A single file is the transactions table. A folder holds ``<table>.parquet`` / ``<table>.csv`` files or
    ``<table>/`` folders of Parquet parts; a mapping's ``file:`` names a table's file explicitly. ``path`` is a
    local path or an fsspec URL (``s3://bucket/export``); the sources are of the same kind.

    Raises
    ------
    DataError
        The path does not exist, or a folder has no transactions file, or a URL's filesystem is not installed.
    """
    path = storage.as_location(path)
    if not storage.exists(path):
        raise DataError(f"{path}: no such file or folder")
    if storage.is_file(path):
        return {Tables.transactions: path}
    found: dict[str, Location] = {}
    names = set(storage.list_names(path))
    for table in Tables.ALL:
        named = mapping.table(table).file
        if named:
            candidate = storage.join(path, named)
            if not storage.exists(candidate):
                raise DataError(f"{candidate}: file for table '{table}' named in the mapping does not exist")
            found[table] = candidate
            continue
        for suffix in PARQUET_SUFFIXES + CSV_SUFFIXES:
            if f"{table}{suffix}" in names and storage.is_file(storage.join(path, f"{table}{suffix}")):
                found[table] = storage.join(path, f"{table}{suffix}")
                break
        else:
            if table in names and storage.is_dir(storage.join(path, table)):
                found[table] = storage.join(path, table)
    if Tables.transactions not in found:
        if not found and any(n.lower().endswith(PARQUET_SUFFIXES) for n in names):
            return {Tables.transactions: path}  # a folder of Parquet parts of one table
        raise DataError(f"{path}: no transactions file (looked for transactions.parquet, transactions.csv or a "
                        f"transactions/ folder)")
    return found


def _protected_columns(mapping: TableMapping, schema: TableSchema) -> set[str]:
    """Source columns holding ids or text: read as text so '00123' keeps its zeros."""
    textual = {c for c, kind in schema.kinds.items() if kind in (ID, TEXT, MONTH_DAY)}
    if mapping.is_identity:
        return textual
    return {src for canonical, src in mapping.rename.items() if canonical in textual}


def _numeric_columns(frame: pd.DataFrame, columns: list[str], decimal: str | None, thousands: str | None
                     ) -> dict[str, pd.Series]:
    """The columns among ``columns`` whose every value is a number, as numbers.

    Columns are converted in batches of about :data:`features.limits.CELLS_PER_BATCH` cells, so a wide file
    with few rows costs a few conversions instead of one per column, and a long file still one column at a
    time."""
    out: dict[str, pd.Series] = {}
    per_batch = max(1, CELLS_PER_BATCH // max(1, len(frame)))
    for start in range(0, len(columns), per_batch):
        batch = columns[start:start + per_batch]
        if len(batch) == 1:
            text = frame[batch[0]]
            numbers = to_number(text, decimal, thousands)
            if numbers.notna().sum() == text.notna().sum() and text.notna().any():
                out[batch[0]] = numbers
            continue
        cells = frame[batch].to_numpy(dtype=object).ravel(order="F")  # column after column
        present = pd.notna(cells).reshape(len(frame), len(batch), order="F")
        numbers = to_number(pd.Series(cells, dtype="str"), decimal, thousands).to_numpy()
        numbers = numbers.reshape(len(frame), len(batch), order="F")
        is_numeric = (present == ~np.isnan(numbers)).all(axis=0) & present.any(axis=0)
        for j in np.flatnonzero(is_numeric):
            out[batch[j]] = pd.Series(numbers[:, j], index=frame.index, name=batch[j])
    return out


def _read_csv(path: Path, name: str, mapping: TableMapping, schema: TableSchema
              ) -> tuple[pd.DataFrame, list[csvlines.LongLine]]:
    """A local CSV file as text cells, number columns converted (see :func:`read_source`)."""
    options: dict[str, Any] = {"sep": "\t"} if name.lower().endswith(".tsv") else {}
    options.update(mapping.read)
    long_lines = csvlines.scan(path, options.get("sep") or options.get("delimiter") or ",")
    if long_lines:
        with csvlines.without(path, long_lines) as stream:  # decompressed already
            frame = pd.read_csv(stream, dtype="str", **{**options, "compression": None})
    else:
        frame = pd.read_csv(path, dtype="str", **options)
    protected = _protected_columns(mapping, schema)
    numeric = _numeric_columns(frame, [c for c in frame.columns if c not in protected],
                               options.get("decimal"), options.get("thousands"))
    if numeric:
        # One new frame, not a column assignment per numeric column: each assignment costs time in
        # the number of columns, so a file with 100,000 columns took hours.
        frame = pd.DataFrame({c: numeric.get(c, v) for c, v in frame.items()}, index=frame.index)
    return frame, long_lines


def read_source(path: Location, mapping: TableMapping, schema: TableSchema
                ) -> tuple[pd.DataFrame, list[csvlines.LongLine]]:
    """Read one table's source file as it is (no mapping yet), and the CSV lines set aside as too long.

    CSV cells are read as text; columns other than ids and text whose every value is a number become numbers,
    so expressions like ``Quantity * UnitPrice`` work on CSV and Parquet alike. Lines longer than
    :func:`features.limits.line_limit` never reach pandas (see :mod:`features.csvlines`). A URL's Parquet is
    read where it lies; a URL's CSV is copied to a temporary local file first (the long-line pass reads it twice).

    Raises
    ------
    DataError
        The file cannot be read.
    """
    long_lines: list[csvlines.LongLine] = []
    try:
        if _is_parquet(path):
            frame = pd.read_parquet(path)
        elif _is_csv(path):
            with storage.local_copy(path) as local:
                frame, long_lines = _read_csv(local, storage.name_of(path), mapping, schema)
        else:
            raise DataError(f"{path}: unsupported file type (use .csv, .csv.gz, .tsv or .parquet)")
    except DataError:
        raise
    except Exception as exc:  # any reader failure is reported as one line naming the file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read {schema.name} ({first})") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame, long_lines


def _with_long_lines(result: TableResult, long_lines: list[csvlines.LongLine], columns: list[str],
                     encoding: str | None, erasures: ErasureList | None = None) -> TableResult:
    """Count the lines set aside as rejected rows (``line_too_long``), with an excerpt in the first column, and
    give every other rejected row its row number in the source again. An excerpt that holds an erased customer's
    id anywhere is withheld: an erased customer's raw data never reaches a rejects file."""
    rejects = result.rejects.copy()
    rejects["row"] = csvlines.original_rows(rejects["row"].to_numpy(dtype=np.int64), long_lines)
    long = pd.DataFrame({"row": [line.row for line in long_lines], "reason": csvlines.LINE_TOO_LONG})
    if columns:
        excerpts = [csvlines.excerpt_text(line, encoding) for line in long_lines]
        long[columns[0]] = [_WITHHELD if erasures and _names_erased(text, erasures) else text for text in excerpts]
    rejects = pd.concat([rejects, long], ignore_index=True).sort_values("row", kind="stable", ignore_index=True)
    report = result.report
    counts = {**report.rejected_by_reason, csvlines.LINE_TOO_LONG: len(long_lines)}
    report = replace(report, rows_read=report.rows_read + len(long_lines),
                     rows_rejected=report.rows_rejected + len(long_lines),
                     rejected_by_reason=dict(sorted(counts.items(), key=lambda kv: -kv[1])))
    return TableResult(frame=result.frame, rejects=rejects, report=report)


_WITHHELD = "(excerpt withheld: it names an erased customer)"
_FIELD_SEPARATORS = re.compile(r"[,;\t|\"']+")


def _names_erased(text: str, erasures: ErasureList) -> bool:
    """Whether any field of an excerpt (whatever the separator) is the id of an erased customer."""
    fields = pd.Series([f.strip() for f in _FIELD_SEPARATORS.split(text) if f.strip()], dtype="str")
    return bool(erasures.rows(fields)[0].any())


@dataclass
class Dataset:
    """Validated canonical tables with the report and rejected rows of each."""

    tables: dict[str, pd.DataFrame]
    reports: dict[str, TableReport]
    rejects: dict[str, pd.DataFrame]
    source: str
    mapping: str
    erased_customers: int = 0  # distinct customers on the erasure list whose rows were dropped
    links: Links = field(default_factory=Links.none)  # ids of one person merged into its canonical id

    @property
    def transactions(self) -> pd.DataFrame:
        return self.tables[Tables.transactions]

    def get(self, table: str) -> pd.DataFrame | None:
        """The table, or None when the data has none."""
        return self.tables.get(table)

    def report(self) -> dict[str, Any]:
        """The validation report: transaction counts at the top level, every table under ``tables``."""
        tx = self.reports[Tables.transactions]
        out: dict[str, Any] = {
            "source": self.source,
            "mapping": self.mapping,
            "rows_read": tx.rows_read,
            "rows_kept": tx.rows_kept,
            "rows_rejected": tx.rows_rejected,
            "rejected_by_reason": tx.rejected_by_reason,
        }
        out.update(transaction_summary(self.transactions))
        out["duplicates"] = tx.details.get("duplicates", 0)
        out["returns"] = tx.details.get("returns", {"rows": 0, "amount": 0.0})
        out["erased_rows"] = sum(r.rows_erased for r in self.reports.values())
        out["erased_customers"] = self.erased_customers
        out["tables"] = {name: r.as_dict() for name, r in self.reports.items()}
        caps = capabilities(self.tables)
        out["capabilities"] = caps
        out["notes"] = _capability_notes(caps)
        return out

    def write_rejects(self, out_dir: str | Path) -> dict[str, str]:
        """Write each table's rejected rows (row number, reason, source columns) as CSV; returns the paths."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = {}
        for table, rejects in self.rejects.items():
            target = out_dir / f"{table}.rejects.csv"
            write_csv(rejects, target)  # raw ids and values: neutralised, a spreadsheet must not run them
            written[table] = str(target)
        if self.links:
            # The audit of merges: which ids became which customer, by which kinds of key (no key values).
            target = out_dir / "identities.merges.csv"
            write_csv(self.links.audit, target)
            written["identities.merges"] = str(target)
        return written


def _capability_notes(caps: dict[str, bool]) -> list[str]:
    notes = []
    if not caps["recommendations"]:
        notes.append("transactions have no product_id: churn, CLV and segments only, no recommendations")
    if not caps["consent"]:
        notes.append("no customers.consent_profiling: every customer is treated as consenting to profiling")
    if not caps["category_filters"]:
        notes.append("no products table with category: category filters and per-category popularity are off")
    return notes


def load_dataset(path: str | Path, mapping: str | Path | DatasetMapping | None = None,
                 erasures: ErasureList | None = None) -> Dataset:
    """Load, map and validate a dataset.

    Parameters
    ----------
    path
        A transactions file (CSV or Parquet) or a folder with one file per table.
    mapping
        A column-mapping YAML file (or parsed mapping); ``None`` when the data is in canonical names.
    erasures
        Erased customers: every row of theirs, in every table, is dropped before any row is kept or rejected
        (never in a table, never in a rejects file), and counted in the report.

    Returns
    -------
    Dataset
        Canonical tables; transactions are required, the others present when the data has them.

    Raises
    ------
    DataError
        Unreadable file, missing required column, or no usable row.
    ConfigError
        The mapping is malformed.
    """
    dataset_mapping = mapping if isinstance(mapping, DatasetMapping) else load_mapping(mapping)
    sources = find_sources(path, dataset_mapping)
    tables, reports, rejects = {}, {}, {}
    erased: set[str] = set()
    links = Links.none()
    # The identities table first: an erasure of any id of a person erases every id linked to it, in every table.
    for table in sorted(sources, key=lambda name: name != Tables.identities):
        if table == Tables.identities:
            links, erasures, result = read_identities(sources[table], dataset_mapping.table(table), erasures)
        else:
            result = _read_and_validate(sources[table], dataset_mapping.table(table), SCHEMAS[table], erasures)
        tables[table], reports[table], rejects[table] = result.frame, result.report, result.rejects
        erased |= result.erased
    if links:
        tables = apply_links(tables, links)
    _cross_table_checks(tables, reports)
    return Dataset(tables=tables, reports=reports, rejects=rejects, source=str(path),
                   mapping=str(dataset_mapping.path) if dataset_mapping.path else "canonical",
                   erased_customers=len(erased), links=links)


def _read_and_validate(file: Location, table_mapping: Any, schema: TableSchema, erasures: ErasureList | None,
                       read: tuple[pd.DataFrame, list[Any]] | None = None) -> TableResult:
    raw, long_lines = read if read is not None else read_source(file, table_mapping, schema)
    result = validate_table(raw, schema, table_mapping, str(file), erasures=erasures)
    if long_lines:
        result = _with_long_lines(result, long_lines, list(raw.columns), table_mapping.read.get("encoding"), erasures)
    return result


def read_identities(file: Location, table_mapping: Any, erasures: ErasureList | None
                    ) -> tuple[Links, ErasureList | None, TableResult]:
    """Read, validate and link the identities table (the one place both engines do it, on the client).

    Returns
    -------
    (Links, ErasureList or None, TableResult)
        The persons behind the ids (erased persons left out), the erasure list widened to every id linked to an
        erased one (an erasure of any id of a person erases them all, in every table), and the validated table
        with its report (the links' counts in its details).
    """
    schema = SCHEMAS[Tables.identities]
    read = read_source(file, table_mapping, schema)
    links = link_customers(validate_table(read[0], schema, table_mapping, str(file), allow_empty=True).frame)
    if erasures and links:
        gone = links.linked(erasures.among(links.ids()))
        erasures, links = erasures.with_ids(gone), links.without(gone)
    result = _read_and_validate(file, table_mapping, schema, erasures, read)
    if links:
        result.report.details.update(links.details)
    return links, erasures, result


def _cross_table_checks(tables: dict[str, pd.DataFrame], reports: dict[str, TableReport]) -> None:
    """Counts of references the other tables do not know (kept: the catalogue may simply lag the log)."""
    tx = tables[Tables.transactions]
    products = tables.get(Tables.products)
    customers = tables.get(Tables.customers)
    details = reports[Tables.transactions].details
    if products is not None and C.product_id in tx.columns:
        details["products_missing_from_catalogue"] = _unknown(tx[C.product_id], products[C.product_id])
    if customers is not None:
        details["customers_missing_from_customers_table"] = _unknown(tx[C.customer_id], customers[C.customer_id])


def _unknown(values: pd.Series, known: pd.Series) -> int:
    """Distinct ``values`` not among ``known`` (an index lookup: Series.isin on a long list is slow). The codes
    are remembered: the customer features factorise these id columns again."""
    return int((factorize(known)[1].get_indexer(factorize(values)[1]) < 0).sum())
