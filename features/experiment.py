"""Customer-level experiment tables: one row per customer with the assignment, outcomes and features.

Published uplift benchmarks (Hillstrom's e-mail test, Criteo, X5) come in this shape rather than as a retailer's
tables; a column mapping's ``experiment`` section maps one onto it, with the usual table keys (``rename``,
``derive``, ``filters``, ``timestamps``, ...) plus two of its own:

```yaml
experiment:
  derive:
    treatment: "segment != 'No E-Mail'"     # 1 treated, 0 control
  outcomes: [visit, conversion, spend]       # numeric; the first is the default
  features: [recency, history, channel]      # numbers or text (categories)
```

Rows are validated like any table: a missing or unreadable treatment or outcome, or a repeated customer, is a
rejected row with its reason, and nothing is dropped without a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.columns import Columns as C
from features.exceptions import ConfigError, DataError
from features.io import read_source
from features.mapping import EXPERIMENT_SECTION, DatasetMapping, load_mapping, parse_table_mapping
from features.privacy import ErasureList
from features.schema import BOOL, ID, NUMBER, TableSchema
from features.validation import TableReport, validate_table


@dataclass
class Experiment:
    """A validated experiment: one row per customer with ``customer_id``, ``treatment`` (0/1), the outcomes and
    the features; what validation rejected, and the report."""

    frame: pd.DataFrame
    outcomes: list[str]
    features: list[str]
    report: TableReport
    rejects: pd.DataFrame
    source: str

    def treatment(self) -> pd.Series:
        return self.frame[C.treatment].astype("float64")


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of column names")
    return list(value)


def load_experiment(path: str | Path, mapping: str | Path | DatasetMapping,
                    erasures: ErasureList | None = None) -> Experiment:
    """Read, map and validate a customer-level experiment table.

    Parameters
    ----------
    path
        The table (CSV or Parquet).
    mapping
        A mapping file (or parsed mapping) with an ``experiment`` section.
    erasures
        Erased customers: their rows are dropped before anything else, as in every table.

    Raises
    ------
    ConfigError
        The mapping has no experiment section, or it is malformed.
    DataError
        The file cannot be read, a required column is missing, or no row is usable.
    """
    dataset_mapping = mapping if isinstance(mapping, DatasetMapping) else load_mapping(mapping)
    where = f"{dataset_mapping.path.name if dataset_mapping.path else 'mapping'}: {EXPERIMENT_SECTION}"
    spec = dict(dataset_mapping.experiment or {})
    if not spec:
        raise ConfigError(f"{where}: the mapping has no experiment section (treatment, outcomes, features)")
    outcomes = _names(spec.pop("outcomes", None), f"{where}.outcomes")
    features = _names(spec.pop("features", None), f"{where}.features")
    overlap = sorted(set(outcomes) & set(features))
    if overlap:
        raise ConfigError(f"{where}: '{overlap[0]}' is both an outcome and a feature (it would leak the outcome)")
    table_mapping = parse_table_mapping(spec, where)
    schema = TableSchema(
        name=EXPERIMENT_SECTION,
        required=(C.customer_id, C.treatment, *outcomes),
        optional=(),
        kinds={C.customer_id: ID, C.treatment: BOOL, **{o: NUMBER for o in outcomes}},
        key=(C.customer_id,),
    )
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: an experiment table is one file, not a folder")
    raw, _ = read_source(path, table_mapping, schema)
    produced = {*table_mapping.rename, *table_mapping.derive, *table_mapping.constants}
    for key, names in (("outcomes", outcomes), ("features", features)):
        missing = [c for c in names if c not in produced and c not in raw.columns]
        if missing:
            raise DataError(f"{path}: column '{missing[0]}' is missing (named in {where}.{key}; found: "
                            f"{', '.join(map(str, raw.columns[:20]))})")
    if not table_mapping.is_identity:
        # A mapped table holds only what its mapping names: the outcome and feature columns are kept as they are.
        # So is a source column already called customer_id.
        named = [c for c in [C.customer_id, *outcomes, *features] if c not in produced and c in raw.columns]
        table_mapping.keep = list(dict.fromkeys([*table_mapping.keep, *named]))
    result = validate_table(raw, schema, table_mapping, str(path), erasures=erasures)
    frame = result.frame.copy()
    frame[C.treatment] = frame[C.treatment].astype("int8")
    return Experiment(frame=frame, outcomes=outcomes, features=features, report=result.report,
                      rejects=result.rejects, source=str(path))
