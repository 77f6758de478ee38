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
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.columns import Tables
from features.exceptions import ConfigError

# The key every installation used before keys were generated: public, so pseudonyms made with it are reversible by
# enumerating ids. Accepted only in the demo (CLIENTELE_DEMO=1, set by `make demo`), whose data is synthetic.
DEVELOPMENT_KEY = "clientele-development-key"
KEY_FILE = "pseudonym.key"
PRIVATE_UMASK = 0o077


def private_files() -> None:
    """Create every later file of this process (and its children) readable by its owner only: 600, folders 700.

    Called once by each entry point (the ``clientele`` command and the server factory): files written by
    libraries (SQLite's ``mlflow.db``, pyarrow's Parquet, MLflow's artefacts) follow the umask too, which no
    per-file ``chmod`` would catch.
    """
    os.umask(PRIVATE_UMASK)


def pseudonym_key(data_dir: str | Path, configured: str | None = None, demo: bool = False,
                  erasure_file: str | Path | None = None) -> str:
    """The HMAC key of this installation: every process (training, serving, CLI) takes it from here.

    Parameters
    ----------
    data_dir
        The data folder training and serving share; a generated key lives in ``<data_dir>/pseudonym.key``.
    configured
        An explicitly configured key (``CLIENTELE_PSEUDONYM_KEY``); it wins over the file.
    demo
        Whether this is the demo (``CLIENTELE_DEMO=1``): only there is the public development key accepted.
    erasure_file
        The erasure list: when it holds pseudonyms but no key file exists, they were made with an earlier key.

    Returns
    -------
    str
        The configured key, else the installation's key file, else a new random key written there (mode 600)
        on first use.

    Raises
    ------
    ConfigError
        The development key outside the demo; an empty or unreadable key file; no key yet although the data
        folder holds an erasure list (made with some earlier key: a new key would bring the customers back).
    """
    if configured is not None:
        if configured == DEVELOPMENT_KEY and not demo:
            raise ConfigError("CLIENTELE_PSEUDONYM_KEY is the public development key, which makes pseudonyms "
                              "reversible: unset it (a random key is kept in <data_dir>/pseudonym.key) or set a "
                              "secret (the development key is accepted only with CLIENTELE_DEMO=1)")
        if not configured.strip():
            raise ConfigError("CLIENTELE_PSEUDONYM_KEY is empty: unset it or set a secret")
        return configured
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        erased = Path(erasure_file) if erasure_file is not None else None
        if erased is not None and read_erasures(erased):
            raise ConfigError(f"{erased} was written with an earlier pseudonym key and {path} does not exist: set "
                              f"CLIENTELE_PSEUDONYM_KEY to that key (the former default was the development key, "
                              f"accepted only with CLIENTELE_DEMO=1)")
        _write_new_key(path)
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the pseudonym key ({exc.strerror})") from None
    if not key:
        raise ConfigError(f"{path} is empty: restore it from a backup or set CLIENTELE_PSEUDONYM_KEY")
    if key == DEVELOPMENT_KEY and not demo:
        raise ConfigError(f"{path} holds the public development key: replace it with a secret "
                          f"(the development key is accepted only with CLIENTELE_DEMO=1)")
    return key


def _write_new_key(path: Path) -> None:
    """Write a random key to ``path`` (mode 600) unless another process has just done so: theirs wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            # A hard link appears whole or not at all and fails if the file exists: two processes starting on a
            # fresh data folder (training and the server) end up with the same key.
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


PSEUDONYM_LENGTH = 24  # hex characters of the HMAC kept


def pseudonymise(customer_id: str, key: str) -> str:
    """A stable pseudonym of ``customer_id``: HMAC-SHA256 with ``key``, 24 hex characters."""
    return hmac.new(key.encode(), str(customer_id).encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_LENGTH]


def pseudonymise_many(customer_ids: Iterable[object], key: str) -> np.ndarray:
    """:func:`pseudonymise` of each id, as an object array in their order (the keyed HMAC prepared once)."""
    base = hmac.new(key.encode(), digestmod=hashlib.sha256)
    out = []
    for value in customer_ids:
        mac = base.copy()
        mac.update(str(value).encode())
        out.append(mac.hexdigest()[:PSEUDONYM_LENGTH])
    return np.array(out, dtype=object)


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
        names = pseudonymise_many(uniques, self.key).tolist()  # one HMAC per distinct id
        hit = np.fromiter((n in self.pseudonyms for n in names), bool, len(names))
        mask = np.zeros(len(codes), bool)
        known = codes >= 0
        mask[known] = hit[codes[known]]
        return mask, {n for n, h in zip(names, hit) if h}

    def among(self, customer_ids: Iterable[str]) -> set[str]:
        """The ids among ``customer_ids`` that are on the list."""
        ids = list(customer_ids)
        if not self.pseudonyms or not ids:
            return set()
        return {c for c, p in zip(ids, pseudonymise_many(ids, self.key)) if p in self.pseudonyms}

    def with_ids(self, customer_ids: Iterable[str]) -> "ErasureList":
        """This list and ``customer_ids`` (every id of an erased person, see :mod:`features.linking`)."""
        return ErasureList(self.pseudonyms | set(pseudonymise_many(customer_ids, self.key)), self.key)

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


def marketing_consent(customer_ids: pd.Series, customers: pd.DataFrame | None) -> np.ndarray:
    """Whether each customer may be contacted with marketing: ``consent_marketing`` is true in the customers table.

    Unlike profiling (where a missing flag counts as consent, see the validation report), a contact needs a yes on
    record: a customer the table does not know, or whose flag is missing, is not contactable. Campaign planning,
    the CRM exports' ``contactable`` filter and the scores' ``consent_marketing`` column all ask this function.
    """
    ids = pd.Index(pd.Series(customer_ids).astype("str"))
    if customers is None or C.consent_marketing not in customers.columns:
        return np.zeros(len(ids), dtype=bool)
    flags = pd.Series(customers[C.consent_marketing].fillna(False).astype(bool).to_numpy(),
                      index=customers[C.customer_id].astype("str").to_numpy())
    flags = flags[~flags.index.duplicated()]
    return flags.reindex(ids).fillna(False).to_numpy(dtype=bool)
