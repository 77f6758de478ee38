"""One immutable view of the served models: what every request reads, swapped whole when a champion changes."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.identities import IdentityMap
from serving.compiled import Column, ColumnTable, RecommenderPart, ScoresPart
from serving.erasure import Erasures
from features.settings import CHURN, CLV, RECOMMENDER, UPLIFT

log = logging.getLogger("clientele.serving")


@dataclass(frozen=True)
class ModelInfo:
    """The registry version behind one loaded model."""

    kind: str
    name: str
    version: str
    run_id: str | None
    loaded_at: str
    manifest: dict[str, Any]

    @property
    def label(self) -> str:
        """How responses name it: ``recommender:3``."""
        return f"{self.kind}:{self.version}"


# Sort keys of the CRM export: column of the export table, descending?
EXPORT_SORTS = {"value_at_risk": ("value_at_risk", True), "churn_probability": ("churn_probability", True),
                "clv": ("clv", True), "p_alive": ("p_alive", True), "customer_id": ("customer_id", False),
                "expected_incremental_value": ("expected_incremental_value", True)}


@dataclass(eq=False)
class ExportTable:
    """Customers the CRM export lists (scored, consenting, not erased) and their sort orders, built once."""

    codes: np.ndarray  # global customer codes, export row order
    churn_probability: np.ndarray
    clv: np.ndarray
    value_at_risk: np.ndarray
    p_alive: np.ndarray
    filters: dict[str, tuple[np.ndarray, dict[str, int]]]  # name -> (codes per row, value -> code)
    expected_incremental_value: np.ndarray = field(default_factory=lambda: np.empty(0))
    contactable: np.ndarray = field(default_factory=lambda: np.empty(0, bool))  # consented to marketing
    _orders: dict[str, np.ndarray] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def order(self, sort: str, own_ids: np.ndarray) -> np.ndarray:
        """Export rows in ``sort`` order (missing values last), computed on first use; ``customer_id`` sorts by
        the customers' own ids."""
        found = self._orders.get(sort)
        if found is not None:
            return found
        with self._lock:
            if sort not in self._orders:
                column, descending = EXPORT_SORTS[sort]
                if column == "customer_id":
                    keys = own_ids[self.codes]
                    order = np.argsort(keys, kind="stable")
                else:
                    values = getattr(self, column)
                    keyed = np.where(np.isnan(values), -np.inf if descending else np.inf, values)
                    order = np.argsort(-keyed if descending else keyed, kind="stable")
                self._orders[sort] = order.astype(np.int64)
            return self._orders[sort]


