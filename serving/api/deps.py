"""Dependencies of the routes: the services of this worker, the current snapshot, the API key and its scope, filters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, Security
from fastapi.security import APIKeyHeader

from serving.api.errors import invalid
from serving.auth import ADMIN, EVENTS_WRITE, RECOMMENDATIONS_READ, SCORES_READ, ApiKey, KeyStore
from serving.erasure import Erasures
from serving.events import EventJournal
from serving.metrics import Metrics
from serving.ratelimit import RateLimiter, retry_after
from models.recommenders.filters import Filters
from serving.schemas import (AVAILABILITY_TEXT, BUY_AGAIN_SHARE_TEXT, CHANNEL_TEXT, MAX_CATEGORIES, NEW_ONLY_TEXT,
                             STORE_ID_TEXT, Availability, Category, Channel, StoreId)
from serving.settings import ServingSettings
from serving.snapshot import Snapshot
from serving.stock import StockFile
from serving.store import ModelStore
from serving.visibility import CustomerView, customer_view


@dataclass(eq=False)
class Services:
    """Everything a request may need, created once per worker by :func:`serving.app.create_app`."""

    settings: ServingSettings
    store: ModelStore
    keys: KeyStore
    limiter: RateLimiter
    journal: EventJournal
    erasures: Erasures
    metrics: Metrics
    stock: StockFile


async def services_dep(request: Request) -> Services:
    return request.app.state.services


async def snapshot_dep(request: Request) -> Snapshot:
    # Read once: everything the request answers comes from this one object, whatever swaps meanwhile.
    snapshot = request.app.state.services.store.snapshot
    if snapshot is None:
        raise HTTPException(503, "models are not loaded yet; see /readyz", headers={"Retry-After": "5"})
    return snapshot


def known(services: Services, snap: Snapshot, customer_id: str) -> CustomerView:
    """The customer as :func:`serving.visibility.customer_view` sees them, the journal's erasures read first
    (the scores and profile routes)."""
    services.journal.sync()
    return customer_view(snap, services.erasures, customer_id, services.settings.consent_when_unknown)


def require_recommender(snap: Snapshot) -> None:
    """503 with Retry-After when no recommender is loaded (the other models may be)."""
    if snap.recommender is None:
        raise HTTPException(503, "no recommender model is loaded (no champion in the registry yet)",
                            headers={"Retry-After": "30"})


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                              description="An API key from `clientele keys create`; its scopes decide what it may "
                                          "call.")


@dataclass(frozen=True)
class Refusal:
    """Why a request's key is refused: the status and detail the normal lane answers with."""

    status: int
    detail: str
    headers: dict[str, str] | None = None
    key_name: str | None = None  # the key, when it was known (a 403 or a 429)


def authenticate(services: Services, presented: str | None, required: str | None) -> ApiKey | Refusal:
    """The one check of an API key, shared by the dependency below and the fast lane
    (:mod:`serving.api.fastpath`): known and live, holding the scope ``required`` (None: any), within its rate.

    A refusal spends no token, so the fast lane can refuse and leave the answer to the normal lane, which asks
    again and gets the same answer.
    """
    if not presented:
        return Refusal(401, "missing API key: send it in the X-API-Key header")
    record = services.keys.authenticate(presented)
    if record is None:
        return Refusal(401, "invalid or revoked API key")
    if required is not None and not record.allows(required):
        return Refusal(403, f"the key {record.name!r} lacks the scope {required!r} this endpoint needs",
                       key_name=record.name)
    wait = services.limiter.acquire(record.id, record.rate_limit or services.settings.rate_limit_per_s)
    if wait:
        return Refusal(429, f"rate limit of the key {record.name!r} exceeded; retry later",
                       {"Retry-After": retry_after(wait)}, record.name)
    return record


