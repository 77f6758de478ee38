"""Erasure of a customer: their pseudonym appended durably to the erasure list that training also reads.

The list (``settings.erasure_file``, one HMAC pseudonym per line, see :mod:`features.privacy`) is the record:
the next training run drops the customer, and every snapshot the server builds leaves them out. The customer
also leaves the identity map (:mod:`features.identities`), so no export can name them again, whatever model
version (all of which hold pseudonyms only) is served. Until then the
server forgets them at once: the pseudonym joins the in-memory set every request checks, and an erasure line in
the event journal tells the other workers (:mod:`serving.events`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from features.identities import IdentityMap
from features.privacy import append_erasure, pseudonymise, read_erasures

if TYPE_CHECKING:  # an import cycle otherwise: serving.events -> serving.recommend -> serving.visibility -> here
    from serving.events import EventJournal


class Erasures:
    """The erased pseudonyms of this process, read from the erasure list and kept current."""

    def __init__(self, path: Path, pseudonym_key: str, identities: IdentityMap | None = None):
        self.path = Path(path)
        self.key = pseudonym_key
        self.identities = identities
        self.pseudonyms: set[str] = set(read_erasures(self.path))
        self._lock = threading.Lock()

    def pseudonym(self, customer_id: str) -> str:
        """The keyed pseudonym of a customer id (what logs, the journal and the list hold)."""
        return pseudonymise(customer_id, self.key)

    def __contains__(self, pseudonym: str) -> bool:
        return pseudonym in self.pseudonyms

    def __len__(self) -> int:
        return len(self.pseudonyms)

    def record(self, customer_ids: list[str]) -> tuple[list[tuple[str, bool]], list[str]]:
        """Append the customers to the erasure list durably, with every other id of the same person, then remove
        them all from the identity map (once); (pseudonym, whether it was new) of each customer asked for, and
        the pseudonyms of the linked ids erased with them."""
        asked = [self.pseudonym(customer_id) for customer_id in customer_ids]
        # Every id of the person goes (features.linking): the card, the online account and the app id alike.
        linked = sorted(self.identities.person_ids(asked) - set(asked)) if self.identities is not None else []
        done = []
        for pseudonym in [*asked, *linked]:
            with self._lock:
                new = append_erasure(self.path, pseudonym)
                self.pseudonyms.add(pseudonym)
            done.append((pseudonym, new))
        if self.identities is not None and done:
            # Exports can no longer name them, whatever model version (all hold pseudonyms only) is served.
            self.identities.forget([pseudonym for pseudonym, _ in done])
        return done[:len(asked)], linked


def erase_customers(erasures: Erasures, journal: EventJournal, customer_ids: list[str]) -> list[tuple[str, bool]]:
    """Erase customers, the one way the API and `clientele erase` both do it: the durable record training and
    every export read (every linked id of the same person included), then a journal line each that makes every
    running worker forget them (this process before it returns). Returns (pseudonym, whether it was new) of each
    customer asked for."""
    done, linked = erasures.record(customer_ids)
    for pseudonym in [p for p, _ in done] + linked:
        journal.append_erasure(pseudonym)
    return done
