"""Serving folders compiled once into the flat arrays of :mod:`serving.compiled` (the compile step).

The compiled folder is written next to the downloaded version and renamed into place when complete, so a
worker either finds a whole one or compiles it itself (under a file lock, see :mod:`serving.registry`);
:func:`compile_in_subprocess` keeps the peak memory of a large compile out of the worker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from serving.compiled import NULL_INT, Bundle
from training.layout import (CHANNELS_FILE, INVENTORY_FILE, MOMENTS_FILE, ArtifactError, read_campaign_reports,
                             read_manifest)
from features.settings import CLV, RECOMMENDER, UPLIFT

_BATCH_ROWS = 1 << 20


# --------------------------------------------------------------------------------------------- encoding helpers

class StringCodes:
    """A growing table of distinct strings and their integer codes (order of first appearance)."""

    def __init__(self, values: Iterable[str] = ()):
        self.index: dict[str, int] = {}
        for value in values:
            self.index.setdefault(value, len(self.index))

    def __len__(self) -> int:
        return len(self.index)

    def encode(self, array: pa.Array | pa.ChunkedArray, *, add: bool = True) -> np.ndarray:
        """int32 codes of an Arrow string column; nulls (and unknown values when ``add`` is False) get -1."""
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if not pa.types.is_dictionary(array.type):
            if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
                array = pc.cast(array, pa.string())
            array = pc.dictionary_encode(array)
        index = self.index
        if add:
            lut = [index.setdefault(v, len(index)) if v is not None else -1
                   for v in array.dictionary.to_pylist()]
        else:
            lut = [index.get(v, -1) if v is not None else -1 for v in array.dictionary.to_pylist()]
        lut_arr = np.array(lut + [-1], dtype=np.int32)
        indices = pc.fill_null(array.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        return lut_arr[indices]

    def values(self) -> list[str]:
        return list(self.index)


def _csr(groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Offsets (n_groups + 1) of rows already sorted by group."""
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(groups, minlength=n_groups), out=offsets[1:])
    return offsets


def _small_codes(codes: np.ndarray, table_size: int) -> np.ndarray:
    """Reason codes in the narrowest integer type that holds the table (uint16 saves 200 MB per 100M rows)."""
    return codes.astype(np.uint16) if table_size < 2**16 else codes.astype(np.int32)


def _floats(array: pa.ChunkedArray | pa.Array, dtype: Any = np.float64) -> np.ndarray:
    return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _ints(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False)


def _bools(array: pa.ChunkedArray | pa.Array, default: bool) -> np.ndarray:
    return pc.fill_null(pc.cast(array, pa.bool_()), default).to_numpy(zero_copy_only=False).astype(bool)


def _sort_rows(groups: np.ndarray, rank: np.ndarray) -> np.ndarray | None:
    """Permutation sorting rows by (group, rank), or None when they are already in that order."""
    if len(groups) < 2:
        return None
    dg = np.diff(groups)
    if np.all(dg >= 0) and np.all((dg > 0) | (np.diff(rank) > 0)):
        return None
    return np.lexsort((rank, groups))


# ------------------------------------------------------------------------------------------------- recommender

