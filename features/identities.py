"""Customer ids in two spaces: the retailer's own ids in its data and in exports, keyed pseudonyms everywhere else.

Training replaces every customer id by its pseudonym right after loading (erased customers are dropped first,
:func:`pseudonymise_tables`), so features, models, their MLflow artefacts and the served tables hold pseudonyms
only: a copied registry or artefact store names nobody. The identity map (pseudonym -> own id,
:class:`IdentityMap`) is the one place the two spaces meet. It lives in the data folder (mode 600), never in
MLflow; erasing a customer removes them from it. Serving works out the pseudonym of the id in a request (one
HMAC), and exports (`GET /v1/scores`, `clientele score`) resolve pseudonyms back to own ids through the map.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.codes import among, texts
from features.columns import Columns as C
from features.columns import Tables
from features.privacy import pseudonymise_many

IDENTITY_FILE = "identities.parquet"
PSEUDONYM = "pseudonym"
PERSON = "person"  # the pseudonym of the customer an id belongs to (itself unless linked, features.linking)
COLUMNS = (PSEUDONYM, C.customer_id, PERSON)


def key_check(key: str) -> str:
    """A fingerprint of the pseudonym key, written in every serving manifest: a server whose key differs (another
    data folder, a changed key) would know none of the customers, and refuses the version instead of answering
    everyone as a stranger. An HMAC of a fixed text: it says nothing of the key or of any customer."""
    return pseudonymise_many(["clientele:pseudonym-key-check"], key)[0]


def pseudonymise_column(customer_ids: pd.Series, key: str) -> tuple[pd.Series, pd.DataFrame]:
    """``customer_ids`` with each id replaced by its pseudonym (one HMAC per distinct id; missing stays missing),
    and the distinct (pseudonym, customer_id) pairs met."""
    codes, uniques = pd.factorize(customer_ids)
    names = pseudonymise_many(uniques, key)
    column = texts(names, codes)
    column.index, column.name = customer_ids.index, customer_ids.name
    pairs = pd.DataFrame({PSEUDONYM: names.astype(str), C.customer_id: np.asarray(uniques, dtype=object).astype(str)})
    return column, pairs


def pseudonymise_tables(tables: dict[str, pd.DataFrame], key: str, links: dict[str, str] | None = None
                        ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Every table with customer ids, ids replaced by their pseudonyms; and the distinct (pseudonym, customer_id,
    person) rows, for :meth:`IdentityMap.record`. The products and identities tables are left out.

    ``links`` (linked id -> canonical id, :class:`features.linking.Links`) adds a row for each id merged into
    another: the API accepts any id of a person and answers for the person.
    """
    out, pairs = {}, []
    for name, table in tables.items():
        if name == Tables.identities:
            continue  # raw keys (phone hashes, cards): used for linking at load, never trained on or logged
        if C.customer_id in table.columns and name != Tables.products:
            column, met = pseudonymise_column(table[C.customer_id], key)
            out[name] = table.assign(**{C.customer_id: column})
            pairs.append(met)
        else:
            out[name] = table
    merged = (pd.concat(pairs, ignore_index=True).drop_duplicates(PSEUDONYM) if pairs
              else pd.DataFrame({PSEUDONYM: pd.Series(dtype="str"), C.customer_id: pd.Series(dtype="str")}))
    merged[PERSON] = merged[PSEUDONYM]
    if links:
        members = list(links)
        merged = pd.concat([merged, pd.DataFrame({
            PSEUDONYM: pseudonymise_many(members, key).astype(str), C.customer_id: members,
            PERSON: pseudonymise_many([links[m] for m in members], key).astype(str)})], ignore_index=True)
        merged = merged.drop_duplicates(PSEUDONYM, keep="last")
    return out, merged.reset_index(drop=True)


