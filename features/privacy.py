"""Pseudonymised customer ids (keyed HMAC) for logs, MLflow and the erasure list."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Iterable

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


def drop_erased(tables: dict[str, pd.DataFrame], erased: Iterable[str], key: str) -> tuple[dict[str, pd.DataFrame], int]:
    """Remove every row of erased customers from every table that has customer ids.

    Returns
    -------
    (tables, customers)
        The tables without them and how many distinct erased customers were found in the data.
    """
    erased = set(erased)
    if not erased:
        return tables, 0
    ids = pd.Index(pd.concat([t[C.customer_id] for name, t in tables.items() if C.customer_id in t.columns])
                   .unique())
    hit = {cid for cid in ids if pseudonymise(cid, key) in erased}
    out = {}
    for name, table in tables.items():
        out[name] = table[~table[C.customer_id].isin(hit)].reset_index(drop=True) \
            if C.customer_id in table.columns and name != Tables.products else table
    return out, len(hit)
