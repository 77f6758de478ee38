"""Customer scores for the CRM: one customer, and the bulk export (JSON pages or streamed CSV)."""

from __future__ import annotations

from typing import Annotated, Any, Iterator, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import Response, StreamingResponse

from serving.api.deps import ModelsDep, ScoresKey, Services, ServicesDep, known
from serving.api.errors import invalid
from features.i18n import render
from serving.api.language import LocaleDep, localise_scores
from serving.api.paging import csv_chunks
from serving.api.paging import decode_cursor as _decode_cursor
from serving.api.paging import digest as _digest
from serving.api.paging import encode_cursor as _encode_cursor
from serving.api.responses import AUTH_RESPONSES, MODEL_RESPONSES, OrjsonResponse, problem
from serving.api.paths import CustomerPath
from serving.schemas import CustomerScores, ScoresPage
from serving.snapshot import Snapshot

router = APIRouter(tags=["scores"], responses={**AUTH_RESPONSES, **MODEL_RESPONSES})

SCORE_FIELDS = ("churn_probability", "risk_band", "churn_reasons", "clv", "p_alive", "expected_purchases_12m",
                "expected_spend", "value_at_risk", "rfm_segment", "r_score", "f_score", "m_score",
                "lifecycle_stage", "value_tier", "membership_tier", "uplift", "incremental_spend",
                "expected_incremental_value", "best_offer", "p_purchase_if_contacted", "p_purchase_if_not",
                "uplift_basis", "uplift_reasons", "consent_marketing")
EXPORT_FIELDS = ("customer_id", "churn_probability", "risk_band", "clv", "value_at_risk", "p_alive", "rfm_segment",
                 "lifecycle_stage", "value_tier", "churn_reasons", "consent_marketing", "uplift",
                 "expected_incremental_value", "best_offer")
# The CSV names each coded field in the reader's language in a column of its own, after the codes.
CSV_LABELS = ("risk_band", "rfm_segment", "lifecycle_stage", "value_tier")
MAX_PAGE = 1000
SortKey = Literal["value_at_risk", "churn_probability", "clv", "p_alive", "customer_id", "expected_incremental_value"]
# Names fixed by the models' code (training/export.py risk_band, models/segments/lifecycle.py): enumerated in
# OpenAPI, anything else is a 422. RFM segments and value tiers are named in configs/segments.yaml, so they are
# checked against the names of the served models at request time.
RiskBand = Literal["low", "medium", "high"]
LifecycleStage = Literal["prospect", "new", "active", "reactivated", "at_risk", "lapsed"]
FilterValues = Annotated[list[Annotated[str, Query(max_length=64)]] | None, Query(max_length=20)]
NAMED_BY_CONFIG = ("segment", "value_tier")


def _scored(snap: Snapshot) -> None:
    if snap.churn is None and snap.clv is None:
        raise HTTPException(503, "no churn or CLV model is loaded (no champion in the registry yet)",
                            headers={"Retry-After": "30"})


def _versions(snap: Snapshot) -> dict[str, str]:
    return {k: snap.models[k].label for k in ("churn", "clv", "uplift") if k in snap.models}


@router.get("/v1/customers/{customer_id:customer}/scores", response_model=CustomerScores,
            responses={404: problem("The customer has no scores (unknown, erased, or without profiling "
                                    "consent).")})
async def customer_scores(customer_id: CustomerPath, key: ScoresKey, snap: ModelsDep,
                          services: ServicesDep, locale: LocaleDep) -> Response:
    """Churn probability, risk band and reasons, CLV, P(alive), segment, lifecycle, value tier, value at risk."""
    _scored(snap)
    view = known(services, snap, customer_id)
    code = view.code
    scores = snap.scores_of(code) if code is not None else None
    if scores is None:
        raise HTTPException(404, f"customer {customer_id!r} has no scores in {snap.version_key}")
    if not view.consent:
        raise HTTPException(404, f"customer {customer_id!r} has not consented to profiling: no scores are served")
    body: dict[str, Any] = {"customer_id": customer_id, "model_versions": _versions(snap)}
    for name in SCORE_FIELDS:
        if name in scores:
            body[name] = scores[name]
    return OrjsonResponse(localise_scores(body, locale))