class IdentityMap:
    """The data folder's map from pseudonym to the customer's own id: written by training, read by exports.

    One Parquet file sorted by pseudonym, replaced whole (written beside it, then renamed) under an exclusive
    lock, so readers see the old map or the new one, never half of one.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def _locked(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def read(self) -> pd.DataFrame:
        """The whole map (empty when there is none yet): pseudonym, customer_id, person."""
        if not self.path.exists():
            return pd.DataFrame({c: pd.Series(dtype="str") for c in COLUMNS})
        frame = pd.read_parquet(self.path)
        if PERSON not in frame.columns:
            frame[PERSON] = frame[PSEUDONYM]
        return frame.astype({c: "str" for c in COLUMNS})

    def links(self) -> dict[str, str]:
        """Pseudonym of each id merged into another person -> that person's pseudonym."""
        frame = self.read()
        merged = frame[frame[PSEUDONYM] != frame[PERSON]]
        return dict(zip(merged[PSEUDONYM], merged[PERSON]))

    def person_ids(self, pseudonyms: Iterable[str]) -> set[str]:
        """Every pseudonym of the persons of ``pseudonyms`` (themselves included): erasing one id of a person
        erases all of them."""
        wanted = set(pseudonyms)
        frame = self.read()
        persons = set(frame.loc[frame[PSEUDONYM].isin(wanted), PERSON]) | wanted
        return wanted | set(frame.loc[frame[PERSON].isin(persons), PSEUDONYM])

    def _write(self, frame: pd.DataFrame) -> None:
        frame = frame.sort_values(PSEUDONYM, kind="stable").reset_index(drop=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        table = pa.table({c: pa.array(frame[c].to_numpy(object), pa.string()) for c in COLUMNS})
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        os.chmod(tmp, 0o600)
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def record(self, pairs: pd.DataFrame, erased: Iterable[str] = ()) -> int:
        """Add the (pseudonym, customer_id) ``pairs`` of a training run to the map, leaving out ``erased``
        pseudonyms (and removing them if an earlier run put them there). Customers of earlier runs stay: an older
        model version still holds them. Returns how many customers the map holds."""
        erased = set(erased)
        fd = self._locked()
        try:
            known = self.read()
            pairs = pairs if PERSON in pairs.columns else pairs.assign(**{PERSON: pairs[PSEUDONYM]})
            pairs = pairs[~pairs[PSEUDONYM].isin(erased) & ~pairs[PERSON].isin(erased)]
            # A run's rows replace earlier ones of the same pseudonym (an id linked since, or unlinked).
            update = pairs.merge(known, on=list(COLUMNS), how="left", indicator=True)["_merge"].eq("left_only")
            gone = known[PSEUDONYM].isin(erased) | known[PERSON].isin(erased)
            if update.any() or gone.any():
                changed = pairs[update.to_numpy()]
                known = pd.concat([known[~gone & ~among(known[PSEUDONYM], changed[PSEUDONYM])],
                                   changed[list(COLUMNS)]], ignore_index=True)
                self._write(known)
            return len(known)
        finally:
            os.close(fd)

    def forget(self, pseudonyms: Iterable[str]) -> int:
        """Remove ``pseudonyms`` from the map (erasure); how many were there."""
        gone = set(pseudonyms)
        if not gone or not self.path.exists():
            return 0
        fd = self._locked()
        try:
            known = self.read()
            hit = known[PSEUDONYM].isin(gone)
            if hit.any():
                self._write(known[~hit])
            return int(hit.sum())
        finally:
            os.close(fd)

    def resolve(self, pseudonyms: Iterable[str]) -> np.ndarray:
        """The customers' own ids of ``pseudonyms`` (object array in their order; None where the map has no
        entry: erased, or the map was lost)."""
        wanted = np.asarray(list(pseudonyms) if not isinstance(pseudonyms, (np.ndarray, pd.Series, pd.Index))
                            else pseudonyms, dtype=object)
        known = self.read()
        if not len(wanted):
            return np.empty(0, dtype=object)
        keys = known[PSEUDONYM].to_numpy(dtype=object)
        at = np.searchsorted(keys, wanted) if len(keys) else np.zeros(len(wanted), dtype=np.int64)
        at = np.minimum(at, max(len(keys) - 1, 0))
        found = (keys[at] == wanted) if len(keys) else np.zeros(len(wanted), bool)
        own = known[C.customer_id].to_numpy(dtype=object)
        return np.where(found, own[at] if len(own) else None, None).astype(object)
