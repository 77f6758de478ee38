"""Store-level stock: which products are on each store's shelf, from a validated ``inventory`` table.

One row per store and product it carries; the product is on the shelf when ``in_stock`` says so, or, where the
table has no ``in_stock`` (or leaves it empty), when ``quantity`` is above 0; a row with neither is a product the
store carries and has. Training reads it into the model (:func:`models.recommenders.data.store_stock`); the API
reads a newer file of the data folder the same way (:mod:`serving.stock`), since stock changes faster than models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.columns import Tables
from features.mapping import identity_mapping
from features.schema import SCHEMAS
from features.validation import TableReport


def on_shelf(inventory: pd.DataFrame) -> pd.DataFrame:
    """Every row of ``inventory`` as ``store_id``, ``product_id`` (text) and ``on_shelf`` (bool): a store whose
    every product is out is still a store the inventory lists.

    Parameters
    ----------
    inventory
        A validated inventory table.

    Returns
    -------
    pandas.DataFrame
    """
    keep = np.ones(len(inventory), dtype=bool)
    if C.in_stock in inventory.columns:
        flag = inventory[C.in_stock]
        if C.quantity in inventory.columns:  # in_stock where given, else the quantity says
            flag = flag.astype("boolean").fillna(inventory[C.quantity] > 0)
        keep = flag.astype("boolean").fillna(True).to_numpy(dtype=bool)
    elif C.quantity in inventory.columns:
        keep = (inventory[C.quantity] > 0).astype("boolean").fillna(True).to_numpy(dtype=bool)
    return pd.DataFrame({C.store_id: inventory[C.store_id].astype("str").to_numpy(),
                         C.product_id: inventory[C.product_id].astype("str").to_numpy(), "on_shelf": keep})


def read_inventory(path: str | Path) -> tuple[pd.DataFrame, TableReport]:
    """An inventory file in canonical columns (CSV or Parquet), validated as training validates the table.

    Returns
    -------
    (pandas.DataFrame, TableReport)
        The rows (:func:`on_shelf`) and the validation report (rejected rows counted by reason).

    Raises
    ------
    DataError
        Unreadable file, missing required column, or no usable row (one line naming the file).
    """
    from features.io import read_source
    from features.validation import validate_table

    schema = SCHEMAS[Tables.inventory]
    mapping = identity_mapping().table(Tables.inventory)
    raw, _ = read_source(Path(path), mapping, schema)
    result = validate_table(raw, schema, mapping, str(path))
    return on_shelf(result.frame), result.report
