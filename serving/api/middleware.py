"""Plain ASGI middleware (no BaseHTTPMiddleware: it costs a task per request): body cap, metrics, access log."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api.language import scope_locale
from serving.metrics import Metrics

access_log = logging.getLogger("clientele.access")

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ServingMiddleware:
    """Refuse bodies over the cap with 413, time every request by route template, optionally log it.

    The route *template* (``/v1/customers/{customer_id}/recommendations``) labels metrics and log lines, so
    neither ever holds a customer id and the series stay few.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, log_requests: bool):
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]
        language = scope_locale(scope).encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                # Reasons and labels follow Accept-Language (serving/api/language.py): caches must key on it.
                message["headers"] = [*message.get("headers", ()), (b"content-language", language),
                                      (b"vary", b"Accept-Language")]
            await send(message)

        method = scope["method"]
        inner_receive = receive
        if method in _BODY_METHODS:
            body = await self._read_capped(scope, receive)
            if body is None:
                await self._too_large(send_wrapper)
                self._record(scope, method, status[0], started)
                return
            inner_receive = _replay(body, receive)
        try:
            await self.app(scope, inner_receive, send_wrapper)
        finally:
            self._record(scope, method, status[0], started)

    async def _read_capped(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole request body, or None as soon as it exceeds the cap (declared or counted)."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_body:
                    return None
                break
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        body = orjson.dumps({"detail": f"request body is larger than the limit of {self.max_body} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, method: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route: Any = scope.get("route")
        # path_format: the template without convertors ({customer_id}, not {customer_id:path})
        template = getattr(route, "path_format", route.path) if route is not None else "unmatched"
        self.metrics.observe(method, template, status, elapsed)
        if self.log_requests:
            access_log.info("%s %s %d %.2fms key=%s", method, template, status, elapsed * 1000,
                            scope.get("clientele.key", "-"))


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then waits on the real one (for disconnects)."""
    sent = [False]

    async def replay() -> Message:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
