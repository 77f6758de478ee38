"""Error handlers: one readable 422 line per request, and 500s logged without raw customer ids."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from features.privacy import pseudonymise
from serving.api.responses import OrjsonResponse
from serving.schemas import CUSTOMER_ID_PATTERN, CUSTOMER_ID_RULE, ID_PATTERN, ID_RULE

log = logging.getLogger("clientele.errors")

_SOURCES = {"path", "query", "body", "header", "cookie"}


def invalid(field: str, message: str, source: str = "query") -> RequestValidationError:
    """A 422 for a rule the schema cannot express, answered like every other invalid input."""
    return RequestValidationError([{"loc": (source, field), "msg": message, "type": "value_error"}])


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        rules = {ID_PATTERN: ID_RULE, CUSTOMER_ID_PATTERN: CUSTOMER_ID_RULE}
        rule = rules.get(ctx.get("pattern"))
        return f"must be {rule}" if rule else f"must match {ctx.get('pattern')}"
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx.get('le'))}"
    if kind == "greater_than_equal":
        return f"must be at least {_number(ctx.get('ge'))}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item"
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} character"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this request"
    if kind == "json_invalid":
        return "is not valid JSON"
    if kind == "value_error":
        return str(error.get("msg", "")).removeprefix("Value error, ")
    return str(error.get("msg", "is not valid"))


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _location(loc: tuple[Any, ...] | list[Any]) -> list[str | int]:
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    return parts or ["body"]


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = []
    lines = []
    for error in exc.errors():
        loc = _location(error.get("loc", ()))
        msg = _message(error)
        errors.append({"loc": loc, "msg": msg, "type": str(error.get("type", ""))})
        lines.append(f"{'.'.join(str(p) for p in loc)}: {msg}")
    return OrjsonResponse({"detail": "; ".join(lines) or "invalid request", "errors": errors}, status_code=422)


async def unhandled_error(request: Request, exc: Exception) -> Response:
    # Tracebacks and exception texts can quote the id the request named: log its pseudonym instead.
    text = "".join(traceback.format_exception(exc))
    key = request.app.state.services.settings.pseudonym_key
    for name in ("customer_id",):
        value = request.path_params.get(name)
        if value:
            text = text.replace(value, f"<{name} {pseudonymise(value, key)}>")
    route = getattr(request.scope.get("route"), "path_format", "unmatched")
    log.error("unhandled %s in %s %s\n%s", type(exc).__name__, request.method, route, text)
    return OrjsonResponse({"detail": "internal error; it is logged"}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unhandled_error)
