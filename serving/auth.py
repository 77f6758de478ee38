"""API keys with scopes: stored as SHA-256 hashes, checked in constant time, shown once when created.

A key reads ``clt_<id>_<secret>``: the id finds the record, the hash of the whole key is compared with
``hmac.compare_digest``. The keys file (``settings.keys_file``) holds only ids, names, scopes and hashes, so a
leaked file grants nothing. Every worker looks at the file's inode, size and modification time on each request
(one ``stat``, about a microsecond) and re-reads it when they change, so a created or revoked key takes effect on
the next request, in every worker, without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from features.exceptions import ClienteleError

RECOMMENDATIONS_READ = "recommendations:read"
SCORES_READ = "scores:read"
EVENTS_WRITE = "events:write"
ADMIN = "admin"
SCOPES = (RECOMMENDATIONS_READ, SCORES_READ, EVENTS_WRITE, ADMIN)
PREFIX = "clt"
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()

log = logging.getLogger("clientele.serving")


class KeysError(ClienteleError):
    """A keys file or a keys command argument is wrong (the message says which)."""


@dataclass(frozen=True)
class ApiKey:
    """One key as the keys file stores it (never the key itself)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    sha256: str
    created_at: str
    rate_limit: float | None = None
    revoked_at: str | None = None

    def allows(self, scope: str) -> bool:
        """Admin keys may do everything."""
        return scope in self.scopes or ADMIN in self.scopes

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["scopes"] = list(self.scopes)
        return out


@dataclass
class KeyFile:
    """The keys file: read, validated, written atomically with mode 0600."""

    path: Path
    keys: list[ApiKey] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> "KeyFile":
        path = Path(path)
        if not path.exists():
            return cls(path)
        try:
            raw = json.loads(path.read_text())
            keys = [ApiKey(id=k["id"], name=k["name"], scopes=tuple(k["scopes"]), sha256=k["sha256"],
                           created_at=k["created_at"], rate_limit=k.get("rate_limit"), revoked_at=k.get("revoked_at"))
                    for k in raw["keys"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeysError(f"{path}: not a Clientele keys file ({type(exc).__name__}: {exc})") from None
        return cls(path, keys)

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({"keys": [k.to_json() for k in self.keys]}, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def find_live(self, name_or_id: str) -> ApiKey:
        """The unrevoked key with this id, or the one unrevoked key with this name (several: an error listing
        their ids, so the caller picks one)."""
        by_id = [k for k in self.keys if k.id == name_or_id]
        if by_id:
            if by_id[0].revoked_at is not None:
                raise KeysError(f"{self.path}: key {name_or_id} is already revoked ({by_id[0].revoked_at})")
            return by_id[0]
        live = [k for k in self.keys if k.name == name_or_id and k.revoked_at is None]
        if len(live) == 1:
            return live[0]
        if live:
            raise KeysError(f"{self.path}: {len(live)} live keys are named {name_or_id!r} "
                            f"(ids {', '.join(k.id for k in live)}): revoke one by its id")
        revoked = [k.id for k in self.keys if k.name == name_or_id]
        if revoked:
            raise KeysError(f"{self.path}: no live key named {name_or_id!r} (already revoked: {', '.join(revoked)})")
        raise KeysError(f"{self.path}: no key with the id or name {name_or_id!r} (see `clientele keys list`)")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str | list[str]) -> tuple[str, ...]:
    """Scopes from ``a,b`` (unknown ones are an error that lists the valid ones)."""
    parts = text.split(",") if isinstance(text, str) else text
    scopes = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not scopes:
        raise KeysError(f"--scopes: give at least one of {', '.join(SCOPES)}")
    for scope in scopes:
        if scope not in SCOPES:
            raise KeysError(f"--scopes: unknown scope {scope!r} (choose from {', '.join(SCOPES)})")
    return scopes


def create_key(path: Path, name: str, scopes: str | list[str], rate_limit: float | None = None) -> tuple[ApiKey, str]:
    """Add a key to the keys file; returns its record and the key itself (shown this once)."""
    if not name or len(name) > 64 or not all(ch.isalnum() or ch in "-_." for ch in name):
        raise KeysError(f"--name: {name!r} must be 1-64 letters, digits, '-', '_' or '.'")
    if rate_limit is not None and rate_limit <= 0:
        raise KeysError("--rate-limit: must be positive")
    parsed = parse_scopes(scopes)
    keyfile = KeyFile.read(path)
    if any(k.name == name and k.revoked_at is None for k in keyfile.keys):
        raise KeysError(f"{path}: a key named {name!r} exists; revoke it first or pick another name")
    key_id = secrets.token_hex(4)
    while any(k.id == key_id for k in keyfile.keys):
        key_id = secrets.token_hex(4)
    secret = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(id=key_id, name=name, scopes=parsed, sha256=hash_key(secret),
                    created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), rate_limit=rate_limit)
    keyfile.keys.append(record)
    keyfile.write()
    return record, secret


def revoke_key(path: Path, name_or_id: str) -> ApiKey:
    """Mark a key revoked (kept in the file so its name and history stay visible): by id, or by name when
    exactly one unrevoked key has it."""
    keyfile = KeyFile.read(path)
    key = keyfile.find_live(name_or_id)
    revoked = ApiKey(**{**asdict(key), "scopes": key.scopes,
                        "revoked_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    keyfile.keys = [revoked if k is key else k for k in keyfile.keys]
    keyfile.write()
    return revoked


class KeyStore:
    """The server's view of the keys file, re-read on the first request after the file changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._by_id: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int, int] | None = None
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the file if it changed; whether it did. A broken file keeps the keys already loaded (logged
        once per change of the file)."""
        try:
            st = os.stat(self.path)
            # The inode too: the file is replaced by a rename, so a same-sized rewrite within the file system's
            # timestamp granularity still shows.
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            keys = KeyFile.read(self.path).keys if stamp is not None else []
        except KeysError as exc:
            log.error("%s; the keys read before stay in use", exc)
            return False
        self._by_id = {k.id: k for k in keys if k.revoked_at is None}
        return True

    def __len__(self) -> int:
        return len(self._by_id)

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key's record when ``presented`` is a valid, unrevoked key; None otherwise."""
        self.refresh()
        parts = presented.split("_", 2)
        record = self._by_id.get(parts[1]) if len(parts) == 3 and parts[0] == PREFIX else None
        expected = record.sha256 if record is not None else _DUMMY_HASH
        ok = hmac.compare_digest(hash_key(presented), expected)
        return record if ok and record is not None else None
