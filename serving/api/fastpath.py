"""A fast lane for the storefront's hottest routes, with FastAPI's own handling as the fallback.

FastAPI resolves each query parameter through its generic machinery; with the seven parameters of the
recommendations endpoint that costs about 150 us a request, more than the lookup itself and more than a bare
endpoint costs in all, and its router and per-request exit stacks add more. :class:`FastLane` sits in front of
the router: for a GET whose path matches a route whose endpoint carries a ``fast_path``, it calls that function
on the raw ASGI scope -- a hand-written parser that accepts only plain, valid values (``n=10``,
``in_stock_only=true``, ...) and calls the same functions the endpoint calls. Anything it does not judge -- a
missing or wrong key, a rate limit, an invalid or unusual value, a model not loaded -- goes the normal FastAPI
way, so errors, defaults and the OpenAPI document come from one place. tests/serving/test_fastpath.py checks
that both lanes answer alike.
"""

from __future__ import annotations

import re
from typing import Any, Callable
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.api.deps import authenticate
from serving.auth import ApiKey
from models.recommenders.filters import Filters
from serving.schemas import CUSTOMER_ID_PATTERN, ID_PATTERN, MAX_CATEGORIES, MAX_N

FastPath = Callable[[Scope], Response | None]

_ID = re.compile(ID_PATTERN)
CUSTOMER_ID = re.compile(CUSTOMER_ID_PATTERN)
_N = re.compile(r"[1-9][0-9]{0,2}")
_PRICE = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?")
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_FILTER_KEYS = {"n", "exclude_bought", "category", "exclude_category", "in_stock_only", "price_min", "price_max",
                "channel", "store_id", "availability"}
_CHANNELS = {"store", "online", "app"}
_AVAILABILITY = {"in_store", "order_online"}
_LISTS = {"category", "exclude_category"}
# Parameters the fast lane does not parse: the router validates and answers them.
_ROUTER_KEYS = {"buy_again_share", "new_only"}
_DEFAULT = Filters()


class FastLane:
    """ASGI middleware: answers requests of routes with a ``fast_path`` before the router, when it can."""

    def __init__(self, app: ASGIApp, routes: list[APIRoute]):
        self.app = app
        self.lanes = [(route.path_regex, route, fast) for route in routes
                      if (fast := getattr(route.endpoint, "fast_path", None)) is not None]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path") \
                and scope["app"].state.services.settings.fast_path:
            path = scope["path"]
            for regex, route, fast in self.lanes:
                match = regex.match(path)
                if match is None:
                    continue
                scope["path_params"] = match.groupdict()
                scope["route"] = route  # what metrics and logs label the request with
                response = fast(scope)
                if response is not None:
                    await response(scope, receive, send)
                    return
                break
        await self.app(scope, receive, send)


def with_fast_path(fast: FastPath) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach ``fast`` to an endpoint (used by :class:`FastLane`)."""

    def attach(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint.fast_path = fast  # type: ignore[attr-defined]
        return endpoint

    return attach


def authorise(scope: Scope, required: str) -> ApiKey | None:
    """The key record when :func:`serving.api.deps.authenticate` accepts the X-API-Key header for ``required``;
    None otherwise (the normal lane then answers 401, 403 or 429)."""
    presented = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            presented = value.decode("latin-1")
            break
    found = authenticate(scope["app"].state.services, presented, required)
    if not isinstance(found, ApiKey):
        return None
    scope["clientele.key"] = found.name
    return found


def path_id(scope: Scope, name: str, rule: re.Pattern[str] = _ID) -> str | None:
    """The path parameter ``name`` when it fits ``rule`` (product ids by default); None otherwise."""
    value = scope.get("path_params", {}).get(name)
    return value if isinstance(value, str) and rule.fullmatch(value) else None


def query(scope: Scope) -> tuple[int, Filters] | None:
    """``n`` and the filters when every known parameter holds a plain valid value; None otherwise."""
    raw = scope.get("query_string", b"")
    if not raw:
        return 10, _DEFAULT
    if raw == b"n=10":  # what the storefront sends on nearly every page view
        return 10, _DEFAULT
    n = 10
    scalars: dict[str, str] = {}
    lists: dict[str, list[str]] = {"category": [], "exclude_category": []}
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if key in _ROUTER_KEYS:
            return None
        if key not in _FILTER_KEYS:
            continue
        if key in _LISTS:
            if not value or len(value) > 100:
                return None
            lists[key].append(value)
            continue
        if key in scalars:
            return None
        scalars[key] = value
    for key, values in lists.items():
        if len(values) > MAX_CATEGORIES:
            return None
    if "n" in scalars:
        if not _N.fullmatch(scalars["n"]):
            return None
        n = int(scalars["n"])
        if n > MAX_N:
            return None
    bools: dict[str, bool | None] = {}
    for key in ("exclude_bought", "in_stock_only"):
        if key in scalars:
            flag = _BOOLS.get(scalars[key])
            if flag is None:
                return None
            bools[key] = flag
    prices: dict[str, float | None] = {"price_min": None, "price_max": None}
    for key in prices:
        if key in scalars:
            if not _PRICE.fullmatch(scalars[key]):
                return None
            prices[key] = float(scalars[key])
    lo, hi = prices["price_min"], prices["price_max"]
    if lo is not None and hi is not None and lo > hi:
        return None
    channel, store_id = scalars.get("channel"), scalars.get("store_id")
    availability = scalars.get("availability", "in_store")
    if (channel is not None and channel not in _CHANNELS) or availability not in _AVAILABILITY \
            or (store_id is not None and not CUSTOMER_ID.fullmatch(store_id)):
        return None
    return n, Filters(exclude_bought=bools.get("exclude_bought"), categories=tuple(lists["category"]),
                      exclude_categories=tuple(lists["exclude_category"]),
                      in_stock_only=bools.get("in_stock_only", True), price_min=lo, price_max=hi, channel=channel,
                      store_id=store_id, availability=availability)
