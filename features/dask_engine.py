"""The feature pipeline on Dask: validate each Parquet part, bucket rows by customer, then run the very same
pandas feature functions on each customer bucket.

Every customer feature depends on that customer's rows only, so hashing customers into buckets gives results
identical to the pandas engine; buckets keep the source order of rows, so sums add up in the same order too.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow.parquet as pq

from features import storage
from features.columns import Columns as C
from features.columns import Tables
from features.csvsafe import write_csv
from features.config import FeatureConfig
from features.exceptions import ClusterError, DataError
from features.io import PARQUET_SUFFIXES, find_sources, read_identities
from features.linking import Links, apply_links
from features.mapping import DatasetMapping, apply_mapping, load_mapping
from features.privacy import ErasureList
from features.schema import SCHEMAS, TIMESTAMP
from features.storage import Location
from features.timestamps import SAMPLE_ROWS, DateFormat, date_sample, infer_format
from features.validation import (TableReport, column_where, reject_duplicates, returns_summary, strip_text,
                                 validate_table)

# Rows per validation task: big enough to amortise task overhead, small enough for 2 GB workers.
ROWS_PER_PART = 2_000_000


@dataclass(frozen=True)
class Part:
    """A slice of a Parquet source: whole row groups of one file, its first row's number in the table and its
    size in memory (uncompressed bytes, from the file's metadata). ``file`` is an absolute path or a URL."""

    table: str
    file: str
    row_groups: tuple[int, ...]
    row_offset: int
    source: str
    nbytes: int = 0


def parquet_parts(table: str, path: Location, rows_per_part: int = ROWS_PER_PART) -> list[Part]:
    """Split a Parquet file or folder of parts (a path or a URL) into tasks of whole row groups, in source
    order."""
    if storage.is_dir(path):
        files = [f for f in storage.files_under(path) if storage.name_of(f).lower().endswith(PARQUET_SUFFIXES)]
    elif storage.name_of(path).lower().endswith(PARQUET_SUFFIXES):
        files = [path]
    else:
        raise DataError(f"{path}: the dask engine reads Parquet (a file or a folder of parts); convert CSV first "
                        f"or use --engine pandas")
    parts, offset = [], 0
    for file in files:
        try:
            with _parquet_file(file) as parquet:
                meta = parquet.metadata
        except DataError:
            raise
        except Exception as exc:  # one line naming the file, whatever pyarrow says
            raise DataError(f"{file}: cannot read {table} ({storage.first_line(exc)})") from None
        group: list[int] = []
        rows = nbytes = 0
        for rg in range(meta.num_row_groups):
            group.append(rg)
            rows += meta.row_group(rg).num_rows
            nbytes += meta.row_group(rg).total_byte_size
            if rows >= rows_per_part:
                parts.append(Part(table, str(file), tuple(group), offset, str(path), nbytes))
                offset, group, rows, nbytes = offset + rows, [], 0, 0
        if group or meta.num_row_groups == 0:
            parts.append(Part(table, str(file), tuple(group), offset, str(path), nbytes))
            offset += rows
    return parts


@contextmanager
def _parquet_file(location: Location) -> Iterator[pq.ParquetFile]:
    """A Parquet file at a local path (pyarrow reads it natively) or a URL (through its fsspec filesystem)."""
    if not storage.is_url(location):
        with pq.ParquetFile(location) as parquet:
            yield parquet
        return
    with storage.open_binary(location) as handle, pq.ParquetFile(handle) as parquet:
        yield parquet


def _read_part(part: Part) -> pd.DataFrame:
    """One part's rows (on a worker); a file that cannot be read is one line naming it, never a traceback."""
    try:
        with _parquet_file(part.file) as parquet:
            table = parquet.read_row_groups(list(part.row_groups)) if part.row_groups else parquet.read()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{part.file}: cannot read {part.table} ({storage.first_line(exc)})") from None
    frame = table.to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    return frame


def customer_bucket(customer_ids: pd.Series, n_buckets: int) -> pd.Series:
    """Stable bucket of each customer id (the same in every process and run)."""
    return pd.Series(pd.util.hash_pandas_object(customer_ids.astype("str"), index=False).to_numpy() % n_buckets,
                     index=customer_ids.index)


def date_samples(part: Part, mapping: DatasetMapping) -> dict[str, pd.Series]:
    """Distinct values of each text timestamp column of one part, as mapped (one Dask task)."""
    rule = mapping.table(part.table).timestamps
    if rule.format or rule.unit:
        return {}  # the mapping decides: nothing to infer
    frame = apply_mapping(_read_part(part), mapping.table(part.table)).frame
    return {col: date_sample(strip_text(frame[col])) for col, kind in SCHEMAS[part.table].kinds.items()
            if kind == TIMESTAMP and col in frame.columns and not pd.api.types.is_numeric_dtype(frame[col])
            and not pd.api.types.is_datetime64_any_dtype(frame[col])}


def decide_date_formats(table: str, samples: list[dict[str, pd.Series]], mapping: DatasetMapping, source: str
                        ) -> dict[str, DateFormat]:
    """One text date format per timestamp column of ``table``, from the union of every part's sample.

    Each part inferring its own would read ``01/03/2024`` as January 3rd in a part whose days never pass 12 and
    as March 1st in the next; the pandas engine decides once per column, and so does this.

    Raises
    ------
    DataError
        As :func:`features.timestamps.infer_format`: the parts together mix formats or are ambiguous.
    """
    table_mapping = mapping.table(table)
    formats = {}
    for col in sorted({c for sample in samples for c in sample}):
        values = pd.Series(pd.unique(pd.concat([s[col] for s in samples if col in s], ignore_index=True)),
                           dtype="str")
        if len(values) > 10 * SAMPLE_ROWS:
            values = values.sample(10 * SAMPLE_ROWS, random_state=0)
        chosen = infer_format(values, column_where(source, col, table_mapping), f"{table}.timestamps",
                              table_mapping.timestamps.dayfirst)
        if chosen is not None:
            formats[col] = chosen
    return formats


def validate_and_bucket(part: Part, mapping: DatasetMapping, n_buckets: int, keep_before: pd.Timestamp | None,
                        date_formats: dict[str, DateFormat] | None = None, erasures: ErasureList | None = None,
                        links: Links | None = None) -> tuple[dict[int, pd.DataFrame], dict[str, Any]]:
    """Validate one part (erased customers' rows dropped before any rejects file) and split its kept rows into
    customer buckets (one Dask task), by person when ``links`` joins ids (every id of a person in the bucket of
    its canonical id; the rows keep their own ids until :func:`_run_bucket` links them, as the pandas engine does
    after validation).

    The task writes nothing: its rejected rows travel back in the summary and the client writes them, so a task
    run twice (a worker lost, the task retried elsewhere) changes nothing and no file lands on a worker's disk.
    """
    raw = _read_part(part)
    result = validate_table(raw, SCHEMAS[part.table], mapping.table(part.table), part.source,
                            row_offset=part.row_offset, allow_empty=True, defer_duplicates=True,
                            date_formats=date_formats, erasures=erasures)
    frame = result.frame
    summary = {"report": result.report, "start": None, "end": None, "rejects": result.rejects,
               "label": f"part-{part.row_offset:012d}"}
    if C.timestamp in frame.columns and len(frame):
        summary["start"], summary["end"] = frame[C.timestamp].min(), frame[C.timestamp].max()
        if keep_before is not None:
            frame = frame[frame[C.timestamp] < keep_before]
    if C.customer_id not in frame.columns:  # products: small, broadcast whole
        return {-1: frame}, summary
    ids = frame[C.customer_id]
    if links:
        person = ids.map(links.canonical)
        ids = person.where(person.notna(), ids)
    buckets = customer_bucket(ids, n_buckets)
    return {int(b): part_frame for b, part_frame in frame.groupby(buckets.to_numpy(), sort=True)}, summary


def _summary(buckets: tuple[dict[int, pd.DataFrame], dict[str, Any]]) -> dict[str, Any]:
    return buckets[1]


def merge_reports(reports: list[TableReport]) -> TableReport:
    """One table's report from its parts' reports."""
    first = reports[0]
    reasons: dict[str, int] = {}
    for r in reports:
        for k, v in r.rejected_by_reason.items():
            reasons[k] = reasons.get(k, 0) + v
    return TableReport(table=first.table, source=first.source, rows_read=sum(r.rows_read for r in reports),
                       rows_kept=sum(r.rows_kept for r in reports),
                       rows_rejected=sum(r.rows_rejected for r in reports),
                       rows_erased=sum(r.rows_erased for r in reports),
                       rejected_by_reason=dict(sorted(reasons.items(), key=lambda kv: -kv[1])), details={})


# How long a job waits for its first worker to join the scheduler before it stops with one line.
WORKER_WAIT_S = 60


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A Dask client: the given scheduler address, or a LocalCluster of worker processes on this machine.

    Failures of the cluster itself are one line each (:class:`ClusterError`), never a traceback: a scheduler
    that cannot be reached, no worker within :data:`WORKER_WAIT_S`, a task whose every attempt lost its worker
    (usually a worker's memory limit), the connection to the scheduler lost.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"{scheduler}: cannot reach the Dask scheduler ({storage.first_line(exc)}); start "
                               f"one with `dask scheduler` and pass its address (tcp://HOST:8786)") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError:
                raise ClusterError(f"{scheduler}: no Dask worker joined the scheduler in {WORKER_WAIT_S} s; start "
                                   f"workers with `dask worker {scheduler}`") from None
            with cluster_errors():
                yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client, cluster_errors():
        yield client


@contextmanager
def cluster_errors() -> Iterator[None]:
    """Turn what a cluster throws when its workers or scheduler go away into one line (:class:`ClusterError`).

    A worker lost mid-task costs nothing by itself: the scheduler runs its tasks again elsewhere (every task is
    pure). Only a task whose every attempt lost its worker stops the job.
    """
    from distributed.client import FutureCancelledError, FuturesCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    try:
        yield
    except KilledWorker as exc:
        from dask.utils import key_split

        task = key_split(exc.task)
        raise ClusterError(f"Dask: every worker that ran a task ({task}) died, {exc.allowed_failures + 1} in turn "
                           f"(the last {exc.last_worker.address}): usually the worker memory limit (`dask worker "
                           f"--memory-limit`; above distributed.worker.memory.terminate the nanny kills the "
                           f"worker); give workers more memory, or more workers; nothing was written or "
                           f"registered") from None
    except (FutureCancelledError, FuturesCancelledError, CommClosedError) as exc:
        raise ClusterError(f"Dask: the job lost its cluster ({storage.first_line(exc)}); nothing was written or "
                           f"registered; run it again when the scheduler is back") from None


def map_partitions(client: Any, func: Any, shared: Any, partitions: list[Any]) -> Iterator[Any]:
    """``func(shared, part)`` of each of ``partitions`` on the workers of ``client``, yielded in order.

    ``shared`` (a fitted model and what it reads) travels to every worker once (scattered, broadcast), not with
    each task; each task carries its partition only. Each result is released on the cluster once yielded, so
    the client holds one at a time beside what it keeps. A worker lost mid-task costs a retry elsewhere; the
    cluster's own failures are one line (:func:`cluster_errors`).
    """
    with cluster_errors():
        [state] = client.scatter([shared], broadcast=True, hash=False)
        futures = client.map(func, [state] * len(partitions), partitions, pure=False)
        try:
            for k, future in enumerate(futures):
                yield future.result()
                futures[k] = None
                future.release()
        finally:
            client.cancel([state, *(f for f in futures if f is not None)])


def _piece(buckets: tuple[dict[int, pd.DataFrame], dict[str, Any]], bucket: int) -> pd.DataFrame | None:
    """One bucket of one validated part (runs where the part lives, so only that bucket moves)."""
    return buckets[0].get(bucket)


def _empty_like(buckets: tuple[dict[int, pd.DataFrame], dict[str, Any]]) -> pd.DataFrame | None:
    frames = list(buckets[0].values())
    return frames[0].iloc[:0] if frames else None


def _bucket_tables(pieces: dict[str, list[pd.DataFrame | None]], templates: dict[str, pd.DataFrame | None],
                   products: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """One bucket's rows of every table, parts concatenated in source order."""
    tables = {}
    for table, frames in pieces.items():
        frames = [f for f in frames if f is not None]
        if frames:
            tables[table] = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        elif templates.get(table) is not None:
            tables[table] = templates[table]
    if products is not None:
        tables[Tables.products] = products
    return tables


@dataclass
class BucketRun:
    """What :func:`run_bucketed` returns: per-bucket results, the validation reports and the data's time span.

    ``results`` are the results themselves, or Dask futures holding them on the workers when the run was asked
    not to gather (the caller keeps the client open and works on them there).
    """

    results: list[Any]
    reports: dict[str, TableReport]
    start: pd.Timestamp
    end: pd.Timestamp


def run_bucketed(path: Location, mapping: str | Path | DatasetMapping | None, func: Any, func_kwargs: Any,
                 scheduler: str | None = None, n_buckets: int | None = None, rejects_dir: str | Path | None = None,
                 keep_before: pd.Timestamp | None = None, workers: int | None = None, client: Any | None = None,
                 gather: bool = True, erasures: ErasureList | None = None) -> BucketRun:
    """Validate a Parquet dataset part by part on Dask and run ``func(tables, data_end=..., **func_kwargs)`` on
    every customer bucket.

    Parameters
    ----------
    path
        A local path (made absolute here: workers resolve relative paths against their own working directory) or
        an fsspec URL (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``, ``file://``) every worker can read.
    func
        A module-level function taking the bucket's canonical tables; its results come back in bucket order.
    func_kwargs
        Its keyword arguments, or a function of the data's (start, end) returning them (e.g. cutoffs that depend
        on how far the data reaches, known only after validation).
    n_buckets
        Customer buckets; by default twice the workers, more when a bucket would not fit in a worker's memory
        limit (:func:`bucket_count`).
    rejects_dir
        Where the client writes every rejected row (tasks send them back; nothing is written on a worker).
    keep_before
        Drop rows at or after this time right after validation (the pipeline never reads them).
    client
        A Dask client to run on (kept open); by default one is made from ``scheduler`` / ``workers`` and closed.
    gather
        False: leave each bucket's result on its worker and return futures (needs ``client``).
    erasures
        Erased customers: their rows are dropped as each part is validated (never kept, never in a rejects file).

    Raises
    ------
    DataError
        Bad input (one line naming the file, row or column, as the pandas engine), or a worker that cannot read
        the data (naming the path and the worker).
    """
    if client is None:
        if not gather:
            raise ValueError("run_bucketed: gather=False needs a client that stays open")
        with dask_client(scheduler, workers) as own:
            return run_bucketed(path, mapping, func, func_kwargs, n_buckets=n_buckets, rejects_dir=rejects_dir,
                                erasures=erasures,
                                keep_before=keep_before, client=own)
    import dask

    # Every location a task carries must mean the same on every worker: a local path is made absolute here,
    # before any task is built; a URL names storage they share.
    path = storage.absolute(storage.as_location(path))
    dataset_mapping = mapping if isinstance(mapping, DatasetMapping) else load_mapping(mapping)
    sources = find_sources(path, dataset_mapping)
    links, identities = Links.none(), None
    if Tables.identities in sources:
        # Linked on the client, by the pandas engine's own function; the parts are then bucketed by person.
        file = sources.pop(Tables.identities)
        links, erasures, identities = read_identities(file, dataset_mapping.table(Tables.identities), erasures)
        _write_rejects(identities.rejects, rejects_dir, Tables.identities, "all")
    shared_links = client.scatter(Links(canonical=links.canonical, audit=Links.none().audit,
                                        shared_keys=Links.none().shared_keys), broadcast=True) if links else None
    parts = {table: parquet_parts(table, file) for table, file in sources.items()}
    check_workers_can_read(client, [ps[0].file for ps in parts.values() if ps])
    n_buckets = n_buckets or bucket_count(client, [p for ps in parts.values() for p in ps])
    # Text dates: one format per column for the whole table, decided from every part before any part is read.
    samples = client.gather(client.compute(
        {t: [dask.delayed(date_samples, pure=True)(part, dataset_mapping) for part in ps] for t, ps in parts.items()}))
    date_formats = {t: decide_date_formats(t, samples[t], dataset_mapping, str(sources[t])) for t in parts}
    validated: dict[str, list[Any]] = {}
    for table, table_parts in parts.items():
        validated[table] = [dask.delayed(validate_and_bucket, pure=True)(
            part, dataset_mapping, n_buckets, keep_before, date_formats[table], erasures, shared_links)
            for part in table_parts]
    # Materialise the validated parts on the workers once; both the summaries and the buckets read them. A part
    # lost with its worker is validated again from the graph (every task is pure).
    persisted = {t: client.persist(v) for t, v in validated.items()}
    summaries = client.gather(client.compute(
        {t: [dask.delayed(_summary)(d) for d in v] for t, v in persisted.items()}))
    for table, table_summaries in summaries.items():
        for summary in table_summaries:
            _write_rejects(summary["rejects"], rejects_dir, table, summary["label"])
    reports = {t: merge_reports([s["report"] for s in parts]) for t, parts in summaries.items()}
    if identities is not None:
        reports[Tables.identities] = identities.report
    tx_report = reports[Tables.transactions]
    if tx_report.rows_kept == 0:
        top = next(iter(tx_report.rejected_by_reason), "no rows")
        raise DataError(f"{tx_report.source}: no usable row in transactions ({tx_report.rows_read} read; most "
                        f"rejected as {top})")
    ends = [s["end"] for s in summaries[Tables.transactions] if s["end"] is not None]
    end = pd.Timestamp(max(ends))
    products = None
    if Tables.products in persisted:
        product_parts = client.gather(client.compute(
            [dask.delayed(_piece)(d, -1) for d in persisted.pop(Tables.products)]))
        products = pd.concat([p for p in product_parts if p is not None], ignore_index=True)
        products, rejects, found = reject_duplicates(products, SCHEMAS[Tables.products],
                                                     dataset_mapping.table(Tables.products).duplicates)
        _write_rejects(rejects, rejects_dir, Tables.products, "all")
        _count_duplicates(reports[Tables.products], rejects, found)
    # An empty frame of each table for buckets without its rows: from any part that kept a row (the first part may
    # have kept none: all rejected, or all an erased customer's).
    empties = client.gather(client.compute({t: [dask.delayed(_empty_like)(d) for d in v] for t, v in persisted.items()}))
    templates = {t: next((e for e in found if e is not None), None) for t, found in empties.items()}
    policies = {t: dataset_mapping.table(t).duplicates for t in persisted}
    starts = [s["start"] for s in summaries[Tables.transactions] if s["start"] is not None]
    start = pd.Timestamp(min(starts))
    if callable(func_kwargs):
        func_kwargs = func_kwargs(start, end)
    tasks = [dask.delayed(_run_bucket, pure=True)(
        {t: [dask.delayed(_piece)(d, b) for d in v] for t, v in persisted.items()}, templates, products, policies,
        func, end, func_kwargs, shared_links) for b in range(n_buckets)]
    outputs = client.compute(tasks)
    results = client.map(_bucket_result, outputs)
    returns = {"rows": 0, "amount": 0.0}
    for bucket, (duplicates, bucket_returns) in enumerate(client.gather(client.map(_bucket_meta, outputs))):
        for table, (rejects, found) in duplicates.items():
            _write_rejects(rejects, rejects_dir, table, f"bucket-{bucket:04d}")
            _count_duplicates(reports[table], rejects, found)
        returns = {"rows": returns["rows"] + bucket_returns["rows"],
                   "amount": returns["amount"] + bucket_returns["amount"]}
    reports[Tables.transactions].details["returns"] = {"rows": returns["rows"],
                                                       "amount": round(returns["amount"], 2)}
    if gather:
        results = client.gather(results)
    return BucketRun(results=results, reports=reports, start=start, end=end)


def check_workers_can_read(client: Any, files: list[str]) -> None:
    """Ask every worker to open ``files`` before any work starts.

    Raises
    ------
    DataError
        One line naming the first file a worker cannot read, the worker, and why (on a real cluster the usual
        cause: data on the client's own disk, or a filesystem package missing on the workers).
    """
    try:
        answers = client.run(_unreadable, files)
    except Exception as exc:  # the workers cannot even run this function: another environment than the client's
        raise ClusterError(f"Dask workers cannot run clientele's code ({storage.first_line(exc)}); install the "
                           f"same clientele version (`pip install clientele` or this checkout) on every worker") \
            from None
    for worker, problem in sorted(answers.items()):
        if problem:
            file, reason = problem
            raise DataError(f"{file}: the Dask worker {worker} cannot read it ({reason}); every worker must reach "
                            f"the data: a URL of shared storage (s3://, gs://, abfs://, hdfs://) or a file system "
                            f"mounted at the same path on every machine")


def _unreadable(files: list[str]) -> tuple[str, str] | None:
    """On a worker: the first of ``files`` it cannot open and why, or None."""
    for file in files:
        try:
            with storage.open_binary(file) as handle:
                handle.read(4)
        except Exception as exc:
            return file, storage.first_line(exc)
    return None


# A bucket's tables take several times their Parquet size in memory once they are pandas frames and the feature
# functions work on them, next to the validated parts the worker holds: a bucket is sized to this share of the
# memory limit of the smallest worker thread (the limit divided by the worker's threads).
BUCKET_SHARE_OF_WORKER_MEMORY = 0.1


def bucket_count(client: Any, parts: list[Part]) -> int:
    """Customer buckets for ``parts``: twice the workers, or more when the data (uncompressed) would make a
    bucket bigger than :data:`BUCKET_SHARE_OF_WORKER_MEMORY` of a worker thread's share of its memory limit."""
    workers = list(client.scheduler_info()["workers"].values())
    count = max(2, 2 * len(workers))
    per_thread = [(w.get("memory_limit") or 0) / max(1, w.get("nthreads") or 1) for w in workers]
    if per_thread and min(per_thread) > 0:
        per_bucket = BUCKET_SHARE_OF_WORKER_MEMORY * min(per_thread)
        count = max(count, int(-(-sum(p.nbytes for p in parts) // per_bucket)))
    return count


def _bucket_result(output: tuple[Any, dict, dict]) -> Any:
    return output[0]


def _bucket_meta(output: tuple[Any, dict, dict]) -> tuple[dict, dict]:
    return output[1], output[2]


def _write_rejects(rejects: pd.DataFrame, rejects_dir: str | Path | None, table: str, label: str) -> None:
    if rejects_dir and len(rejects):
        out = Path(rejects_dir) / f"{table}.rejects.{label}.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_csv(rejects, out)


def _count_duplicates(report: TableReport, rejects: pd.DataFrame, found: int) -> None:
    """Move rows rejected as duplicates in the bucket stage from kept to rejected in the table's report."""
    report.details["duplicates"] = report.details.get("duplicates", 0) + found
    if len(rejects):
        reason = str(rejects["reason"].iloc[0])
        report.rejected_by_reason[reason] = report.rejected_by_reason.get(reason, 0) + len(rejects)
        report.rejected_by_reason = dict(sorted(report.rejected_by_reason.items(), key=lambda kv: -kv[1]))
        report.rows_kept -= len(rejects)
        report.rows_rejected += len(rejects)


def _run_bucket(pieces: dict[str, list[pd.DataFrame | None]], templates: dict[str, pd.DataFrame | None],
                products: pd.DataFrame | None, policies: dict[str, str], func: Any, data_end: pd.Timestamp,
                kwargs: dict, links: Links | None = None
                ) -> tuple[Any, dict[str, tuple[pd.DataFrame, int]], dict[str, Any]]:
    """Duplicates of a row share its customer, so they meet in one bucket: detect them here, link the ids of one
    person (all in this bucket) into its canonical id as the pandas engine does, then run ``func``."""
    tables = _bucket_tables(pieces, templates, None)
    duplicates = {}
    for table, frame in tables.items():
        tables[table], rejects, found = reject_duplicates(frame, SCHEMAS[table], policies[table])
        duplicates[table] = (rejects, found)  # written by the client, as the parts' rejects are
    if links:
        tables = apply_links(tables, links)
    if products is not None:
        tables[Tables.products] = products
    return func(tables, data_end=data_end, **kwargs), duplicates, returns_summary(tables[Tables.transactions])


def features_on_dask(path: str | Path, mapping: str | Path | None, cutoff: pd.Timestamp,
                     horizon_days: int | None, config: FeatureConfig, scheduler: str | None = None,
                     rejects_dir: str | Path | None = None, n_buckets: int | None = None,
                     workers: int | None = None, erasures: ErasureList | None = None
                     ) -> tuple[pd.DataFrame, dict[str, TableReport]]:
    """Customer features (and labels when the data covers the horizon) computed on Dask, without the rows of
    ``erasures``' customers.

    Returns the same frame as :func:`features.pipeline.feature_frame` on the pandas engine, and the reports.
    """
    from features.pipeline import bucket_features

    keep_before = cutoff + pd.Timedelta(days=horizon_days) if horizon_days else cutoff
    run = run_bucketed(path, mapping, bucket_features,
                       {"cutoff": cutoff, "horizon_days": horizon_days, "config": config},
                       scheduler=scheduler, n_buckets=n_buckets, rejects_dir=rejects_dir,
                       keep_before=keep_before, workers=workers, erasures=erasures)
    frame = pd.concat([r for r in run.results if len(r)], ignore_index=True)
    frame = frame.sort_values(C.customer_id, kind="stable").reset_index(drop=True)
    return frame, run.reports
