"""The data stage of training: load and validate, drop erased customers, fingerprint what was used."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features import storage
from features.codes import among
from features.columns import Columns as C
from features.columns import Tables
from features.identities import pseudonymise_tables
from features.io import Dataset, load_dataset
from features.storage import Location
from training.config import TrainConfig
from features.settings import Settings


@dataclass
class ValidatedData:
    """Validated tables ready for every model, with the validation report and a fingerprint."""

    tables: dict[str, pd.DataFrame]
    dataset: Dataset
    fingerprint: dict[str, Any]
    source: Location


def ensure_synthetic(config: TrainConfig) -> Path:
    """The demo dataset folder, generated on first use."""
    out = Path(config.synthetic.out)
    if not (out / "transactions.parquet").exists():
        from features.synthetic import generate, with_channel_ids, write_tables

        tables = generate(config.synthetic.preset, config.synthetic.customers, config.synthetic.seed)
        if config.synthetic.linked_share:
            tables, _ = with_channel_ids(tables, config.synthetic.linked_share, config.synthetic.seed)
        write_tables(tables, out)
    return out


def fingerprint(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Row counts, date range and a content hash of every table: the same data gives the same fingerprint."""
    digest = hashlib.sha256()
    rows = {}
    for name in sorted(tables):
        table = tables[name]
        rows[name] = int(len(table))
        digest.update(name.encode())
        digest.update(",".join(map(str, table.columns)).encode())
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    tx = tables[Tables.transactions]
    return {"rows": rows, "start": str(tx[C.timestamp].min()), "end": str(tx[C.timestamp].max()),
            "sha256": digest.hexdigest()}


def load_training_data(config: TrainConfig, settings: Settings) -> ValidatedData:
    """Load ``config.data`` (or the synthetic demo data) without the customers on the erasure list, validate
    it and write its rejects (erased customers' rows are dropped first: they never reach a rejects file).

    Every customer id is then replaced by its keyed pseudonym (:mod:`features.identities`): nothing trained,
    logged or registered from here on holds a customer's own id. The pairs go to the data folder's identity map,
    which exports resolve through.
    """
    source = storage.as_location(config.data) if config.data else ensure_synthetic(config)
    erasures = settings.erasures()
    dataset = load_dataset(source, config.mapping, erasures=erasures)
    dataset.write_rejects(settings.rejects_dir(storage.dataset_name(source)))
    dataset.tables, pairs = pseudonymise_tables(dataset.tables, settings.pseudonym_key, dataset.links.canonical)
    settings.identities().record(pairs, erased=erasures.pseudonyms)
    info = fingerprint(dataset.tables)
    info["erased_customers_dropped"] = dataset.erased_customers
    info["erased_rows_dropped"] = sum(r.rows_erased for r in dataset.reports.values())
    return ValidatedData(tables=dataset.tables, dataset=dataset, fingerprint=info, source=source)


def customers_only(tables: dict[str, pd.DataFrame], keep: pd.Index) -> dict[str, pd.DataFrame]:
    """Every table with customer ids cut to the rows of the customers in ``keep`` (the products table, whose
    ``customer_id`` column, if any, is not a customer's, and tables without customers are left whole)."""
    return {name: table[among(table[C.customer_id].astype("str"), keep)]
            if C.customer_id in table.columns and name != Tables.products else table
            for name, table in tables.items()}


@dataclass(frozen=True)
class HoldoutSample:
    """The customers every holdout evaluation of a training run sees (:func:`holdout_sample`).

    Attributes
    ----------
    customers
        Distinct customers in the data.
    kept
        The sampled customers' ids (sorted), or None when the data has no more than ``max_customers``: then the
        holdouts see every customer, and the tables are used as they are.
    max_customers, seed
        The bound and the seed of the draw (``evaluation.max_customers``, ``evaluation.sample_seed``).
    """

    customers: int
    kept: pd.Index | None
    max_customers: int | None
    seed: int

    @property
    def sampled(self) -> bool:
        return self.kept is not None

    @property
    def size(self) -> int:
        """Customers the holdouts see."""
        return len(self.kept) if self.kept is not None else self.customers

    def apply(self, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """The tables of the sampled customers only (the very tables when nothing was sampled)."""
        return tables if self.kept is None else customers_only(tables, self.kept)

    def describe(self) -> dict[str, Any]:
        """What the run's report and MLflow record of the sample: no customer id, counts and the rule."""
        rule = (f"the {self.size:,} customers of the smallest keyed hash (seed {self.seed}) of their pseudonym"
                if self.sampled else "every customer")
        return {"customers": self.customers, "sampled_customers": self.size, "sampled": self.sampled,
                "max_customers": self.max_customers, "seed": self.seed, "sampling": rule}


def holdout_sample(tables: dict[str, pd.DataFrame], max_customers: int | None, seed: int = 0) -> HoldoutSample:
    """The customers the holdout evaluations see: every customer of the data, or, past ``max_customers``, the
    ``max_customers`` whose keyed hash of their id (their pseudonym in a training run) is smallest.

    A customer's place in the draw depends on their id and ``seed`` only, not on the row order or the other
    customers: a rerun on the same data draws the same sample, and as the store grows the sample changes only
    by the newcomers who hash below the customers drawn before. :meth:`HoldoutSample.apply` cuts every table
    with customer ids to the sample.
    """
    ids = [table[C.customer_id].dropna().unique().astype(str) for name, table in tables.items()
           if C.customer_id in table.columns and name != Tables.products]
    everyone = np.unique(np.concatenate(ids)) if ids else np.array([], dtype=str)
    if max_customers is None or len(everyone) <= max_customers:
        return HoldoutSample(customers=len(everyone), kept=None, max_customers=max_customers, seed=seed)
    keys = pd.util.hash_array(everyone.astype(object), hash_key=f"holdout{seed:09d}"[-16:])
    # The id breaks a (vanishingly rare) tie of hashes, so the draw never depends on an order.
    order = np.lexsort((everyone, keys))[:max_customers]
    return HoldoutSample(customers=len(everyone), kept=pd.Index(np.sort(everyone[order])),
                         max_customers=max_customers, seed=seed)