def compile_recommender(folder: Path, out: Path) -> None:
    """Compile a recommender serving folder into ``out`` (see the module docstring)."""
    manifest = read_manifest(folder, RECOMMENDER)
    b = Bundle({"kind": RECOMMENDER, "manifest": manifest})

    products = pq.read_table(folder / "products.parquet",
                             columns=["product_id", "name", "category", "price", "in_stock"])
    pid = StringCodes()
    codes = pid.encode(products["product_id"])
    if len(pid) != products.num_rows or (codes < 0).any():
        raise ArtifactError(f"{folder / 'products.parquet'}: product_id has nulls or duplicates")
    categories = StringCodes()
    names: list[str | None] = products["name"].cast(pa.string()).to_pylist()
    category = categories.encode(products["category"]).tolist()
    price = _floats(products["price"]).tolist()
    in_stock = _bools(products["in_stock"], True).tolist()
    new_arrival = (_bools(pq.read_table(folder / "products.parquet", columns=["new"])["new"], False).tolist()
                   if "new" in pq.read_schema(folder / "products.parquet").names else [False] * len(in_stock))
    n_known = len(pid)

    def product_codes(array: pa.Array | pa.ChunkedArray, what: str) -> np.ndarray:
        out_codes = pid.encode(array)
        if (out_codes < 0).any():
            raise ArtifactError(f"{folder / what}: product id is null")
        return out_codes

    customers = StringCodes()
    reasons = StringCodes([""])

    # Recommendations: read in batches with string columns dictionary-encoded, so 100M rows never exist as
    # Python or Arrow strings at once.
    rec_file = pq.ParquetFile(folder / "recommendations.parquet",
                              read_dictionary=["customer_id", "product_id", "reason"])
    n = rec_file.metadata.num_rows
    r_cust = np.empty(n, np.int32)
    r_rank = np.empty(n, np.int32)
    r_item = np.empty(n, np.int32)
    r_score = np.empty(n, np.float32)
    r_reason = np.empty(n, np.int32)
    pos = 0
    for batch in rec_file.iter_batches(batch_size=_BATCH_ROWS,
                                       columns=["customer_id", "rank", "product_id", "score", "reason"]):
        m = batch.num_rows
        sl = slice(pos, pos + m)
        r_cust[sl] = customers.encode(batch.column("customer_id"))
        r_rank[sl] = _ints(batch.column("rank"))
        r_item[sl] = product_codes(batch.column("product_id"), "recommendations.parquet")
        r_score[sl] = np.nan_to_num(_floats(batch.column("score"), np.float32), nan=0.0)
        r_reason[sl] = np.maximum(reasons.encode(batch.column("reason")), 0)
        pos += m
    if (r_cust < 0).any():
        raise ArtifactError(f"{folder / 'recommendations.parquet'}: customer_id is null")
    order = _sort_rows(r_cust, r_rank)
    if order is not None:  # the contract says sorted; tolerate a producer that did not
        r_cust, r_item, r_score, r_reason = r_cust[order], r_item[order], r_score[order], r_reason[order]
    del r_rank, order

    bought = pq.read_table(folder / "bought.parquet", columns=["customer_id", "product_id"],
                           read_dictionary=["customer_id", "product_id"])
    b_cust = customers.encode(bought["customer_id"])
    b_item = product_codes(bought["product_id"], "bought.parquet")
    keep = b_cust >= 0
    b_cust, b_item = b_cust[keep], b_item[keep]

    similar = pq.read_table(folder / "similar.parquet",
                            columns=["product_id", "rank", "similar_product_id", "score", "reason"])
    s_src = product_codes(similar["product_id"], "similar.parquet")
    s_item = product_codes(similar["similar_product_id"], "similar.parquet")
    s_rank = _ints(similar["rank"])
    s_score = np.nan_to_num(_floats(similar["score"], np.float32), nan=0.0)
    s_reason = np.maximum(reasons.encode(similar["reason"]), 0)

    popular = pq.read_table(folder / "popular.parquet", columns=["scope", "key", "rank", "product_id", "score",
                                                                  "reason"])
    scopes = popular["scope"].cast(pa.string()).to_pylist()
    keys = popular["key"].cast(pa.string()).to_pylist()
    groups = StringCodes()
    p_group = np.array([groups.index.setdefault(f"{s}\x1f{k or ''}", len(groups.index))
                        for s, k in zip(scopes, keys)], dtype=np.int32)
    p_item = product_codes(popular["product_id"], "popular.parquet")
    p_rank = _ints(popular["rank"])
    p_score = np.nan_to_num(_floats(popular["score"], np.float32), nan=0.0)
    p_reason = np.maximum(reasons.encode(popular["reason"]), 0)

    cust_table = pq.read_table(folder / "customers.parquet", columns=["customer_id", "region", "consent_profiling"])
    c_codes = customers.encode(cust_table["customer_id"])
    regions = StringCodes()
    c_region = regions.encode(cust_table["region"])
    c_consent = _bools(cust_table["consent_profiling"], True)

    n_cust, n_prod = len(customers), len(pid)
    # Products only the other tables mention: unknown attributes, and out of stock so default filters hide them.
    extra = n_prod - n_known
    names += [None] * extra
    category += [-1] * extra
    price += [float("nan")] * extra
    in_stock += [False] * extra
    new_arrival += [False] * extra

    region = np.full(n_cust, -1, np.int32)
    consent = np.ones(n_cust, bool)
    valid = c_codes >= 0
    region[c_codes[valid]] = c_region[valid]
    consent[c_codes[valid]] = c_consent[valid]

    b_order = np.lexsort((b_item, b_cust))
    b_cust, b_item = b_cust[b_order], b_item[b_order]
    # Whether each recommended product was bought before the cutoff: one mask turns exclude_bought into a slice.
    bought_keys = b_cust.astype(np.int64) * n_prod + b_item
    rec_bought = np.zeros(n, bool)
    if len(bought_keys):
        for start in range(0, n, _BATCH_ROWS * 8):
            sl = slice(start, start + _BATCH_ROWS * 8)
            keys_chunk = r_cust[sl].astype(np.int64) * n_prod + r_item[sl]
            at = np.minimum(np.searchsorted(bought_keys, keys_chunk), len(bought_keys) - 1)
            rec_bought[sl] = bought_keys[at] == keys_chunk

    # Each customer's rows are stored with what the default filters allow (in stock, not bought before) first,
    # in rank order, then the rest, in rank order: the storefront's usual request is then one slice of the
    # first n rows, no mask at all. The original rank keeps the other filters exact.
    rec_offsets = _csr(r_cust, n_cust)
    ok = np.array(in_stock, bool)[r_item] & ~rec_bought
    rank = np.arange(n, dtype=np.int64) - rec_offsets[r_cust]
    order = np.argsort(r_cust.astype(np.int64) * 2 + ~ok, kind="stable")
    r_item, r_score, r_reason, rec_bought, rank = (r_item[order], r_score[order], r_reason[order],
                                                   rec_bought[order], rank[order])
    ok_count = np.bincount(r_cust[ok], minlength=n_cust).astype(np.int32)
    del order, ok
    s_order = np.lexsort((s_rank, s_src))
    p_order = np.lexsort((p_rank, p_group))
    n_reasons = len(reasons)

    b.arrays.update({
        "prod_in_stock": np.array(in_stock, bool), "prod_price": np.array(price, np.float64),
        "prod_category": np.array(category, np.int32), "prod_new": np.array(new_arrival, bool),
        "cust_region": region, "cust_consent": consent,
        "rec_offsets": rec_offsets, "rec_ok_count": ok_count, "rec_items": r_item, "rec_scores": r_score,
        "rec_reasons": _small_codes(r_reason, n_reasons), "rec_bought": rec_bought,
        "rec_rank": rank.astype(np.uint8 if rank.max(initial=0) < 2**8 else np.uint16 if rank.max(initial=0) < 2**16
                                else np.int32),
        "bought_offsets": _csr(b_cust, n_cust), "bought_items": b_item,
        "sim_offsets": _csr(s_src[s_order], n_prod), "sim_items": s_item[s_order],
        "sim_scores": s_score[s_order], "sim_reasons": _small_codes(s_reason[s_order], n_reasons),
        "pop_offsets": _csr(p_group[p_order], len(groups)), "pop_items": p_item[p_order],
        "pop_scores": p_score[p_order], "pop_reasons": _small_codes(p_reason[p_order], n_reasons),
    })
    b.strings.update({
        "product_ids": pid.values(), "product_names": names, "categories": categories.values(),
        "customer_ids": customers.values(), "regions": regions.values(), "reasons": reasons.values(),
        "pop_groups": groups.values(),
    })
    _compile_store_tables(folder, pid, n_prod, b)
    b.save(out)


