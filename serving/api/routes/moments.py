"""Moments to reach out for the CRM: refills due, birthdays, learned occasions, tier upgrades (JSON pages or
streamed CSV)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import Response, StreamingResponse

from serving.api.language import LocaleDep
from serving.api.deps import ModelsDep, ScoresKey, ServicesDep
from serving.api.errors import invalid
from serving.api.paging import csv_chunks, decode_cursor, digest, encode_cursor
from serving.api.responses import AUTH_RESPONSES, MODEL_RESPONSES, OrjsonResponse, problem
from serving.api.routes.scores import MAX_PAGE, FilterValues
from serving.moments import (MOMENT_FIELDS, MomentQuery, NoMoments, csv_cell, known_segments, moment_rows,
                             moment_rows_matching, moments_table)
from serving.schemas import MomentsPage
from serving.snapshot import Snapshot

router = APIRouter(tags=["moments"], responses={**AUTH_RESPONSES, **MODEL_RESPONSES})

MomentKind = Literal["replenishment", "birthday", "occasion", "tier_upgrade"]


def _version(snap: Snapshot) -> dict[str, str]:
    return {"clv": snap.models["clv"].label} if "clv" in snap.models else {}


@router.get("/v1/moments", response_model=MomentsPage,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "A page of JSON, or with `Accept: text/csv` every matching moment as "
                                            "streamed CSV (products and reasons joined by '; ')."},
                       409: problem("The served models changed since the export began: start again without a "
                                    "cursor.")})
async def export_moments(
    request: Request,
    key: ScoresKey,
    snap: ModelsDep,
    services: ServicesDep,
    locale: LocaleDep,
    start: Annotated[date | None, Query(alias="from", description="First day (ISO date, inclusive); default: "
                                                                  "the first moment the served model holds.")]
    = None,
    end: Annotated[date | None, Query(alias="to", description="Last day (ISO date, inclusive); default: the "
                                                              "last (a year after the model's cutoff).")] = None,
    kind: Annotated[list[MomentKind] | None, Query(max_length=4, description="Kinds of moment (repeat for "
                                                                             "several).")] = None,
    segment: Annotated[FilterValues, Query(description="RFM segments as configs/segments.yaml names them; a name "
                                                       "the served model does not use is a 422.")] = None,
    contactable: Annotated[bool | None, Query(description="true: only customers who consented to marketing (a "
                                                          "contact list); false: only those who did not or are "
                                                          "unknown.")] = None,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page.")] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="Rows per JSON page (default 100); CSV "
                                                                      "streams every row unless given.")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="Same as Accept: text/csv.")] = None,
) -> Response:
    """Moments to reach out between two dates, by date: refills due, birthdays, learned occasions, tier upgrades,
    each with suggested products, the customer's value and marketing consent."""
    if start is not None and end is not None and end < start:
        raise invalid("to", f"{end.isoformat()} is before from ({start.isoformat()})")
    try:
        moments_table(snap)
    except NoMoments as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "30"}) from None
    segments = known_segments(snap)
    unknown = [s for s in segment or [] if s not in segments]
    if unknown:
        raise invalid("segment", f"unknown value {unknown[0]!r} (the served scores have: "
                                 f"{', '.join(segments) or 'none'})")
    services.journal.sync()
    query = MomentQuery(start=start, end=end, kinds=tuple(kind or ()), segments=tuple(segment or ()),
                        contactable=contactable)
    fingerprint = digest("date", query.filters)
    first = decode_cursor(cursor, snap, fingerprint) if cursor else 0
    matching = moment_rows_matching(snap, query, snap.erased_since_built(services.erasures))
    want_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    if want_csv:
        rows = matching[first:first + limit] if limit else matching[first:]
        headers = {"X-Model-Versions": ",".join(_version(snap).values()), "X-Total-Count": str(len(matching))}
        return StreamingResponse(
            csv_chunks(MOMENT_FIELDS, rows, lambda part: moment_rows(snap, part, locale), csv_cell),
            media_type="text/csv; charset=utf-8", headers=headers)
    page = matching[first:first + (limit or 100)]
    end_at = first + len(page)
    next_cursor = encode_cursor(snap, fingerprint, end_at) if end_at < len(matching) else None
    return OrjsonResponse({"model_versions": _version(snap), "total": int(len(matching)),
                           "items": moment_rows(snap, page, locale), "next_cursor": next_cursor})
