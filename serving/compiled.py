"""Compiled serving folders at run time: the flat arrays (.npy) every worker memory-maps and shares, and the
loaded models built on them (:class:`RecommenderPart`, :class:`ScoresPart`).

A recommender of 1M customers x top-100 is 100M (product, score, reason) rows: as int32 / float32 / int32
arrays with per-customer offsets (CSR) it is 1.2 GB, and memory-mapped it sits once in the page cache however
many workers map it. Strings live in small tables (reasons, categories, regions) indexed by integer codes.
:mod:`serving.compile` writes these folders from a model version's serving layout.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from training.layout import ArtifactError
from features.settings import RECOMMENDER

COMPILED_FORMAT = 4


class Bundle:
    """Named numpy arrays and string lists saved side by side in one folder."""

    def __init__(self, meta: dict[str, Any] | None = None):
        self.meta: dict[str, Any] = meta or {}
        self.arrays: dict[str, np.ndarray] = {}
        self.strings: dict[str, list[str | None]] = {}

    def save(self, folder: Path) -> None:
        """Write every array as .npy and every string list as an Arrow IPC file, then meta.json last."""
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, array in self.arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        for name, values in self.strings.items():
            table = pa.table({"v": pa.array(values, type=pa.string())})
            with ipc.new_file(tmp / f"{name}.arrow", table.schema) as writer:
                writer.write_table(table)
        meta = {**self.meta, "compiled_format": COMPILED_FORMAT, "arrays": sorted(self.arrays),
                "strings": sorted(self.strings)}
        (tmp / "meta.json").write_text(json.dumps(meta, default=str))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)

    @staticmethod
    def read_strings(folder: Path, name: str) -> list[str | None]:
        """One string list of a saved bundle."""
        with pa.memory_map(str(folder / f"{name}.arrow")) as source:
            return ipc.open_file(source).read_all().column(0).to_pylist()

    @classmethod
    def load(cls, folder: Path) -> "Bundle":
        """Memory-map the arrays (read-only) and read the string lists, except id lists (read when needed: a
        million ids are 60 MB a worker, and only building a snapshot needs them)."""
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("compiled_format") != COMPILED_FORMAT:
            raise ArtifactError(f"{folder}: compiled with format {meta.get('compiled_format')}, expected "
                                f"{COMPILED_FORMAT}")
        bundle = cls(meta)
        for name in meta["arrays"]:
            # A plain ndarray view of the mapping: np.memmap's Python-level __getitem__ costs microseconds a slice.
            bundle.arrays[name] = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False).view(np.ndarray)
        for name in meta["strings"]:
            if not name.endswith("ids") or name == "product_ids":
                bundle.strings[name] = cls.read_strings(folder, name)
        return bundle


def is_compiled(folder: Path) -> bool:
    """Whether a complete compiled folder of the current format is there."""
    try:
        return json.loads((folder / "meta.json").read_text()).get("compiled_format") == COMPILED_FORMAT
    except (OSError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------ column stores

@dataclass
class Column:
    """One served column: values in a numpy array, strings as codes into a table, lists as offsets + codes."""

    kind: str  # float | int | bool | str | time | date | list
    values: np.ndarray
    valid: np.ndarray | None = None
    table: list[str] | None = None
    offsets: np.ndarray | None = None
    tz: str | None = None

    def take(self, rows: np.ndarray) -> list[Any]:
        """Python values (None for nulls) of ``rows``, JSON-ready."""
        kind = self.kind
        if kind == "list":
            starts, ends = self.offsets[rows], self.offsets[rows + 1]
            table, values = self.table, self.values
            return [[table[c] for c in values[s:e].tolist()] for s, e in zip(starts.tolist(), ends.tolist())]
        raw = self.values[rows]
        if kind == "float":
            out = raw.tolist()
            return [None if v != v else v for v in out]
        if kind == "str":
            table = self.table
            return [table[c] if c >= 0 else None for c in raw.tolist()]
        if kind == "bool":
            return [None if c < 0 else bool(c) for c in raw.tolist()]
        if kind == "time":
            return [_iso_time(v, self.tz) for v in raw.tolist()]
        if kind == "date":
            return [None if v == NULL_INT else (date(1970, 1, 1) + timedelta(days=v)).isoformat()
                    for v in raw.tolist()]
        out = raw.tolist()
        if self.valid is not None:
            ok = self.valid[rows].tolist()
            out = [v if good else None for v, good in zip(out, ok)]
        return out

    def codes_of(self, values: Iterable[str]) -> list[int]:
        """Codes of the given strings in this column's table (unknown ones left out)."""
        index = {v: i for i, v in enumerate(self.table or [])}
        return [index[v] for v in values if v in index]


NULL_INT = np.iinfo(np.int64).min


