"""Who a customer is to the API: one answer from the erasure list and the served consent, asked by every route.

An erased customer is nobody: no scores, no profile, non-personal recommendations, whatever model version is
loaded. A customer who refused profiling gets nothing derived from their data. A customer the served models do
not know may be profiled when ``consent_when_unknown`` says so (the storefront sends events only for customers
who agreed).
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.erasure import Erasures
from serving.snapshot import Snapshot


@dataclass(frozen=True)
class CustomerView:
    """One customer as this request may see them."""

    code: int | None  # the snapshot's customer code; None when unknown or erased
    erased: bool
    consent: bool  # may be profiled: personal recommendations, live events, scores
    pseudonym: str  # the keyed pseudonym: what served models, the journal and the erasure list know them by


def customer_view(snap: Snapshot, erasures: Erasures, customer_id: str, consent_when_unknown: bool) -> CustomerView:
    """The customer as every route sees them (the erasure list read now, not only when the snapshot was built).

    Served models know customers by pseudonym only (:mod:`features.identities`): the id of the request is
    pseudonymised here, once, and everything after it asks by pseudonym.
    """
    own = erasures.pseudonym(customer_id)
    pseudonym = snap.person(own)  # an app id or a card of a linked person: the person (features.linking)
    erased = own in erasures or pseudonym in erasures
    code = None if erased else snap.customer_index.get(pseudonym)
    if erased:
        consent = False
    elif code is not None:
        consent = bool(snap.consent_bytes[code])
    else:
        consent = consent_when_unknown
    return CustomerView(code=code, erased=erased, consent=consent, pseudonym=pseudonym)