# ----------------------------------------------------------------------------------------------------- export

def _column(snap: Snapshot, kind: str, name: str, part_rows: np.ndarray) -> list[Any]:
    part = {"churn": snap.churn, "clv": snap.clv, "uplift": snap.uplift}[kind]
    col = part.scores.columns.get(name) if part is not None else None
    if col is None:
        return [None] * len(part_rows)
    ok = part_rows >= 0
    values = col.take(np.where(ok, part_rows, 0))
    return [v if good else None for v, good in zip(values, ok.tolist())]


def _rows(snap: Snapshot, positions: np.ndarray, services: Services, locale: str) -> list[dict[str, Any]]:
    exp = snap.export()
    codes = exp.codes[positions]
    ids = snap.own_ids[codes].tolist()
    churn_rows, clv_rows = snap.churn_row[codes], snap.clv_row[codes]
    uplift_rows = snap.uplift_row[codes] if len(snap.uplift_row) else np.full(len(codes), -1)
    marketing = snap.marketing[codes].tolist()
    var = exp.value_at_risk[positions]
    columns = {
        "churn_probability": _column(snap, "churn", "churn_probability", churn_rows),
        "risk_band": _column(snap, "churn", "risk_band", churn_rows),
        "clv": _column(snap, "clv", "clv", clv_rows),
        "value_at_risk": [None if v != v else v for v in var.tolist()],
        "p_alive": _column(snap, "clv", "p_alive", clv_rows),
        "rfm_segment": _column(snap, "clv", "rfm_segment", clv_rows),
        "lifecycle_stage": _column(snap, "clv", "lifecycle_stage", clv_rows),
        "value_tier": _column(snap, "clv", "value_tier", clv_rows),
        "churn_reasons": _column(snap, "churn", "churn_reasons", churn_rows),
        "consent_marketing": [None if m < 0 else bool(m) for m in marketing],
        "uplift": _column(snap, "uplift", "uplift", uplift_rows),
        "expected_incremental_value": _column(snap, "uplift", "expected_incremental_value", uplift_rows),
        "best_offer": _column(snap, "uplift", "best_offer", uplift_rows),
    }
    rows = [localise_scores({"customer_id": cid, **{k: v[i] for k, v in columns.items()}}, locale)
            for i, cid in enumerate(ids)]
    gone = snap.erased_since_built(services.erasures)
    if len(gone):  # erased since the snapshot was built
        kept = ~np.isin(codes, gone)
        rows = [r for r, keep in zip(rows, kept.tolist()) if keep]
    return rows


def _csv_chunks(snap: Snapshot, positions: np.ndarray, services: Services, locale: str) -> Iterator[bytes]:
    def rows(part: np.ndarray) -> list[dict[str, Any]]:
        out = _rows(snap, part, services, locale)
        for row in out:  # each coded field's label in a column of its own, after the codes
            row.update({f"{f}_label": row["labels"].get(f) for f in CSV_LABELS})
        return out

    return csv_chunks(EXPORT_FIELDS + tuple(f"{f}_label" for f in CSV_LABELS), positions, rows,
                      lambda name, value: ("; ".join(value) if value else None) if name == "churn_reasons" else value)


@router.get("/v1/scores", response_model=ScoresPage,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "A page of JSON, or with `Accept: text/csv` every matching row as "
                                            "streamed CSV."},
                       409: problem("The scores changed since the export began: start again without a cursor.")})