@dataclass(eq=False)
class Snapshot:
    """Loaded models joined on one customer index. Never mutated after it is built, except the lazy export.

    Served models hold pseudonyms, never customers' own ids (:mod:`features.identities`): ``customer_index`` is
    keyed by pseudonym, and ``own_ids`` (resolved through the data folder's identity map when the snapshot is
    built) names each customer in exports only.
    """

    models: dict[str, ModelInfo]
    recommender: RecommenderPart | None
    churn: ScoresPart | None
    clv: ScoresPart | None
    pseudonyms: list[str]
    customer_index: dict[str, int]  # pseudonym -> code, erased customers left out
    own_ids: np.ndarray  # code -> the customer's own id (None when the identity map has none: not exported)
    rec_row: np.ndarray
    churn_row: np.ndarray
    clv_row: np.ndarray
    profile_row: np.ndarray
    consent: np.ndarray
    active: np.ndarray  # False for customers on the erasure list when the snapshot was built
    erasures_applied: int
    erased: frozenset[str] = frozenset()  # the erasure list the snapshot was built with
    links: dict[str, str] = field(default_factory=dict)  # pseudonym of an id merged into a person -> the person's
    uplift: ScoresPart | None = None  # optional: served when an uplift champion is registered
    uplift_row: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    marketing: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))  # 1 agreed, 0 refused, -1 unknown
    n_rec: int = 0  # codes below it are the recommender's customers, in its row order (rec_row[c] == c)
    moment_code: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # CLV moments row -> code
    consent_bytes: bytes = b""  # consent as bytes: indexing bytes is a plain Python operation
    _export: ExportTable | None = None
    _export_lock: threading.Lock = field(default_factory=threading.Lock)

    def erased_since_built(self, erasures: Erasures) -> np.ndarray:
        """Codes of this snapshot's customers erased after it was built (the API, any worker, `clientele
        erase`): what an export must leave out and not count, until the next snapshot drops them itself."""
        if len(erasures) <= self.erasures_applied:
            return np.empty(0, np.int64)
        newer = erasures.pseudonyms - self.erased
        found = [self.customer_index.get(p) for p in newer]
        return np.array(sorted(code for code in found if code is not None), np.int64)

    def person(self, pseudonym: str) -> str:
        """The pseudonym the models know a customer by: the person's, for any linked id of theirs."""
        return self.links.get(pseudonym, pseudonym) if self.links else pseudonym

    def label(self, kind: str) -> str | None:
        """``kind:version`` of a loaded model, None when it is not loaded."""
        info = self.models.get(kind)
        return info.label if info else None

    @property
    def versions(self) -> dict[str, str]:
        """kind -> registry version of every loaded model."""
        return {kind: info.version for kind, info in self.models.items()}

    @property
    def version_key(self) -> str:
        """One string naming every loaded version (export cursors carry it)."""
        return ",".join(self.models[k].label for k in sorted(self.models))

    def export(self) -> ExportTable:
        """The CRM export table, built on first use."""
        if self._export is None:
            with self._export_lock:
                if self._export is None:
                    self._export = self._build_export()
        return self._export

    def _build_export(self) -> ExportTable:
        scored = (self.churn_row >= 0) | (self.clv_row >= 0)
        named = np.array([own is not None for own in self.own_ids.tolist()], dtype=bool)
        codes = np.flatnonzero(scored & self.consent & self.active & named).astype(np.int64)

        def column(part: ScoresPart | None, rows: np.ndarray, name: str) -> Column | None:
            return part.scores.columns.get(name) if part is not None else None

        def floats(part: ScoresPart | None, rows_all: np.ndarray, name: str) -> np.ndarray:
            col = column(part, rows_all, name)
            rows = rows_all[codes]
            out = np.full(len(codes), np.nan)
            if col is None or col.kind not in ("float", "int"):
                return out
            ok = rows >= 0
            out[ok] = np.asarray(col.values[rows[ok]], dtype=np.float64)
            return out

        def categorical(part: ScoresPart | None, rows_all: np.ndarray, name: str) -> tuple[np.ndarray,
                                                                                          dict[str, int]]:
            col = column(part, rows_all, name)
            rows = rows_all[codes]
            out = np.full(len(codes), -1, np.int32)
            if col is None or col.kind != "str":
                return out, {}
            ok = rows >= 0
            out[ok] = col.values[rows[ok]]
            return out, {v: i for i, v in enumerate(col.table or [])}

        churn_p = floats(self.churn, self.churn_row, "churn_probability")
        incremental = floats(self.uplift, self.uplift_row, "expected_incremental_value")
        clv = floats(self.clv, self.clv_row, "clv")
        filters = {"risk_band": categorical(self.churn, self.churn_row, "risk_band"),
                   "segment": categorical(self.clv, self.clv_row, "rfm_segment"),
                   "lifecycle_stage": categorical(self.clv, self.clv_row, "lifecycle_stage"),
                   "value_tier": categorical(self.clv, self.clv_row, "value_tier")}
        return ExportTable(codes=codes, churn_probability=churn_p, clv=clv, value_at_risk=np.round(churn_p * clv, 6),
                           p_alive=floats(self.clv, self.clv_row, "p_alive"), filters=filters,
                           expected_incremental_value=incremental, contactable=self.marketing[codes] == 1)

    # ------------------------------------------------------------------------------------------ per customer

    def scores_of(self, code: int) -> dict[str, Any] | None:
        """Churn and CLV fields of one customer (None when neither model scored them)."""
        churn_row = int(self.churn_row[code])
        clv_row = int(self.clv_row[code])
        uplift_row = int(self.uplift_row[code]) if len(self.uplift_row) else -1
        if churn_row < 0 and clv_row < 0 and uplift_row < 0:
            return None
        out: dict[str, Any] = {}
        if self.churn is not None and churn_row >= 0:
            out.update(_row(self.churn.scores, churn_row))
        if self.clv is not None and clv_row >= 0:
            out.update(_row(self.clv.scores, clv_row))
        if self.uplift is not None and uplift_row >= 0:
            out.update({k: v for k, v in _row(self.uplift.scores, uplift_row).items() if k != "consent_marketing"})
        marketing = int(self.marketing[code]) if len(self.marketing) else -1
        out["consent_marketing"] = None if marketing < 0 else bool(marketing)
        p, clv = out.get("churn_probability"), out.get("clv")
        out["value_at_risk"] = round(p * clv, 6) if isinstance(p, float) and isinstance(clv, (int, float)) else None
        return out

    def profile_of(self, code: int) -> dict[str, Any] | None:
        """Profile columns of one customer, None when the CLV model has no profile of them."""
        row = int(self.profile_row[code])
        if self.clv is None or self.clv.profiles is None or row < 0:
            return None
        return _row(self.clv.profiles, row)


