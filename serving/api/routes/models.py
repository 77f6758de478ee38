"""The model versions in use, and a reload on demand."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from serving.api.deps import AdminKey, ApiKeyDep, ServicesDep
from serving.api.responses import AUTH_RESPONSES, problem
from serving.schemas import ModelsResponse, ReloadResponse

router = APIRouter(tags=["models"], responses=AUTH_RESPONSES)


@router.get("/v1/models", response_model=ModelsResponse)
async def models(key: ApiKeyDep, services: ServicesDep) -> ModelsResponse:
    """Registry versions this worker serves, when it last checked, and the last error if any."""
    store = services.store
    return ModelsResponse(ready=store.ready, models=store.describe(), last_check_at=store.last_check_at,
                          last_error=store.last_error)


@router.post("/v1/admin/reload", response_model=ReloadResponse,
             responses={502: problem("The registry could not be read or the new version could not be loaded; the "
                                     "old one keeps serving.")})
async def reload(key: AdminKey, services: ServicesDep) -> ReloadResponse:
    """Check the registry for new champions now and swap them in (every worker follows within a second)."""
    store = services.store
    try:
        result = await run_in_threadpool(store.check)
    except Exception as exc:  # noqa: BLE001 - the store logged it; the caller gets the reason
        raise HTTPException(502, f"reload failed, still serving the previous versions: {exc}") from None
    store.request_reload_everywhere()
    return ReloadResponse(changed=result["changed"], models=result["models"])