def _iso_time(micros: int, tz: str | None) -> str | None:
    if micros == NULL_INT:
        return None
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    if tz is None:
        return moment.replace(tzinfo=None).isoformat()
    return moment.isoformat()


# ------------------------------------------------------------------------------------------------ loaded parts

@dataclass(eq=False)
class RecommenderPart:
    """A loaded recommender: product attributes, per-customer candidates, similar and popular lists."""

    manifest: dict[str, Any]
    product_ids: list[str]
    product_names: list[str | None]
    product_index: dict[str, int]
    categories: list[str]
    category_index: dict[str, int]
    folder: Path
    regions: list[str]
    reasons: list[str]
    pop_groups: dict[tuple[str, str], int]
    a: dict[str, np.ndarray]
    cutoff_ts: float = field(default=0.0)
    stock_stores: list[str] = field(default_factory=list)  # stores of the stock arrays (none: no inventory)
    channels: list[str] = field(default_factory=list)  # channels of the chan_boost rows

    @classmethod
    def load(cls, folder: Path) -> "RecommenderPart":
        b = Bundle.load(folder)
        s = b.strings
        groups = {}
        for i, g in enumerate(s["pop_groups"]):
            scope, _, key = g.partition("\x1f")
            groups[(scope, key)] = i
        manifest = b.meta["manifest"]
        return cls(manifest=manifest, product_ids=s["product_ids"], product_names=s["product_names"],
                   product_index={p: i for i, p in enumerate(s["product_ids"])}, categories=s["categories"],
                   category_index={c: i for i, c in enumerate(s["categories"])}, folder=folder,
                   regions=s["regions"], reasons=s["reasons"], pop_groups=groups, a=b.arrays,
                   cutoff_ts=_timestamp(manifest.get("cutoff")), stock_stores=s.get("stock_stores", []),
                   channels=s.get("channels", []))

    def __post_init__(self) -> None:
        # The storefront's usual request reads these through memoryviews: plain Python indexing and slicing,
        # no numpy call (each costs a microsecond or more once the framework has the CPU caches).
        a = self.a
        self.mv_offsets = memoryview(a["rec_offsets"])
        self.mv_ok_count = memoryview(a["rec_ok_count"])
        self.mv_items = memoryview(a["rec_items"])
        self.mv_scores = memoryview(a["rec_scores"])
        self.mv_reasons = memoryview(a["rec_reasons"])

    @property
    def customer_ids(self) -> list[str]:
        """Customers in row order (read from disk: only building a snapshot needs them)."""
        return Bundle.read_strings(self.folder, "customer_ids")  # type: ignore[return-value]

    def product_label(self, item: int) -> str:
        """How a reason names a product: its name, else its id."""
        return self.product_names[item] or self.product_ids[item]


@dataclass(eq=False)
class ColumnTable:
    """A loaded table of per-customer columns (churn scores, CLV scores, profiles)."""

    folder: Path
    prefix: str
    columns: dict[str, Column]

    @property
    def ids(self) -> list[str]:
        """Customers in row order (read from disk: only building a snapshot needs them)."""
        return Bundle.read_strings(self.folder, f"{self.prefix}ids")  # type: ignore[return-value]


@dataclass(eq=False)
class ScoresPart:
    """A loaded churn, CLV or uplift model: its scores table and, for CLV, the profiles table; for uplift, the
    campaign reports measured at training (:func:`training.layout.read_campaign_reports`), when it has them."""

    kind: str
    manifest: dict[str, Any]
    scores: ColumnTable
    profiles: ColumnTable | None
    campaigns: dict[str, Any] | None = None
    moments: ColumnTable | None = None  # CLV: moments to reach out, several rows per customer (date order)

    @classmethod
    def load(cls, folder: Path) -> "ScoresPart":
        b = Bundle.load(folder)
        tables = {}
        for prefix, info in b.meta["tables"].items():
            columns = {}
            for name, spec in info["columns"].items():
                key = spec["key"]
                columns[name] = Column(kind=spec["kind"], values=b.arrays[key],
                                       valid=b.arrays.get(f"{key}_valid"), table=b.strings.get(f"{key}_table"),
                                       offsets=b.arrays.get(f"{key}_offsets"), tz=spec.get("tz"))
            tables[prefix] = ColumnTable(folder=folder, prefix=prefix, columns=columns)
        return cls(kind=b.meta["kind"], manifest=b.meta["manifest"], scores=tables["s"], profiles=tables.get("p"),
                   campaigns=b.meta.get("campaigns"), moments=tables.get("m"))


def load_part(kind: str, folder: Path) -> RecommenderPart | ScoresPart:
    """Load a compiled folder of a model of ``kind``."""
    return RecommenderPart.load(folder) if kind == RECOMMENDER else ScoresPart.load(folder)


def _timestamp(value: Any) -> float:
    """Epoch seconds of an ISO date or time (UTC when naive); 0 when absent or unreadable."""
    if not value:
        return 0.0
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
