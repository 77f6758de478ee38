"""Moments to reach out as the CRM reads them: the served CLV model's moments table, filtered, with each
customer's value and marketing consent of record. One implementation for ``GET /v1/moments`` and
``clientele moments``.

Who is listed is who the CRM export lists (:meth:`serving.snapshot.Snapshot.export`): scored customers who may be
profiled, not erased (also since the snapshot was built), and named by the identity map.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from features.i18n import DEFAULT_LOCALE, code_of, render
from serving.compiled import NULL_INT, ColumnTable
from serving.snapshot import Snapshot

MOMENT_KINDS = ("replenishment", "birthday", "occasion", "tier_upgrade")
MOMENT_FIELDS = ("customer_id", "kind", "name", "date", "confidence", "description", "products", "reasons",
                 "clv", "value_tier", "rfm_segment", "consent_marketing", "description_code")
_EPOCH = date(1970, 1, 1)


class NoMoments(Exception):
    """The served models hold no moments table (no CLV champion, or one trained before moments existed)."""


@dataclass(frozen=True)
class MomentQuery:
    """Which moments to list: dates ``start``..``end`` inclusive (None: open), kinds and RFM segments (empty:
    all), and marketing consent (True: a yes on record; False: no or unknown; None: everyone)."""

    start: date | None = None
    end: date | None = None
    kinds: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    contactable: bool | None = None
    filters: dict[str, list[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", {
            "from": [self.start.isoformat()] if self.start else [], "to": [self.end.isoformat()] if self.end else [],
            "kind": list(self.kinds), "segment": list(self.segments),
            "contactable": [] if self.contactable is None else [str(self.contactable)]})


def moments_table(snap: Snapshot) -> ColumnTable:
    """The served moments table, or :class:`NoMoments`."""
    if snap.clv is None or snap.clv.moments is None:
        raise NoMoments("the served CLV model holds no moments (no champion yet, or trained before moments were "
                        "found): retrain with `clientele train`")
    return snap.clv.moments


def known_segments(snap: Snapshot) -> list[str]:
    """RFM segment names of the served CLV model."""
    col = snap.clv.scores.columns.get("rfm_segment") if snap.clv is not None else None
    return sorted(col.table or []) if col is not None and col.kind == "str" else []


def csv_cell(name: str, value: Any) -> Any:
    """A CSV cell of a moment: the product and reason lists joined by '; '."""
    return "; ".join(value) if name in ("products", "reasons") else value


def _days(value: date) -> int:
    return (value - _EPOCH).days


def moment_rows_matching(snap: Snapshot, query: MomentQuery, erased_since: np.ndarray) -> np.ndarray:
    """Rows of the moments table that ``query`` lists, in the table's order (by date), for customers the export
    may name; ``erased_since``: codes erased after the snapshot was built."""
    table = moments_table(snap)
    codes = snap.moment_code
    # The customers the CRM export lists (scored, may be profiled, not erased, named), worked out once a snapshot.
    listed = np.zeros(len(snap.own_ids), bool)
    listed[snap.export().codes] = True
    listed[erased_since] = False
    mask = listed[codes] if len(codes) else np.zeros(0, bool)
    days = np.asarray(table.columns["date"].values)
    if query.start is not None:
        mask &= (days != NULL_INT) & (days >= _days(query.start))
    if query.end is not None:
        mask &= (days != NULL_INT) & (days <= _days(query.end))
    if query.kinds:
        kind = table.columns["kind"]
        mask &= np.isin(np.asarray(kind.values), kind.codes_of(query.kinds))
    if query.segments:
        col = snap.clv.scores.columns["rfm_segment"]
        rows = snap.clv_row[codes]
        seg = np.where(rows >= 0, np.asarray(col.values)[np.maximum(rows, 0)], -1)
        mask &= np.isin(seg, col.codes_of(query.segments))
    if query.contactable is not None:
        consented = snap.marketing[codes] == 1
        mask &= consented if query.contactable else ~consented
    return np.flatnonzero(mask)


def moment_rows(snap: Snapshot, rows: np.ndarray, locale: str = DEFAULT_LOCALE) -> list[dict[str, Any]]:
    """The moments at ``rows`` as JSON-ready records, each with the customer's own id, value (CLV, value tier,
    RFM segment of the served CLV model) and marketing consent of record (None: unknown); the description and
    the products' reasons worded in ``locale`` (the description's code in ``description_code``)."""
    table = moments_table(snap)
    codes = snap.moment_code[rows]
    columns = {name: table.columns[name].take(rows) for name in
               ("kind", "name", "date", "confidence", "description", "products", "reasons")}
    columns["description_code"] = [code_of(d) if d is not None else None for d in columns["description"]]
    columns["description"] = [render(d, locale) if d is not None else None for d in columns["description"]]
    columns["reasons"] = [None if rs is None else [render(r, locale) for r in rs] for rs in columns["reasons"]]
    clv_rows = snap.clv_row[codes]
    ok = clv_rows >= 0
    safe = np.where(ok, clv_rows, 0)
    for name in ("clv", "value_tier", "rfm_segment"):
        col = snap.clv.scores.columns.get(name) if snap.clv is not None else None
        values = col.take(safe) if col is not None else [None] * len(rows)
        columns[name] = [v if good else None for v, good in zip(values, ok.tolist())]
    marketing = snap.marketing[codes].tolist() if len(snap.marketing) else [-1] * len(rows)
    columns["consent_marketing"] = [None if m < 0 else bool(m) for m in marketing]
    ids = snap.own_ids[codes].tolist()
    return [{"customer_id": cid, **{k: v[i] for k, v in columns.items()}} for i, cid in enumerate(ids)]



def write_moments_csv(query: MomentQuery, out: Path, locale: str = DEFAULT_LOCALE) -> int:
    """``clientele moments``: the champions' moments that ``query`` lists, written to ``out`` as the API's CSV
    export (the same snapshot, rows and neutralised cells), owner-only; returns the number of rows.

    Raises
    ------
    ClienteleError
        No CLV champion, one without moments, or ``out`` cannot be written.
    """
    from features.exceptions import ClienteleError, ConfigError
    from serving.api.paging import csv_chunks
    from serving.erasure import Erasures
    from serving.metrics import Metrics
    from serving.settings import get_serving_settings
    from serving.store import ModelStore

    settings = get_serving_settings()
    erasures = Erasures(settings.erasure_file, settings.pseudonym_key, settings.identities())
    store = ModelStore(settings, erasures, Metrics())
    store.check()
    snap = store.snapshot
    if snap is None or snap.clv is None:
        raise ClienteleError(f"no champion of '{settings.model_name('clv')}' in the registry at "
                             f"{settings.tracking_uri}: run `clientele train` first")
    try:
        moments_table(snap)
    except NoMoments as exc:
        raise ClienteleError(str(exc)) from None
    segments = known_segments(snap)
    unknown = [s for s in query.segments if s not in segments]
    if unknown:
        raise ConfigError(f"--segment: unknown value {unknown[0]!r} (the served scores have: "
                          f"{', '.join(segments) or 'none'})")
    rows = moment_rows_matching(snap, query, snap.erased_since_built(erasures))
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            for chunk in csv_chunks(MOMENT_FIELDS, rows, lambda part: moment_rows(snap, part, locale), csv_cell):
                fh.write(chunk)
        os.chmod(tmp, 0o600)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ClienteleError(f"{out}: cannot write ({exc.strerror})") from None
    return len(rows)
