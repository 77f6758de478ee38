"""Product attributes for models that score products from what they are, not only from who bought them.

Two functions every caller shares (the new-products model, its peers, training and serving):

- :func:`product_attributes` completes the products table from the transactions (names, prices, a product type
  read from the name when the catalogue has no category), so a retailer who only exports a transaction log with
  product names (UCI Online Retail) still has attributes;
- :func:`attribute_tokens` turns each product's attributes into tokens (``category=rings``, ``brand=...``,
  ``price=rings:3``, ``material=gold``, name words and word pairs) that models embed or compare.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.columns import Tables
from features.purchases import without_returns

# Free-text name columns looked for, best first: a products table's, then an extra transaction column (the
# Online Retail mapping keeps ``description``).
NAME_COLUMNS = (C.name, "title", "description", "product_name")
# Separators of a category path ("jewellery > rings > engagement"): each prefix is a level of the hierarchy.
_PATH_SEPARATORS = re.compile(r"\s*(?:>|/|\||::)\s*")
_WORD = re.compile(r"[a-z][a-z']+")
# A text column with more distinct values than this share of the products is free text, not an attribute.
_CATEGORICAL_SHARE = 0.5
# Columns that are not attributes of what the product is.
_NOT_ATTRIBUTES = {C.product_id, C.in_stock, C.price, C.launched_at, "unit_price", "amount", "quantity"}


def product_attributes(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per product the data knows, with the products table's columns completed from the transactions.

    Parameters
    ----------
    tables
        Canonical tables; ``transactions`` is read for products missing from the products table, for names (a
        ``description`` column) and for prices (median unit price paid); ``products`` when present.

    Returns
    -------
    pandas.DataFrame
        ``product_id`` (str), ``name``, ``category``, ``price`` and every other products column. Where the data
        has no category at all, ``category`` is the product type read from the name: its last word of letters
        ("WHITE HANGING HEART T-LIGHT HOLDER" -> "holder"), which is how name-only catalogues are grouped.
    """
    tx = tables.get(Tables.transactions)
    catalogue = tables.get(Tables.products)
    frame = (catalogue.drop_duplicates(C.product_id).copy() if catalogue is not None
             else pd.DataFrame({C.product_id: pd.Series([], dtype="str")}))
    frame[C.product_id] = frame[C.product_id].astype("str")
    sold = pd.DataFrame()
    if tx is not None and C.product_id in tx.columns:
        sold = without_returns(tx[tx[C.product_id].notna()])
        extra = pd.Index(sold[C.product_id].astype("str").unique()).difference(frame[C.product_id])
        frame = pd.concat([frame, pd.DataFrame({C.product_id: extra.astype("str")})], ignore_index=True)
    frame = frame.set_index(C.product_id)
    ids = frame.index
    if C.name not in frame.columns or frame[C.name].isna().any():
        name = frame[C.name] if C.name in frame.columns else pd.Series(np.nan, index=ids, dtype=object)
        for column in NAME_COLUMNS[1:]:
            for source in (frame, sold):
                if column in source.columns:
                    if source is sold:  # the latest description used for the product
                        text = sold.dropna(subset=[column]).groupby(C.product_id)[column].last()
                    else:
                        text = source[column]
                    name = name.where(name.notna(), text.astype("str").str.strip().reindex(ids))
        frame[C.name] = name
    if len(sold) and (C.price not in frame.columns or frame[C.price].isna().any()):
        paid = sold[sold[C.quantity].abs() > 0] if C.quantity in sold.columns else sold
        quantity = paid[C.quantity].abs() if C.quantity in paid.columns else 1.0
        unit = (paid[C.amount].abs() / quantity).groupby(paid[C.product_id].astype("str")).median()
        listed = frame[C.price] if C.price in frame.columns else pd.Series(np.nan, index=ids)
        frame[C.price] = listed.where(listed.notna(), unit.reindex(ids)).astype(float)
    if C.category not in frame.columns or frame[C.category].isna().all():
        frame[C.category] = frame[C.name].map(_product_type) if C.name in frame.columns else np.nan
    return frame.reset_index()