def _compile_store_tables(folder: Path, pid: StringCodes, n_prod: int, b: Bundle) -> None:
    """The optional inventory and channel tables: store stock as offsets and sorted product codes per store
    (``stock_*``), channel boosts as one row of ``n_prod`` per channel (``chan_boost``); products they name that
    no other table does are left out (the model cannot recommend them)."""
    if (folder / INVENTORY_FILE).exists():
        stock = pq.read_table(folder / INVENTORY_FILE, columns=["store_id", "product_id"])
        stores = StringCodes()
        store = stores.encode(stock["store_id"])
        item = pid.encode(stock["product_id"], add=False)
        keep = (store >= 0) & (item >= 0)
        store, item = store[keep], item[keep]
        order = np.lexsort((item, store))
        b.arrays.update({"stock_offsets": _csr(store[order], len(stores)), "stock_items": item[order]})
        b.strings["stock_stores"] = stores.values()
    if (folder / CHANNELS_FILE).exists():
        table = pq.read_table(folder / CHANNELS_FILE, columns=["channel", "product_id", "boost"])
        channels = StringCodes()
        channel = channels.encode(table["channel"])
        item = pid.encode(table["product_id"], add=False)
        keep = (channel >= 0) & (item >= 0)
        boost = np.zeros((len(channels), n_prod), np.float32)
        boost[channel[keep], item[keep]] = np.nan_to_num(_floats(table["boost"], np.float32), nan=0.0)[keep]
        b.arrays["chan_boost"] = boost
        b.strings["channels"] = channels.values()