def _row(table: ColumnTable, row: int) -> dict[str, Any]:
    rows = np.array([row])
    return {name: col.take(rows)[0] for name, col in table.columns.items()}


def assemble(models: dict[str, ModelInfo], parts: dict[str, RecommenderPart | ScoresPart], erased: set[str],
             identities: IdentityMap, consent_default: bool = True) -> Snapshot:
    """Join the loaded parts on one customer index (pseudonyms), leaving out customers on the erasure list, and
    name each customer for exports through ``identities``."""
    rec = parts.get(RECOMMENDER)
    churn = parts.get(CHURN)
    clv = parts.get(CLV)
    upl = parts.get(UPLIFT)
    assert upl is None or isinstance(upl, ScoresPart)
    assert rec is None or isinstance(rec, RecommenderPart)
    assert churn is None or isinstance(churn, ScoresPart)
    assert clv is None or isinstance(clv, ScoresPart)

    ids: list[str] = list(rec.customer_ids) if rec is not None else []
    index: dict[str, int] = {c: i for i, c in enumerate(ids)}

    def codes_of(part_ids: list[str]) -> np.ndarray:
        out = np.empty(len(part_ids), np.int64)
        for i, c in enumerate(part_ids):
            code = index.get(c)
            if code is None:
                code = index[c] = len(ids)
                ids.append(c)
            out[i] = code
        return out

    rec_codes = np.arange(len(ids), dtype=np.int64)
    churn_codes = codes_of(churn.scores.ids) if churn is not None else np.empty(0, np.int64)
    clv_codes = codes_of(clv.scores.ids) if clv is not None else np.empty(0, np.int64)
    profile_codes = codes_of(clv.profiles.ids) if clv is not None and clv.profiles is not None \
        else np.empty(0, np.int64)
    uplift_codes = codes_of(upl.scores.ids) if upl is not None else np.empty(0, np.int64)
    moment_codes = codes_of(clv.moments.ids) if clv is not None and clv.moments is not None \
        else np.empty(0, np.int64)
    n = len(ids)

    def rows(codes: np.ndarray) -> np.ndarray:
        out = np.full(n, -1, np.int32)
        out[codes] = np.arange(len(codes), dtype=np.int32)
        return out

    rec_row, churn_row, clv_row, profile_row = rows(rec_codes), rows(churn_codes), rows(clv_codes), \
        rows(profile_codes)
    uplift_row = rows(uplift_codes)
    # Marketing consent of record: the uplift model's table (what contact lists are drawn from), else the
    # CLV profiles; unknown (-1) is never contactable.
    marketing = np.full(n, -1, np.int8)
    for table, part_rows in ((clv.profiles if clv is not None else None, profile_row),
                             (upl.scores if upl is not None else None, uplift_row)):
        col = table.columns.get("consent_marketing") if table is not None else None
        if col is not None and col.kind == "bool":
            has = part_rows >= 0
            flags = np.asarray(col.values)[part_rows[has]]
            marketing[np.flatnonzero(has)[flags >= 0]] = (flags[flags >= 0] > 0).astype(np.int8)

    consent = np.full(n, consent_default, bool)
    if clv is not None and clv.profiles is not None and "consent_profiling" in clv.profiles.columns:
        col = clv.profiles.columns["consent_profiling"]
        if col.kind == "bool":
            has = profile_row >= 0
            flags = np.asarray(col.values)[profile_row[has]]
            consent[has] = np.where(flags < 0, consent_default, flags > 0)
    if rec is not None:
        # The recommender's customer table is the consent of record (it is what training honoured).
        consent[rec_row >= 0] = np.asarray(rec.a["cust_consent"])[rec_row[rec_row >= 0]]

    active = np.ones(n, bool)
    if erased:
        # An erased customer is unknown to every endpoint from now on.
        for code, c in enumerate(ids):
            if c in erased:
                del index[c]
                active[code] = False
    own_ids = identities.resolve(ids)
    links = identities.links()
    unnamed = sum(own is None and alive for own, alive in zip(own_ids.tolist(), active.tolist()))
    if unnamed > 0:
        log.warning("%d served customers are not in the identity map %s: exports leave them out",
                    unnamed, identities.path)

    return Snapshot(models=models, recommender=rec, churn=churn, clv=clv, pseudonyms=ids, customer_index=index,
                    own_ids=own_ids, links=links, uplift=upl, uplift_row=uplift_row, marketing=marketing,
                    rec_row=rec_row, churn_row=churn_row, clv_row=clv_row, profile_row=profile_row,
                    consent=consent, active=active, erasures_applied=len(erased), erased=frozenset(erased),
                    n_rec=len(rec_codes), moment_code=moment_codes,
                    consent_bytes=consent.astype(np.uint8).tobytes())
