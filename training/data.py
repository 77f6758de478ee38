"""The data stage of training: load and validate, drop erased customers, fingerprint what was used."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features import storage
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