class RequireScope:
    """Authenticate the X-API-Key header, check a scope (None: any valid key) and the key's rate limit."""

    def __init__(self, scope: str | None):
        self.scope = scope

    async def __call__(self, request: Request, key: Annotated[str | None, Security(api_key_header)]) -> ApiKey:
        services: Services = request.app.state.services
        found = authenticate(services, key, self.scope)
        if isinstance(found, Refusal):
            if found.status == 429:
                services.metrics.rate_limited.labels(found.key_name).inc()
            raise HTTPException(found.status, found.detail, headers=found.headers)
        request.scope["clientele.key"] = found.name
        return found


async def filters_dep(
    exclude_bought: Annotated[bool | None, Query(description="Leave out products the customer bought before "
                                                             "(default: the model's setting).")] = None,
    category: Annotated[list[Category] | None, Query(max_length=MAX_CATEGORIES,
                                                     description="Only these categories (repeat the parameter "
                                                                 "for several).")] = None,
    exclude_category: Annotated[list[Category] | None, Query(max_length=MAX_CATEGORIES,
                                                             description="Not these categories.")] = None,
    in_stock_only: Annotated[bool, Query(description="Only products in stock.")] = True,
    price_min: Annotated[float | None, Query(ge=0, description="Lowest price.")] = None,
    price_max: Annotated[float | None, Query(ge=0, description="Highest price.")] = None,
    buy_again_share: Annotated[float | None, Query(ge=0, le=1, description=BUY_AGAIN_SHARE_TEXT)] = None,
    channel: Annotated[Channel | None, Query(description=CHANNEL_TEXT)] = None,
    store_id: Annotated[StoreId | None, Query(description=STORE_ID_TEXT)] = None,
    availability: Annotated[Availability, Query(description=AVAILABILITY_TEXT)] = "in_store",
    new_only: Annotated[bool, Query(description=NEW_ONLY_TEXT)] = False,
) -> Filters:
    return make_filters(exclude_bought, category, exclude_category, in_stock_only, price_min, price_max,
                        buy_again_share=buy_again_share, channel=channel, store_id=store_id,
                        availability=availability, new_only=new_only)


def make_filters(exclude_bought: bool | None, category: list[str] | None, exclude_category: list[str] | None,
                 in_stock_only: bool, price_min: float | None, price_max: float | None, source: str = "query",
                 buy_again_share: float | None = None, channel: str | None = None, store_id: str | None = None,
                 availability: str = "in_store", new_only: bool = False) -> Filters:
    """Filters from request parameters; a price that is not a finite number or a band upside down is a 422."""
    for name, value in (("price_min", price_min), ("price_max", price_max)):
        if value is not None and not math.isfinite(value):
            raise invalid(name, "must be a finite number", source)
    if price_min is not None and price_max is not None and price_min > price_max:
        raise invalid("price_min", f"must not exceed price_max ({price_max:g})", source)
    if buy_again_share is not None and not math.isfinite(buy_again_share):
        raise invalid("buy_again_share", "must be a finite number", source)
    return Filters(exclude_bought=exclude_bought, categories=tuple(category or ()),
                   exclude_categories=tuple(exclude_category or ()), in_stock_only=in_stock_only,
                   price_min=price_min, price_max=price_max, buy_again_share=buy_again_share, channel=channel,
                   store_id=store_id, availability=availability, new_only=new_only)


ServicesDep = Annotated[Services, Depends(services_dep)]
ModelsDep = Annotated[Snapshot, Depends(snapshot_dep)]
FiltersDep = Annotated[Filters, Depends(filters_dep)]
ApiKeyDep = Annotated[ApiKey, Depends(RequireScope(None))]
RecommendationsKey = Annotated[ApiKey, Depends(RequireScope(RECOMMENDATIONS_READ))]
ScoresKey = Annotated[ApiKey, Depends(RequireScope(SCORES_READ))]
EventsKey = Annotated[ApiKey, Depends(RequireScope(EVENTS_WRITE))]
AdminKey = Annotated[ApiKey, Depends(RequireScope(ADMIN))]