def _compile_columns(table: pa.Table, prefix: str, bundle: Bundle) -> dict[str, dict[str, Any]]:
    """Arrays of every column but customer_id; returns the column specs for meta.json."""
    specs: dict[str, dict[str, Any]] = {}
    for name in table.column_names:
        if name == "customer_id":
            continue
        col = table[name].combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        t = col.type
        key = f"{prefix}{len(specs)}"
        spec: dict[str, Any] = {"key": key}
        if pa.types.is_boolean(t):
            spec["kind"] = "bool"
            values = np.where(col.is_valid().to_numpy(zero_copy_only=False),
                              _bools(col, False).astype(np.int8), np.int8(-1)).astype(np.int8)
        elif pa.types.is_integer(t):
            spec["kind"] = "int"
            values = _ints(col)
            if col.null_count:
                bundle.arrays[f"{key}_valid"] = col.is_valid().to_numpy(zero_copy_only=False)
                spec["valid"] = True
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            spec["kind"] = "float"
            values = _floats(col)
        elif pa.types.is_timestamp(t):
            spec["kind"] = "time"
            spec["tz"] = t.tz
            values = pc.fill_null(pc.cast(pc.cast(col, pa.timestamp("us", t.tz)), pa.int64()),
                                  NULL_INT).to_numpy(zero_copy_only=False)
        elif pa.types.is_date(t):
            spec["kind"] = "date"
            values = pc.fill_null(pc.cast(pc.cast(col, pa.date32()), pa.int32()).cast(pa.int64()),
                                  NULL_INT).to_numpy(zero_copy_only=False)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            spec["kind"] = "list"
            col = pc.fill_null(col, pa.scalar([], type=t)) if col.null_count else col
            flat = col.flatten()
            table_codes = StringCodes()
            codes = table_codes.encode(flat)
            bundle.arrays[f"{key}_offsets"] = np.asarray(col.offsets.to_numpy(zero_copy_only=False),
                                                         np.int64) - int(col.offsets[0].as_py())
            bundle.strings[f"{key}_table"] = table_codes.values()
            values = codes
        else:
            spec["kind"] = "str"
            table_codes = StringCodes()
            values = table_codes.encode(col)
            bundle.strings[f"{key}_table"] = table_codes.values()
        bundle.arrays[key] = values
        specs[name] = spec
    return specs


def _compile_table(path: Path, prefix: str, bundle: Bundle, one_row_per_customer: bool = True) -> None:
    table = pq.read_table(path)
    ids = pc.cast(table["customer_id"], pa.string())
    if ids.null_count:
        raise ArtifactError(f"{path}: customer_id has nulls")
    bundle.strings[f"{prefix}ids"] = ids.to_pylist()
    if one_row_per_customer and len(set(bundle.strings[f"{prefix}ids"])) != table.num_rows:
        raise ArtifactError(f"{path}: customer_id has duplicates")
    bundle.meta.setdefault("tables", {})[prefix] = {"file": path.name,
                                                    "columns": _compile_columns(table, prefix, bundle)}


def compile_scores(folder: Path, out: Path, kind: str) -> None:
    """Compile a churn (scores), CLV (scores and profiles) or uplift (scores and campaign reports) serving folder
    into ``out``."""
    manifest = read_manifest(folder, kind)
    bundle = Bundle({"kind": kind, "manifest": manifest})
    _compile_table(folder / "scores.parquet", "s", bundle)
    if kind == CLV:
        _compile_table(folder / "profiles.parquet", "p", bundle)
        if (folder / MOMENTS_FILE).exists():  # several moments per customer
            _compile_table(folder / MOMENTS_FILE, "m", bundle, one_row_per_customer=False)
    if kind == UPLIFT:
        campaigns = read_campaign_reports(folder)
        if campaigns is not None:  # small (aggregates per campaign and segment): kept whole in meta.json
            bundle.meta["campaigns"] = campaigns
    bundle.save(out)


def compile_folder(kind: str, folder: Path, out: Path) -> None:
    """Compile the serving folder of a model of ``kind``."""
    if kind == RECOMMENDER:
        compile_recommender(folder, out)
    else:
        compile_scores(folder, out, kind)


def rows_in(folder: Path) -> int:
    """Rows in all Parquet files of a serving folder (from their footers)."""
    return sum(pq.ParquetFile(path).metadata.num_rows for path in folder.glob("*.parquet"))


def compile_in_subprocess(kind: str, folder: Path, out: Path) -> None:
    """Compile in a child process: its peak memory (several GB for 100M rows) goes back to the system when it
    ends, where a worker's heap would keep it."""
    result = subprocess.run([sys.executable, "-m", "serving.compile", kind, str(folder), str(out)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise ArtifactError(f"compiling {folder} failed: {lines[-1] if lines else f'exit {result.returncode}'}")


if __name__ == "__main__":  # python -m serving.compile KIND FOLDER OUT (see compile_in_subprocess)
    try:
        compile_folder(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
