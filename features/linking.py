"""One customer across channels: ids of the same person linked into one canonical customer before any feature.

A retailer knows one person by several ids: a POS member card, an online account, an app id. The optional
``identities`` table (``customer_id, id_type, id_value``: e.g. ``phone_sha256``, ``member_card``, ``email_sha256``)
says which keys each id holds. Two ids that share a key are the same person; linking is transitive, so the
customers are the connected components of the graph of ids and keys (deterministic, no model).

A key held by many ids is not a person's (a shop's own phone number typed in at the till, a shared family
e-mail): a key shared by more than ``max_ids_per_key`` ids links nobody and is reported. Each component's
canonical id is its smallest id (stable while the person's ids stay); every table's ``customer_id`` is replaced
by it, and the customers table keeps one row per person, with the most restrictive consent of its ids.

Erasure follows the links: erasing any id of a person erases every id linked to it (:meth:`Links.linked`), in
training and in the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from features.columns import Columns as C
from features.columns import Tables

ID_TYPE, ID_VALUE = "id_type", "id_value"
CANONICAL = "canonical_id"
DEFAULT_MAX_IDS_PER_KEY = 20


@dataclass
class Links:
    """Which customer ids are one person: ``canonical`` maps every linked id to its person's canonical id."""

    canonical: dict[str, str]  # linked id -> canonical id (ids that stand alone are absent)
    audit: pd.DataFrame  # canonical_id, customer_id, linked_by (key types that joined the id to its person)
    shared_keys: pd.DataFrame  # id_type, id_value (hashed on output), ids: keys too common to link anyone
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def none(cls) -> "Links":
        return cls(canonical={}, audit=pd.DataFrame(columns=[CANONICAL, C.customer_id, "linked_by"]),
                   shared_keys=pd.DataFrame(columns=[ID_TYPE, "ids"]), details={})

    def __bool__(self) -> bool:
        return bool(self.canonical)

    def ids(self) -> set[str]:
        """Every id that belongs to a person of several ids."""
        return set(self.canonical) | set(self.canonical.values())

    def without(self, customer_ids: set[str]) -> "Links":
        """These links less the ids given (erased persons: not in the tables, not in the audit)."""
        if not customer_ids:
            return self
        canonical = {c: p for c, p in self.canonical.items() if c not in customer_ids and p not in customer_ids}
        audit = self.audit[~self.audit[C.customer_id].isin(customer_ids)
                           & ~self.audit[CANONICAL].isin(customer_ids)].reset_index(drop=True)
        persons = len(set(canonical.values()))
        details = {**self.details, "ids_linked": len(canonical), "persons_with_several_ids": persons,
                   "ids_merged_away": len(canonical) - persons}
        return Links(canonical=canonical, audit=audit, shared_keys=self.shared_keys, details=details)

    def linked(self, customer_ids: set[str]) -> set[str]:
        """Every id of the persons of ``customer_ids`` (the ids themselves included)."""
        persons = {self.canonical.get(c, c) for c in customer_ids}
        return set(customer_ids) | persons | {c for c, p in self.canonical.items() if p in persons}


