"""Paging of the bulk exports (`/v1/scores`, `/v1/moments`): opaque cursors tied to the served versions and the
filters, and CSV streamed in chunks with every cell neutralised for spreadsheets."""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import orjson
from fastapi import HTTPException

from features.csvsafe import csv_row
from serving.api.errors import invalid
from serving.snapshot import Snapshot

CSV_CHUNK = 5000


def digest(sort: str, filters: dict[str, list[str]]) -> str:
    """A short fingerprint of an export's sort and filters: a cursor only continues the export it came from."""
    text = sort + "|" + "|".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(filters.items()) if v)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def encode_cursor(snap: Snapshot, digest: str, position: int) -> str:
    """The cursor of the row at ``position`` of an export of ``snap`` with the filters of ``digest``."""
    raw = orjson.dumps({"v": snap.version_key, "d": digest, "p": position})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, snap: Snapshot, digest: str) -> int:
    """The position a cursor points at: 422 when it is not one of ours or belongs to other filters, 409 when
    the served versions changed since the export began."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        version, cursor_digest, position = raw["v"], raw["d"], int(raw["p"])
    except (ValueError, KeyError, TypeError):
        raise invalid("cursor", "not a cursor this API returned; start without one") from None
    if cursor_digest != digest:
        raise invalid("cursor", "it belongs to an export with other filters or sort; start without one")
    if version != snap.version_key:
        raise HTTPException(409, f"the served models changed since this export began ({version} -> {snap.version_key}); "
                                 f"start again without a cursor")
    if position < 0:
        raise invalid("cursor", "not a cursor this API returned; start without one")
    return position


def csv_chunks(fields: Sequence[str], positions: np.ndarray, rows: Callable[[np.ndarray], list[dict[str, Any]]],
               cell: Callable[[str, Any], Any] = lambda name, value: value) -> Iterator[bytes]:
    """The header and then the rows of ``positions``, built ``CSV_CHUNK`` at a time by ``rows`` (each cell passed
    through ``cell``, e.g. to join a list); :func:`features.csvsafe.csv_row` neutralises ids and text that a
    spreadsheet would run as formulas (CSV injection)."""
    yield csv_row(fields).encode()
    for start in range(0, len(positions), CSV_CHUNK):
        lines = [csv_row([cell(f, row[f]) for f in fields]) for row in rows(positions[start:start + CSV_CHUNK])]
        yield "".join(lines).encode()
