"""Response classes and the error responses every route documents."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from serving.schemas import Problem, ValidationProblem


class OrjsonResponse(Response):
    """JSON rendered by orjson (handlers on the hot path build plain dicts and skip response validation)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"model": Problem, "description": description}
    if headers:
        out["headers"] = headers
    return out


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem("No API key, or an unknown or revoked one (header X-API-Key)."),
    403: problem("The key lacks the scope this endpoint needs."),
    422: {"model": ValidationProblem, "description": "Invalid input: `detail` says what, in one line."},
    429: problem("The key's rate limit is exceeded; retry after the seconds in Retry-After.",
                {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}),
}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: problem("The body cannot be read as JSON text at all (not UTF-8)."),
    413: problem("The request body is larger than the server's limit (CLIENTELE_MAX_BODY_BYTES)."),
}
MODEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: problem("The model this endpoint needs is not loaded yet (see /readyz).",
                 {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}),
}