async def export_scores(
    request: Request,
    key: ScoresKey,
    snap: ModelsDep,
    services: ServicesDep,
    locale: LocaleDep,
    risk_band: Annotated[list[RiskBand] | None, Query(max_length=20, description="Churn risk bands (repeat for "
                                                                                 "several).")] = None,
    segment: Annotated[FilterValues, Query(description="RFM segments as configs/segments.yaml names them "
                                                       "(champions, loyal_customers, at_risk, ... by default); a "
                                                       "name the served model does not use is a 422.")] = None,
    lifecycle_stage: Annotated[list[LifecycleStage] | None, Query(max_length=20, description="Lifecycle stages.")]
    = None,
    value_tier: Annotated[FilterValues, Query(description="Value tiers as configs/segments.yaml names them (low, "
                                                          "medium, high by default); a name the served model does "
                                                          "not use is a 422.")] = None,
    contactable: Annotated[bool | None, Query(description="true: only customers who consented to marketing (a "
                                                          "contact list); false: only those who did not or are "
                                                          "unknown.")] = None,
    sort: Annotated[SortKey, Query(description="Order: numeric keys descending, customer_id ascending; "
                                               "expected_incremental_value needs an uplift model.")]
    = "value_at_risk",
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page.")] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="Rows per JSON page (default 100); CSV "
                                                                      "streams every row unless given.")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="Same as Accept: text/csv.")] = None,
) -> Response:
    """Bulk export for the CRM: consenting scored customers, filtered, sorted (by value at risk by default)."""
    _scored(snap)
    services.journal.sync()
    filters = {"risk_band": risk_band or [], "segment": segment or [], "lifecycle_stage": lifecycle_stage or [],
               "value_tier": value_tier or []}
    if sort == "expected_incremental_value" and snap.uplift is None:
        raise invalid("sort", "expected_incremental_value needs an uplift model: none is registered as champion")
    if sort == "expected_incremental_value" and snap.uplift.manifest.get("uplift_basis") == "campaign_average":
        raise invalid("sort", f"expected_incremental_value does not rank customers in {snap.label('uplift')}: "
                              f"{render(snap.uplift.manifest.get('uplift_note') or '')}; sort by value_at_risk instead")
    digest = _digest(sort, {**filters, "contactable": [] if contactable is None else [str(contactable)]})
    start = _decode_cursor(cursor, snap, digest) if cursor else 0
    exp = snap.export()
    for name in NAMED_BY_CONFIG:
        known = exp.filters[name][1]
        unknown = [v for v in filters[name] if v not in known]
        if unknown:
            choices = ", ".join(sorted(known)) or "none: no CLV model is loaded"
            raise invalid(name, f"unknown value {unknown[0]!r} (the served scores have: {choices})")
    mask = np.ones(len(exp.codes), bool)
    gone = snap.erased_since_built(services.erasures)
    if len(gone):  # erased after the snapshot was built: neither listed nor counted in the totals
        mask &= ~np.isin(exp.codes, gone)
    if contactable is not None:
        mask &= exp.contactable if contactable else ~exp.contactable
    for name, values in filters.items():
        if values:
            codes, lookup = exp.filters[name]
            wanted = [lookup[v] for v in values if v in lookup]
            mask &= np.isin(codes, wanted)
    order = exp.order(sort, snap.own_ids)
    matching = order[mask[order]]  # export rows in sort order that pass the filters
    want_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    if want_csv:
        positions = matching[start:start + limit] if limit else matching[start:]
        headers = {"X-Model-Versions": ",".join(_versions(snap).values()), "X-Total-Count": str(len(matching))}
        return StreamingResponse(_csv_chunks(snap, positions, services, locale), media_type="text/csv; charset=utf-8",
                                 headers=headers)
    size = limit or 100
    page = matching[start:start + size]
    end = start + len(page)
    next_cursor = _encode_cursor(snap, digest, end) if end < len(matching) else None
    return OrjsonResponse({"model_versions": _versions(snap), "total": int(len(matching)),
                           "items": _rows(snap, page, services, locale), "next_cursor": next_cursor})
