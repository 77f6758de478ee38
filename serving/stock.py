"""Store stock refreshed between trainings: the data folder's inventory file, read again whenever it changes.

Stock changes faster than models: a retailer drops a fresh export of store stock (``inventory.parquet`` or
``inventory.csv`` in canonical columns, ``CLIENTELE_INVENTORY_PATH``) every hour or night, and every worker's
background tick sees the change within a second and validates the file as training validates the table
(:func:`features.stock.read_inventory`). While a file is there, it is the shelf the policy reads for ``store_id``
(:mod:`models.recommenders.policy`); without one, the served model's own inventory (what it was trained with). A
file that cannot be used is logged in one line and the previous stock stays.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.exceptions import ClienteleError
from features.stock import read_inventory
from models.recommenders.policy import ProductTable, StoreStock

log = logging.getLogger("clientele.serving")


class StockFile:
    """The data folder's inventory file as last read (``rows`` None while there is none): the first of ``paths``
    that exists."""

    def __init__(self, paths: list[Path]):
        self.paths = list(paths)
        self.path: Path | None = None
        self.rows: pd.DataFrame | None = None
        self.version = 0
        self._stamp: tuple[str, int, int] | None = None

    def refresh(self) -> bool:
        """Read the file again when its time or size changed (the store's background tick); True when the served
        stock changed."""
        stamp: tuple[str, int, int] | None = None
        for path in self.paths:
            try:
                st = path.stat()
            except OSError:
                continue
            self.path, stamp = path, (str(path), st.st_mtime_ns, st.st_size)
            break
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            changed = self.rows is not None
            self.rows = None
        else:
            try:
                assert self.path is not None
                rows, report = read_inventory(self.path)
            except ClienteleError as exc:
                log.error("store stock not refreshed (the previous stays): %s", exc)
                return False
            log.info("store stock read from %s: %d rows kept, %d rejected", self.path.name, report.rows_kept,
                     report.rows_rejected)
            self.rows, changed = rows, True
        if changed:
            self.version += 1
        return changed

    def products(self, table: ProductTable, product_index: dict[str, int], cache: dict) -> ProductTable:
        """``table`` with this file's stock on its product codes (``cache``: the loaded version's, rebuilt when the
        file changes); ``table`` itself while there is no file."""
        if self.rows is None:
            return table
        found = cache.get("stock")
        if found is None or found[0] != self.version:
            rows = self.rows
            codes = np.fromiter((product_index.get(p, -1) for p in rows["product_id"]), np.int64, len(rows))
            items = np.where(rows["on_shelf"].to_numpy(), codes, -1)
            stock = StoreStock.from_rows(rows["store_id"].to_numpy(dtype=object), items, table.size)
            found = cache["stock"] = (self.version, replace(table, stock=stock))
        return found[1]