def link_customers(identities: pd.DataFrame, max_ids_per_key: int = DEFAULT_MAX_IDS_PER_KEY) -> Links:
    """The persons behind the ids of a validated ``identities`` table.

    Parameters
    ----------
    identities
        ``customer_id``, ``id_type``, ``id_value`` (validated: no missing value).
    max_ids_per_key
        A key held by more distinct ids than this links none of them (reported in ``shared_keys``).
    """
    if identities is None or identities.empty:
        return Links.none()
    ids, id_codes = np.unique(identities[C.customer_id].astype(str).to_numpy(), return_inverse=True)
    keys = identities[ID_TYPE].astype(str) + "\x1f" + identities[ID_VALUE].astype(str)
    key_codes, key_names = pd.factorize(keys)
    pairs = pd.DataFrame({"id": id_codes, "key": key_codes}).drop_duplicates()
    holders = pairs.groupby("key")["id"].nunique()
    common = holders[holders > max_ids_per_key]
    pairs = pairs[~pairs["key"].isin(common.index)]
    incidence = sp.csr_matrix((np.ones(len(pairs)), (pairs["id"].to_numpy(), pairs["key"].to_numpy())),
                              shape=(len(ids), len(key_names)))
    n_persons, person = connected_components(incidence @ incidence.T, directed=False)
    # The canonical id of a person: the smallest of its ids (ids are sorted, so the first code met).
    first = np.full(n_persons, len(ids), dtype=np.int64)
    np.minimum.at(first, person, np.arange(len(ids)))
    size = np.bincount(person, minlength=n_persons)
    merged = size[person] > 1
    canonical = dict(zip(ids[merged].tolist(), ids[first[person[merged]]].tolist()))
    by_type = pairs.assign(id_type=np.asarray(key_names, dtype=object)[pairs["key"].to_numpy()])
    by_type["id_type"] = by_type["id_type"].str.split("\x1f").str[0]
    audit = pd.DataFrame({CANONICAL: ids[first[person[merged]]], C.customer_id: ids[merged]})
    linked_by = by_type[merged[by_type["id"].to_numpy()]].groupby("id")["id_type"].agg(
        lambda t: ",".join(sorted(set(t))))
    audit["linked_by"] = linked_by.reindex(np.flatnonzero(merged)).to_numpy()
    shared = pd.DataFrame({ID_TYPE: [str(key_names[k]).split("\x1f")[0] for k in common.index],
                           "ids": common.to_numpy()})
    details = {"ids_linked": int(merged.sum()), "persons_with_several_ids": int((size > 1).sum()),
               "ids_merged_away": int(merged.sum() - (size > 1).sum()), "shared_keys_ignored": int(len(common)),
               "max_ids_per_key": int(max_ids_per_key)}
    return Links(canonical=canonical, audit=audit.sort_values([CANONICAL, C.customer_id], ignore_index=True),
                 shared_keys=shared, details=details)


def apply_links(tables: dict[str, pd.DataFrame], links: Links) -> dict[str, pd.DataFrame]:
    """Every table with each linked id replaced by its person's canonical id; the customers table one row per
    person (consents the most restrictive of its ids', other attributes the canonical id's, else the first
    known, signup the earliest). The products and identities tables are left as they are."""
    if not links:
        return tables
    out = {}
    for name, table in tables.items():
        if name in (Tables.products, Tables.identities) or C.customer_id not in table.columns:
            out[name] = table
            continue
        column = table[C.customer_id]
        mapped = column.map(links.canonical)
        linked = table.assign(**{C.customer_id: mapped.where(mapped.notna(), column).astype(column.dtype)})
        out[name] = _one_row_per_person(linked, column) if name == Tables.customers else linked
    return out


def _one_row_per_person(customers: pd.DataFrame, original: pd.Series) -> pd.DataFrame:
    """``customers`` (ids already canonical; ``original`` their ids before) with one row per person."""
    duplicated = customers[C.customer_id].duplicated(keep=False)
    if not duplicated.any():
        return customers
    single = customers[~duplicated]
    # The canonical id's own row first, so its attributes win where it has them.
    several = customers[duplicated].assign(_not_canonical=(original[duplicated] != customers[C.customer_id][
        duplicated]).to_numpy())
    rules: dict[str, Any] = {}
    for col in several.columns:
        if col in (C.customer_id, "_not_canonical"):
            continue
        if col in (C.consent_profiling, C.consent_marketing):
            rules[col] = _most_restrictive
        elif col == C.signup_date:
            rules[col] = "min"
        else:
            rules[col] = "first"  # first non-missing value: the canonical id's row comes first (sorted below)
    several = several.sort_values([C.customer_id, "_not_canonical"], kind="stable")
    merged = several.groupby(C.customer_id, sort=False, dropna=False).agg(rules).reset_index()
    merged = merged.astype({c: several[c].dtype for c in merged.columns if c in several.columns}, errors="ignore")
    return pd.concat([single, merged], ignore_index=True)


def _most_restrictive(values: pd.Series) -> Any:
    """False when any id of the person refused, else True when one agreed, else missing."""
    known = values.dropna()
    if not len(known):
        return pd.NA
    return bool(known.astype(bool).all())