def _product_type(name: object) -> object:
    words = _WORD.findall(str(name).lower()) if isinstance(name, str) else []
    return words[-1] if words else np.nan


def price_bands(frame: pd.DataFrame, bands: int) -> np.ndarray:
    """Each product's price band within its category: 0 (cheapest) .. ``bands - 1``, -1 where the price is
    unknown. Quantiles of the category's own prices, so a cheap ring and a cheap bracelet share a band."""
    out = np.full(len(frame), -1, dtype=np.int64)
    if C.price not in frame.columns:
        return out
    price = pd.to_numeric(frame[C.price], errors="coerce")
    group = frame[C.category].astype(object).fillna("") if C.category in frame.columns else pd.Series("", index=frame.index)
    by = price.groupby(group.to_numpy())
    share_below = (by.rank() - 1) / by.transform("count")  # the cheapest product of a category: 0
    known = share_below.notna().to_numpy()
    out[known] = np.minimum((share_below.to_numpy()[known] * bands).astype(np.int64), bands - 1)
    return out


def attribute_tokens(frame: pd.DataFrame, price_band_count: int = 5, name_pairs: bool = True) -> list[list[str]]:
    """Tokens describing each product of :func:`product_attributes`' frame, in its row order.

    Parameters
    ----------
    frame
        Products with ``category`` / ``subcategory`` / ``brand`` / ``price`` / ``name`` and any free attribute
        columns (text columns with few distinct values, e.g. ``material``); missing columns are skipped.
    price_band_count
        Price bands within a category (:func:`price_bands`).
    name_pairs
        Also emit adjacent word pairs of the name ("gold hoops"), not only single words.

    Returns
    -------
    list of list of str
        Per product: ``category=...`` for each level of a category path, ``subcategory=...``, ``brand=...``,
        ``price=<category>:<band>``, ``<column>=<value>`` per free attribute, ``w=<word>`` and ``p=<pair>`` from
        the name. Identical inputs give identical tokens (no randomness, no hashing seed).
    """
    n = len(frame)
    tokens: list[list[str]] = [[] for _ in range(n)]

    def add(prefix: str, values: pd.Series) -> None:
        for i, value in enumerate(values.to_numpy(dtype=object)):
            if isinstance(value, str) and value.strip():
                tokens[i].append(f"{prefix}={value.strip().lower()}")

    if C.category in frame.columns:
        for i, value in enumerate(frame[C.category].to_numpy(dtype=object)):
            if isinstance(value, str) and value.strip():
                levels = _PATH_SEPARATORS.split(value.strip().lower())
                tokens[i].extend(f"category={'/'.join(levels[: k + 1])}" for k in range(len(levels)))
    for column in (C.subcategory, C.brand):
        if column in frame.columns:
            add(column, frame[column])
    bands = price_bands(frame, price_band_count)
    category = frame[C.category].astype(object).to_numpy() if C.category in frame.columns else np.full(n, None)
    for i in np.flatnonzero(bands >= 0):
        tokens[i].append(f"price={str(category[i]).lower() if isinstance(category[i], str) else ''}:{bands[i]}")
    named = {C.name, *NAME_COLUMNS, C.category, C.subcategory, C.brand}
    for column in frame.columns:
        if column in named or column in _NOT_ATTRIBUTES:
            continue
        values = frame[column]
        if not (pd.api.types.is_string_dtype(values) or values.dtype == object or
                isinstance(values.dtype, pd.CategoricalDtype)):
            continue
        if values.nunique() <= max(1, _CATEGORICAL_SHARE * n):
            add(str(column), values.astype(object))
    if C.name in frame.columns:
        for i, name in enumerate(frame[C.name].to_numpy(dtype=object)):
            if not isinstance(name, str):
                continue
            words = _WORD.findall(name.lower())
            tokens[i].extend(f"w={w}" for w in words)
            if name_pairs:
                tokens[i].extend(f"p={a}_{b}" for a, b in zip(words, words[1:]))
    return tokens
