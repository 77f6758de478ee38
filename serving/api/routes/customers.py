"""A customer's profile, and erasure of a customer."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from serving.api.deps import AdminKey, ModelsDep, ScoresKey, ServicesDep, known
from serving.api.responses import AUTH_RESPONSES, MODEL_RESPONSES, problem
from serving.api.paths import CustomerPath, erasure_target
from serving import erasure
from serving.schemas import CustomerProfile, ErasureResponse

log = logging.getLogger("clientele.erasure")
router = APIRouter(tags=["customers"], responses=AUTH_RESPONSES)


@router.get("/v1/customers/{customer_id:customer}/profile", response_model=CustomerProfile,
            responses={**MODEL_RESPONSES, 404: problem("The customer has no profile (unknown or erased).")})
async def customer_profile(customer_id: CustomerPath, key: ScoresKey, snap: ModelsDep,
                           services: ServicesDep) -> CustomerProfile:
    """What the CRM shows on a customer page: first and last purchase, orders, spend, channels, consents."""
    if snap.clv is None or snap.clv.profiles is None:
        raise HTTPException(503, "no CLV model with profiles is loaded (no champion in the registry yet)",
                            headers={"Retry-After": "30"})
    code = known(services, snap, customer_id).code
    profile = snap.profile_of(code) if code is not None else None
    if profile is None:
        raise HTTPException(404, f"customer {customer_id!r} has no profile in {snap.label('clv')}")
    return CustomerProfile(customer_id=customer_id, model_version=snap.label("clv") or "", profile=profile)


@router.delete("/v1/customers/{customer_id:customer}", response_model=ErasureResponse,
               dependencies=[Depends(erasure_target)])
async def erase_customer(customer_id: CustomerPath, key: AdminKey, services: ServicesDep) -> ErasureResponse:
    """Erase a customer: gone from every response now and from the next training run."""
    [(pseudonym, new)] = await run_in_threadpool(erasure.erase_customers, services.erasures, services.journal,
                                                 [customer_id])
    log.info("erased customer %s (key %s)", pseudonym, key.name)
    return ErasureResponse(customer_id=customer_id, already_erased=not new,
                           detail="removed from served data now; the next training run leaves the customer out")
