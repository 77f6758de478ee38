"""The reader's language: ``Accept-Language`` negotiated once per request, and the served texts rendered in it.

Stored texts are messages (:mod:`features.i18n`: a stable code and parameters); the API renders them at the edge,
so one served model answers in English and Chinese alike, and every machine-readable code (reason codes, risk
bands, segment keys) stays the same in both. Errors stay English: they are for the developer calling the API.
"""

from __future__ import annotations

from typing import Annotated, Any, Iterable

from fastapi import Depends, Header
from starlette.types import Scope

from features.i18n import LABELLED_COLUMNS, REASON_COLUMNS, code_of, label, negotiate, render

SCOPE_KEY = "clientele.locale"
LANGUAGE_HEADER = Header(alias="Accept-Language", max_length=512,
                         description="The language of reasons and labels: `zh-CN` (any Chinese tag) or `en` "
                                     "(default), with q weights as browsers send them. Codes do not change.")


def scope_locale(scope: Scope) -> str:
    """The locale the middleware negotiated for this request (English when none was)."""
    found = scope.get(SCOPE_KEY)
    if found is None:
        found = scope[SCOPE_KEY] = negotiate(_header(scope))
    return found


def _header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"accept-language":
            return value.decode("latin-1")
    return None


async def _locale(accept_language: Annotated[str | None, LANGUAGE_HEADER] = None) -> str:
    return negotiate(accept_language)


LocaleDep = Annotated[str, Depends(_locale)]


def localise_items(items: list[dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    """Recommendation items (``reason`` a message) with the reason in ``locale`` and its ``reason_code``."""
    for item in items:
        reason = item["reason"]
        item["reason_code"] = code_of(reason)
        item["reason"] = render(reason, locale)
    return items


def localise_scores(row: dict[str, Any], locale: str) -> dict[str, Any]:
    """A scores row with its reasons in ``locale`` (their codes in ``churn_reason_codes``, ...) and a ``labels``
    object naming each coded field (risk band, segment, lifecycle stage, tiers) in ``locale``."""
    for field in REASON_COLUMNS:
        if field in row:
            reasons: Iterable[str] | None = row[field]
            row[f"{field[:-1]}_codes"] = None if reasons is None else [code_of(r) for r in reasons]
            row[field] = None if reasons is None else [render(r, locale) for r in reasons]
    row["labels"] = {field: label(kind, row[field], locale) for field, kind in LABELLED_COLUMNS.items()
                     if row.get(field) is not None}
    return row
