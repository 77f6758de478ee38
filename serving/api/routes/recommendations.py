"""Personal recommendations for one customer and for a batch of customers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response
from starlette.types import Scope

from serving.api.deps import (FiltersDep, ModelsDep, RecommendationsKey, Services, ServicesDep, make_filters,
                               require_recommender)
from serving.api.language import LocaleDep, scope_locale
from serving.api.fastpath import CUSTOMER_ID, authorise, path_id, query, with_fast_path
from serving.api.paths import CustomerPath
from serving.api.responses import AUTH_RESPONSES, BODY_RESPONSES, MODEL_RESPONSES, OrjsonResponse
from serving.auth import RECOMMENDATIONS_READ
from models.recommenders.filters import Filters
from serving.recommend import recommend
from serving.visibility import customer_view
from serving.schemas import MAX_N, BatchRecommendationsRequest, BatchRecommendationsResponse, RecommendationsResponse
from serving.snapshot import Snapshot

router = APIRouter(tags=["recommendations"], responses={**AUTH_RESPONSES, **MODEL_RESPONSES})



def _one(services: Services, snap: Snapshot, customer_id: str, n: int, filters: Filters, locale: str) -> dict:
    """The response body for one customer (the journal synced by the caller), reasons in ``locale``."""
    journal = services.journal
    view = customer_view(snap, services.erasures, customer_id, services.settings.consent_when_unknown)
    events = journal.recent(view.pseudonym) if journal.active and not view.erased else []
    strategy, items = recommend(snap, view, n, filters, events, locale, services.stock)
    return {"customer_id": customer_id, "strategy": strategy, "model_version": snap.label("recommender"),
            "items": items}


def _fast_recommendations(scope: Scope) -> Response | None:
    """The endpoint below for plain valid requests (see serving/api/fastpath.py)."""
    customer_id = path_id(scope, "customer_id", CUSTOMER_ID)
    parsed = query(scope) if customer_id is not None else None
    services: Services = scope["app"].state.services
    snap = services.store.snapshot
    if parsed is None or snap is None or snap.recommender is None or authorise(scope, RECOMMENDATIONS_READ) is None:
        return None
    services.journal.sync()
    n, filters = parsed
    return OrjsonResponse(_one(services, snap, customer_id, n, filters, scope_locale(scope)))  # type: ignore[arg-type]


@router.get("/v1/customers/{customer_id:customer}/recommendations", response_model=RecommendationsResponse)
@with_fast_path(_fast_recommendations)
async def customer_recommendations(
    customer_id: CustomerPath,
    key: RecommendationsKey,
    snap: ModelsDep,
    services: ServicesDep,
    filters: FiltersDep,
    locale: LocaleDep,
    n: Annotated[int, Query(ge=1, le=MAX_N, description="How many items.")] = 10,
) -> Response:
    """Top-n products for one customer, with a reason per item and the strategy used."""
    require_recommender(snap)
    services.journal.sync()
    return OrjsonResponse(_one(services, snap, customer_id, n, filters, locale))


@router.post("/v1/recommendations/batch", response_model=BatchRecommendationsResponse, responses=BODY_RESPONSES)
async def batch_recommendations(
    body: BatchRecommendationsRequest,
    key: RecommendationsKey,
    snap: ModelsDep,
    services: ServicesDep,
    locale: LocaleDep,
) -> Response:
    """Recommendations for up to 1000 customers in one call, all from the same model version."""
    require_recommender(snap)
    filters = make_filters(body.exclude_bought, body.category, body.exclude_category, body.in_stock_only,
                           body.price_min, body.price_max, source="body", buy_again_share=body.buy_again_share,
                           channel=body.channel, store_id=body.store_id, availability=body.availability,
                           new_only=body.new_only)
    services.journal.sync()
    results = [_one(services, snap, cid, body.n, filters, locale) for cid in body.customer_ids]
    return OrjsonResponse({"model_version": snap.label("recommender"), "results": results})
