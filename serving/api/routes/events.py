"""Real-time events from the storefront, acknowledged once durably written."""

from __future__ import annotations

import logging
import time
from datetime import timezone

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from serving.api.deps import EventsKey, ServicesDep
from serving.api.errors import invalid
from serving.api.responses import AUTH_RESPONSES, BODY_RESPONSES, problem
from serving.events import utc_iso
from serving.schemas import EventAccepted, EventRequest

router = APIRouter(tags=["events"], responses=AUTH_RESPONSES)

MAX_FUTURE_S = 300  # clocks drift; an event from further ahead is a bug in the sender
JOURNAL_RETRY_S = 5  # after a failed journal write: long enough for an operator's alert, short for a queue

log = logging.getLogger("clientele.serving")


@router.post("/v1/events", status_code=202, response_model=EventAccepted,
             responses={**BODY_RESPONSES,
                        410: problem("The customer was erased: their events are not recorded."),
                        503: problem(
                 "The event journal cannot be written (disk full or read-only): the event is not acknowledged; "
                 "send it again after Retry-After.",
                 {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}})})
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
    own = services.erasures.pseudonym(event.customer_id)
    snap = services.store.snapshot
    # Journaled under the person the models know (any linked id of theirs: the card, the app, the web account).
    pseudonym = snap.person(own) if snap is not None else own
    services.journal.sync()  # erasures any worker (or `clientele erase`) recorded up to now
    if own in services.erasures or pseudonym in services.erasures:
        # Nothing of an erased customer is written: not journaled, not counted, nothing to replay into training.
        raise HTTPException(410, "the customer was erased: events for them are not recorded")
    # fdatasync blocks for milliseconds: off the event loop, so other requests keep flowing.
    try:
        record = await run_in_threadpool(services.journal.append_event, pseudonym, event.product_id,
                                         event.event_type, ts, event.channel)
    except OSError as exc:
        # A full or read-only disk is the server's trouble, not the sender's: the sender keeps the event and
        # retries, as with any 503 (the journal is never acknowledged without the fsync).
        log.error("event journal not writable: %s", exc.strerror or exc)
        raise HTTPException(503, f"the event could not be recorded ({exc.strerror or 'journal not writable'}); "
                                 f"send it again later", headers={"Retry-After": str(JOURNAL_RETRY_S)}) from None
    services.metrics.events.labels(event.event_type).inc()
    return EventAccepted(event_id=record["id"], received_at=utc_iso(record["received_at"]))
