"""Real-time events from the storefront, acknowledged once durably written."""

from __future__ import annotations

import time
from datetime import timezone

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from serving.api.deps import EventsKey, ServicesDep
from serving.api.errors import invalid
from serving.api.responses import AUTH_RESPONSES, BODY_RESPONSES
from serving.events import utc_iso
from serving.schemas import EventAccepted, EventRequest

router = APIRouter(tags=["events"], responses=AUTH_RESPONSES)

MAX_FUTURE_S = 300  # clocks drift; an event from further ahead is a bug in the sender


@router.post("/v1/events", status_code=202, response_model=EventAccepted, responses=BODY_RESPONSES)
async def post_event(event: EventRequest, key: EventsKey, services: ServicesDep) -> EventAccepted:
    """Record a view, cart, wishlist, try-on or purchase; the customer's next recommendations reflect it."""
    now = time.time()
    if event.timestamp is not None:
        moment = event.timestamp if event.timestamp.tzinfo else event.timestamp.replace(tzinfo=timezone.utc)
        ts = moment.timestamp()
        if ts > now + MAX_FUTURE_S:
            raise invalid("timestamp", "lies in the future", source="body")
    else:
        ts = now
    pseudonym = services.erasures.pseudonym(event.customer_id)
    # fdatasync blocks for milliseconds: off the event loop, so other requests keep flowing.
    record = await run_in_threadpool(services.journal.append_event, pseudonym, event.product_id, event.event_type,
                                     ts, event.channel)
    services.metrics.events.labels(event.event_type).inc()
    return EventAccepted(event_id=record["id"], received_at=utc_iso(record["received_at"]))
