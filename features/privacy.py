"""Pseudonymised customer ids (keyed HMAC) for logs, MLflow and the erasure list, and the erasure list itself.

The erasure list (one pseudonym per line) is the one record of who was erased: the API's DELETE and
`clientele erase` append to it through :func:`append_erasure`, loading drops the rows of everyone on it before
anything is kept or rejected (:class:`ErasureList`), and serving and batch scoring leave them out whatever model
version they read.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.columns import Tables


def pseudonymise(customer_id: str, key: str) -> str:
    """A stable pseudonym of ``customer_id``: HMAC-SHA256 with ``key``, 24 hex characters."""
    return hmac.new(key.encode(), str(customer_id).encode(), hashlib.sha256).hexdigest()[:24]


def read_erasures(path: str | Path) -> set[str]:
    """Pseudonyms of erased customers (one per line); empty when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def append_erasure(path: str | Path, pseudonym: str) -> bool:
    """Append ``pseudonym`` to the erasure list durably (fsynced, under an exclusive lock); False when it was
    already there.

    The one writer of the list: the API's DELETE and `clientele erase` both call it, from any process.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if pseudonym in read_erasures(path):
            return False
        size = os.fstat(fd).st_size
        line = pseudonym.encode() + b"\n"
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a line torn by a crash must not swallow this one
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    return True


@dataclass(frozen=True)
class ErasureList:
    """The pseudonyms of erased customers and the key that makes them: what loading asks of every row's id."""

    pseudonyms: frozenset[str]
    key: str

    @classmethod
    def read(cls, path: str | Path, key: str) -> "ErasureList":
        """The list at ``path`` (empty when there is none)."""
        return cls(frozenset(read_erasures(path)), key)

    def __bool__(self) -> bool:
        return bool(self.pseudonyms)

    def rows(self, customer_ids: pd.Series) -> tuple[np.ndarray, set[str]]:
        """Which rows hold an erased customer's id, and the pseudonyms found.

        Parameters
        ----------
        customer_ids
            Canonical customer ids (missing values are nobody's).

        Returns
        -------
        (mask, pseudonyms)
            A boolean array over the rows, and the distinct erased pseudonyms among them.
        """
        if not self.pseudonyms or not len(customer_ids):
            return np.zeros(len(customer_ids), bool), set()
        codes, uniques = pd.factorize(customer_ids)
        names = [pseudonymise(u, self.key) for u in uniques]  # one HMAC per distinct id
        hit = np.fromiter((n in self.pseudonyms for n in names), bool, len(names))
        mask = np.zeros(len(codes), bool)
        known = codes >= 0
        mask[known] = hit[codes[known]]
        return mask, {n for n, h in zip(names, hit) if h}

    def drop(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` without the rows of erased customers (unchanged when it has no ``customer_id``)."""
        if not self.pseudonyms or C.customer_id not in frame.columns:
            return frame
        mask, _ = self.rows(frame[C.customer_id].astype("str").where(frame[C.customer_id].notna()))
        return frame[~mask].reset_index(drop=True) if mask.any() else frame


def drop_erased(tables: dict[str, pd.DataFrame], erased: Iterable[str], key: str) -> tuple[dict[str, pd.DataFrame], int]:
    """Remove every row of erased customers from every table that has customer ids.

    Returns
    -------
    (tables, customers)
        The tables without them and how many distinct erased customers were found in the data.
    """
    erasures = ErasureList(frozenset(erased), key)
    if not erasures:
        return tables, 0
    out, hit = {}, set()
    for name, table in tables.items():
        if C.customer_id in table.columns and name != Tables.products:
            mask, found = erasures.rows(table[C.customer_id])
            hit |= found
            out[name] = table[~mask].reset_index(drop=True)
        else:
            out[name] = table
    return out, len(hit)
