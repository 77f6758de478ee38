"""Erasure of a customer: their pseudonym appended durably to the erasure list that training also reads.

The list (``settings.erasure_file``, one HMAC pseudonym per line, see :mod:`features.privacy`) is the record:
the next training run drops the customer, and every snapshot the server builds leaves them out. Until then the
server forgets them at once: the pseudonym joins the in-memory set every request checks, and an erasure line in
the event journal tells the other workers (:mod:`serving.events`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from features.privacy import append_erasure, pseudonymise, read_erasures

if TYPE_CHECKING:  # an import cycle otherwise: serving.events -> serving.recommend -> serving.visibility -> here
    from serving.events import EventJournal


class Erasures:
    """The erased pseudonyms of this process, read from the erasure list and kept current."""

    def __init__(self, path: Path, pseudonym_key: str):
        self.path = Path(path)
        self.key = pseudonym_key
        self.pseudonyms: set[str] = set(read_erasures(self.path))
        self._lock = threading.Lock()

    def pseudonym(self, customer_id: str) -> str:
        """The keyed pseudonym of a customer id (what logs, the journal and the list hold)."""
        return pseudonymise(customer_id, self.key)

    def __contains__(self, pseudonym: str) -> bool:
        return pseudonym in self.pseudonyms

    def __len__(self) -> int:
        return len(self.pseudonyms)

    def record(self, customer_id: str) -> tuple[str, bool]:
        """Append the customer to the erasure list durably; (pseudonym, whether it was new)."""
        pseudonym = self.pseudonym(customer_id)
        with self._lock:
            new = append_erasure(self.path, pseudonym)
            self.pseudonyms.add(pseudonym)
        return pseudonym, new


def erase_customer(erasures: Erasures, journal: EventJournal, customer_id: str) -> tuple[str, bool]:
    """Erase one customer, the one way the API and `clientele erase` both do it: the durable record training and
    every export read, then a journal line that makes every running worker forget them (this process before it
    returns). Returns (pseudonym, whether it was new)."""
    pseudonym, new = erasures.record(customer_id)
    journal.append_erasure(pseudonym)
    return pseudonym, new
