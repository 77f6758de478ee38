"""Products similar to a product."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from starlette.responses import Response
from starlette.types import Scope

from serving.api.deps import FiltersDep, ModelsDep, RecommendationsKey, ServicesDep, require_recommender
from serving.api.language import LocaleDep, scope_locale
from serving.api.fastpath import authorise, path_id, query, with_fast_path
from serving.api.responses import AUTH_RESPONSES, MODEL_RESPONSES, OrjsonResponse, problem
from serving.auth import RECOMMENDATIONS_READ
from serving.recommend import similar
from serving.schemas import ID_PATTERN, ID_RULE, MAX_N, SimilarProductsResponse

router = APIRouter(tags=["recommendations"], responses={**AUTH_RESPONSES, **MODEL_RESPONSES})


def _fast_similar(scope: Scope) -> Response | None:
    """The endpoint below for plain valid requests of known products (see serving/api/fastpath.py)."""
    product_id = path_id(scope, "product_id")
    parsed = query(scope) if product_id is not None else None
    snap = scope["app"].state.services.store.snapshot
    rec = snap.recommender if snap is not None else None
    if parsed is None or rec is None:
        return None
    item = rec.product_index.get(product_id)
    if item is None or authorise(scope, RECOMMENDATIONS_READ) is None:
        return None
    n, filters = parsed
    stock = scope["app"].state.services.stock
    return OrjsonResponse({"product_id": product_id, "model_version": snap.label("recommender"),
                           "items": similar(rec, item, n, filters, scope_locale(scope), stock)})


@router.get("/v1/products/{product_id}/similar", response_model=SimilarProductsResponse,
            responses={404: problem("The product is unknown to the loaded recommender.")})
@with_fast_path(_fast_similar)
async def similar_products(
    product_id: Annotated[str, Path(pattern=ID_PATTERN, description=f"Product id ({ID_RULE}).")],
    key: RecommendationsKey,
    snap: ModelsDep,
    services: ServicesDep,
    filters: FiltersDep,
    locale: LocaleDep,
    n: Annotated[int, Query(ge=1, le=MAX_N, description="How many items.")] = 10,
) -> Response:
    """Products similar to one product ("you may also like"), filtered like recommendations."""
    require_recommender(snap)
    rec = snap.recommender
    assert rec is not None
    item = rec.product_index.get(product_id)
    if item is None:
        raise HTTPException(404, f"product {product_id!r} is unknown to {snap.label('recommender')}")
    return OrjsonResponse({"product_id": product_id, "model_version": snap.label("recommender"),
                           "items": similar(rec, item, n, filters, locale, services.stock)})
