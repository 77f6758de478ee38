"""What every recommender trains on: the canonical tables as of a cutoff, turned into internal indices once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.columns import Columns as C
from features.columns import Tables
from features.config import InteractionConfig
from features.exceptions import DataError
from features.idmap import IdMap
from features.interactions import interaction_matrix
from features.products import NAME_COLUMNS
from features.purchases import without_returns

if TYPE_CHECKING:
    from models.recommenders.policy import ProductTable, StoreStock

NS_PER_DAY = 86_400 * 10**9
UNKNOWN = -1


@dataclass(frozen=True)
class Catalog:
    """Per-product attributes on internal indices, used by filters, features and reasons.

    Attributes
    ----------
    products
        External product ids in internal-index order.
    price
        List price (products table) or the median unit price paid; NaN when unknown.
    category
        Category code per product, -1 when unknown; names in ``categories``.
    in_stock
        False only where the products table says so.
    names
        Human name (products table or a transaction description column), the product id when there is none.
    stock
        What each store has in stock (the inventory table); None without one.
    channels, channel_boost
        Channel names and each product's boost in each (:func:`models.recommenders.policy.channel_boosts`, shape
        channels x products); empty without a ``channel`` column.
    launch_age
        Days from each product's launch to the cutoff: ``launched_at`` where the products table has it, else the
        first sale; NaN for a product neither dated nor ever sold (``None``: a model saved without it).
    """

    products: IdMap
    price: np.ndarray
    category: np.ndarray
    categories: np.ndarray
    in_stock: np.ndarray
    names: np.ndarray
    stock: "StoreStock | None" = None
    channels: tuple[str, ...] = ()
    channel_boost: np.ndarray | None = None
    launch_age: np.ndarray | None = None

    def new_arrivals(self, days: float) -> np.ndarray:
        """Which products are new arrivals at the cutoff: launched less than ``days`` days before it (or announced
        after it), or never sold."""
        if self.launch_age is None:
            return np.zeros(self.size, dtype=bool)
        age = np.asarray(self.launch_age, dtype=np.float64)
        return np.isnan(age) | (age < days)

    @property
    def size(self) -> int:
        return len(self.products)

    def table(self) -> "ProductTable":
        """The attributes the recommendation policy's filters read (built once)."""
        return self._table

    @cached_property
    def _table(self) -> "ProductTable":
        from models.recommenders.policy import ProductTable

        return ProductTable(in_stock=np.asarray(self.in_stock, dtype=bool),
                            category=np.asarray(self.category, dtype=np.int64),
                            price=np.asarray(self.price, dtype=np.float64),
                            category_index={str(c): i for i, c in enumerate(self.categories)},
                            categories=[str(c) for c in self.categories],
                            product_codes=lambda ids: self.products.to_internal(list(ids), unknown="skip"),
                            stock=self.stock, channel_boost=self.boosts())

    def boosts(self) -> dict[str, np.ndarray]:
        """Channel name -> each product's boost in it."""
        if self.channel_boost is None:
            return {}
        return {c: self.channel_boost[k] for k, c in enumerate(self.channels)}

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays for :func:`numpy.savez` (text as fixed-width unicode, so no pickle is needed)."""
        out = {"catalog_products": _text(self.products.external_ids), "catalog_price": self.price,
               "catalog_category": self.category, "catalog_categories": _text(self.categories),
               "catalog_in_stock": self.in_stock, "catalog_names": _text(self.names)}
        if self.stock is not None:
            out.update({"catalog_stock_stores": _text(np.asarray(self.stock.stores, dtype=object)),
                        "catalog_stock_offsets": self.stock.offsets, "catalog_stock_items": self.stock.items})
        if self.channel_boost is not None:
            out.update({"catalog_channels": _text(np.asarray(self.channels, dtype=object)),
                        "catalog_channel_boost": self.channel_boost})
        if self.launch_age is not None:
            out["catalog_launch_age"] = self.launch_age
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Catalog":
        from models.recommenders.policy import StoreStock

        stock = None
        if "catalog_stock_stores" in arrays:
            stock = StoreStock(stores=[str(s) for s in arrays["catalog_stock_stores"]],
                               offsets=arrays["catalog_stock_offsets"], items=arrays["catalog_stock_items"],
                               size=len(arrays["catalog_products"]))
        boost = arrays.get("catalog_channel_boost")
        return cls(products=IdMap(arrays["catalog_products"]), price=arrays["catalog_price"],
                   category=arrays["catalog_category"], categories=arrays["catalog_categories"].astype(object),
                   in_stock=arrays["catalog_in_stock"], names=arrays["catalog_names"].astype(object), stock=stock,
                   channels=tuple(str(c) for c in arrays.get("catalog_channels", ())), channel_boost=boost,
                   launch_age=arrays.get("catalog_launch_age"))


@dataclass(frozen=True)
class PurchaseLog:
    """Purchase lines (returns excluded) before the cutoff, sorted by time, on internal indices.

    ``age`` is in days before the cutoff (positive), ``order`` an order key unique per customer and order
    (the calendar day when the data has no order id).
    """

    user: np.ndarray
    item: np.ndarray
    age: np.ndarray
    order: np.ndarray
    quantity: np.ndarray
    amount: np.ndarray
    time: np.ndarray  # int64 nanoseconds

    def __len__(self) -> int:
        return len(self.user)

    @property
    def day(self) -> np.ndarray:
        """Calendar day number of every line (days since 1970-01-01)."""
        return self.time // NS_PER_DAY

    def window(self, days: float) -> np.ndarray:
        """Mask of the lines in the last ``days`` days before the cutoff."""
        return self.age < days

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct (customer, product) pairs with the age of their latest purchase: (user, item, last_age),
        sorted by user then item. Cached: popularity in any window is a count over these."""
        key = (self.user.astype(np.int64) << 32) | self.item.astype(np.int64)
        order = np.lexsort((self.age, key))
        key, age = key[order], self.age[order]
        first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
        key, age = key[first], age[first]
        return (key >> 32).astype(np.int32), (key & 0xFFFFFFFF).astype(np.int32), age


@dataclass(frozen=True)
class TrainingData:
    """The data of one fit: id maps, interaction matrices, the purchase log and product / customer attributes.

    Built by :meth:`build` from canonical tables using only rows strictly before ``cutoff``.
    """

    cutoff: pd.Timestamp
    customers: IdMap
    catalog: Catalog
    interactions: sp.csr_matrix  # customers x products, weighted by event type, quantity and recency
    purchase_days: sp.csr_matrix  # customers x products, number of distinct days the pair was bought
    log: PurchaseLog
    region: np.ndarray  # region code per customer, -1 unknown
    regions: np.ndarray  # region names
    consent: np.ndarray  # False where the customer refused profiling (popular items only)

    @property
    def products(self) -> IdMap:
        return self.catalog.products

    @cached_property
    def fingerprint(self) -> str:
        """A digest of everything a fit reads here (cutoff, ids, matrices, log, catalogue, regions, consent):
        two builds with the same fingerprint hold the same data, whatever tables they were built from."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(str(pd.Timestamp(self.cutoff).value).encode())
        arrays = [self.customers.external_ids, self.region, self.regions, self.consent,
                  *(getattr(self.log, name) for name in PurchaseLog.__dataclass_fields__)]
        for matrix in (self.interactions, self.purchase_days):
            arrays += [np.asarray(matrix.shape), matrix.indptr, matrix.indices, matrix.data]
        arrays += [value for _, value in sorted(self.catalog.arrays().items())]
        for array in arrays:
            array = np.asarray(array)
            if array.dtype == object:
                array = np.asarray("\x00".join(map(str, array.tolist())).encode())
            digest.update(str((array.dtype.str, array.shape)).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    @cached_property
    def bought(self) -> sp.csr_matrix:
        """Customers x products, 1 where the customer bought the product: every model fitted on this data holds
        it (built once and shared, not once per generator)."""
        return (self.purchase_days > 0).astype(np.float32).tocsr()

    @cached_property
    def buyers(self) -> np.ndarray:
        """The customers with a purchase in the log (sorted internal indices)."""
        return np.unique(self.log.user)

    @property
    def n_users(self) -> int:
        return len(self.customers)

    @property
    def n_items(self) -> int:
        return len(self.catalog.products)

    @classmethod
    def build(cls, tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp | str | None = None,
              interactions: InteractionConfig | None = None) -> "TrainingData":
        """Turn canonical tables into training data as of ``cutoff``.

        Parameters
        ----------
        tables
            Canonical tables (:func:`features.io.load_dataset`); ``transactions`` with ``product_id`` required,
            ``customers``, ``products`` and ``events`` used when present.
        cutoff
            Only rows strictly before this time are read; ``None`` reads everything (the cutoff is then just
            after the latest transaction).
        interactions
            Weights of the interaction matrix (event types, quantity damping, recency half-life).

        Returns
        -------
        TrainingData

        Raises
        ------
        DataError
            No transactions table, no ``product_id`` column, or no purchase before the cutoff.
        """
        tx = tables.get(Tables.transactions)
        if tx is None:
            raise DataError("recommenders need a transactions table")
        if C.product_id not in tx.columns:
            raise DataError("transactions: column 'product_id' is missing (required for recommendations)")
        cutoff = latest_cutoff(tables) if cutoff is None else pd.Timestamp(cutoff)
        tables = tables_before(tables, cutoff)
        purchases = _purchases(tables, cutoff)
        customers = IdMap(np.sort(_known_customers(tables, purchases).unique()))
        products = IdMap(np.sort(_known_products(tables, purchases).unique()))
        matrix = interaction_matrix(tables, cutoff, interactions, customers, products).matrix
        log = _purchase_log(purchases, customers, products, cutoff)
        days = pd.DataFrame({"u": log.user, "i": log.item, "d": np.floor(log.age).astype(np.int64)})
        days = days.drop_duplicates()
        purchase_days = sp.csr_matrix((np.ones(len(days), np.float32), (days["u"], days["i"])),
                                      shape=(len(customers), len(products)))
        purchase_days.sum_duplicates()
        region, regions = _customer_regions(tables, purchases, customers)
        return cls(cutoff=cutoff, customers=customers, catalog=_catalog(tables, purchases, products, cutoff),
                   interactions=matrix, purchase_days=purchase_days, log=log, region=region, regions=regions,
                   consent=_profiling_consent(tables, customers))


def latest_cutoff(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """A cutoff just after the latest transaction, so that every row is before it."""
    return pd.Timestamp(tables[Tables.transactions][C.timestamp].max()) + pd.Timedelta(1, "ns")


def tables_before(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every time-stamped table cut to rows strictly before ``cutoff``; customers who signed up later dropped.

    The one place a recommender's view of the data is cut, so no row at or after the cutoff reaches a fit.
    """
    out = {}
    for name, table in tables.items():
        keep = None
        if name == Tables.customers and C.signup_date in table.columns:
            keep = ~(table[C.signup_date] >= cutoff)
        elif C.timestamp in table.columns:
            keep = table[C.timestamp] < cutoff
        if keep is not None:
            # Nothing cut (the fit at the end of the data): the table's data shared, not copied (pandas copies on
            # write, so neither side sees the other's changes).
            table = table.copy(deep=False) if keep.all() else table[keep]
        out[name] = table
    return out


def _purchases(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> pd.DataFrame:
    """Purchase lines with a product (returns left out) of tables already cut at ``cutoff``."""
    tx = tables[Tables.transactions]
    purchases = without_returns(tx)
    purchases = purchases[purchases[C.product_id].notna()]
    if purchases.empty:
        raise DataError(f"transactions: no purchase with a product_id before {cutoff}")
    return purchases


def purchase_log(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> tuple[PurchaseLog, IdMap, IdMap]:
    """The purchase log before ``cutoff`` on its own id maps (customers and products who bought or were bought),
    without the interaction matrices of :meth:`TrainingData.build`: what repeat-purchase timing reads
    (:func:`models.recommenders.signals.pair_history`) outside a fit.

    Raises
    ------
    DataError
        No ``product_id`` column, or no purchase before the cutoff.
    """
    if C.product_id not in tables[Tables.transactions].columns:
        raise DataError("transactions: column 'product_id' is missing (required for recommendations)")
    cutoff = pd.Timestamp(cutoff)
    purchases = _purchases(tables_before(tables, cutoff), cutoff)
    customers = IdMap(np.sort(purchases[C.customer_id].astype("str").unique()))
    products = IdMap(np.sort(purchases[C.product_id].astype("str").unique()))
    return _purchase_log(purchases, customers, products, cutoff), customers, products


def _known_customers(tables: dict[str, pd.DataFrame], purchases: pd.DataFrame) -> pd.Series:
    parts = [purchases[C.customer_id]]
    for name in (Tables.events, Tables.customers):
        table = tables.get(name)
        if table is not None:
            parts.append(table[C.customer_id])
    return pd.concat(parts, ignore_index=True).astype("str")


def _known_products(tables: dict[str, pd.DataFrame], purchases: pd.DataFrame) -> pd.Series:
    parts = [purchases[C.product_id]]
    for name in (Tables.events, Tables.products):
        table = tables.get(name)
        if table is not None:
            parts.append(table[C.product_id])
    return pd.concat(parts, ignore_index=True).astype("str")


def _purchase_log(purchases: pd.DataFrame, customers: IdMap, products: IdMap,
                  cutoff: pd.Timestamp) -> PurchaseLog:
    purchases = purchases.sort_values(C.timestamp, kind="stable")
    time = purchases[C.timestamp].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    user = customers.to_internal(purchases[C.customer_id]).astype(np.int32)
    item = products.to_internal(purchases[C.product_id]).astype(np.int32)
    if C.order_id in purchases.columns and purchases[C.order_id].notna().all():
        order = pd.factorize(purchases[C.order_id].astype("str") + "\x1f" + purchases[C.customer_id])[0]
    else:  # one order per customer and calendar day
        day = time // NS_PER_DAY
        order = pd.factorize(user.astype(np.int64) * (int(day.max() - day.min()) + 1) + (day - day.min()))[0]
    quantity = np.abs(purchases[C.quantity].to_numpy(dtype=np.float64)) if C.quantity in purchases.columns \
        else np.ones(len(purchases))
    age = (np.datetime64(cutoff, "ns").astype(np.int64) - time) / NS_PER_DAY
    return PurchaseLog(user=user, item=item, age=age, order=order.astype(np.int64), quantity=quantity,
                       amount=purchases[C.amount].to_numpy(dtype=np.float64), time=time)


def _catalog(tables: dict[str, pd.DataFrame], purchases: pd.DataFrame, products: IdMap,
             cutoff: pd.Timestamp) -> Catalog:
    ids = pd.Index(products.external_ids)
    n = len(ids)
    catalogue = tables.get(Tables.products)
    if catalogue is not None:
        catalogue = catalogue.drop_duplicates(C.product_id).set_index(C.product_id)
    # Price: the list price where the catalogue has one, else the median unit price paid.
    paid = purchases[purchases[C.quantity].abs() > 0] if C.quantity in purchases.columns else purchases
    quantity = paid[C.quantity].abs() if C.quantity in paid.columns else 1.0
    unit = (paid[C.amount].abs() / quantity).groupby(paid[C.product_id]).median()
    price = unit.reindex(ids).to_numpy(dtype=np.float64)
    if catalogue is not None and C.price in catalogue.columns:
        listed = catalogue[C.price].reindex(ids).to_numpy(dtype=np.float64)
        price = np.where(np.isfinite(listed), listed, price)
    category = np.full(n, UNKNOWN, dtype=np.int32)
    categories = np.array([], dtype=object)
    if catalogue is not None and C.category in catalogue.columns:
        codes, uniques = pd.factorize(catalogue[C.category].reindex(ids), sort=True)
        category, categories = codes.astype(np.int32), np.asarray(uniques, dtype=object)
    in_stock = np.ones(n, dtype=bool)
    if catalogue is not None and C.in_stock in catalogue.columns:
        in_stock = catalogue[C.in_stock].reindex(ids).fillna(True).to_numpy(dtype=bool)
    names = ids.to_numpy(dtype=object).copy()
    for source in (catalogue, purchases):
        if source is None:
            continue
        column = next((c for c in NAME_COLUMNS if c in source.columns), None)
        if column is None:
            continue
        if source is purchases:  # the latest description used for the product
            text = purchases.dropna(subset=[column]).groupby(C.product_id)[column].last()
        else:
            text = source[column].dropna()
        found = text.astype("str").str.strip().reindex(ids)
        fill = found.notna().to_numpy() & (names == ids.to_numpy(dtype=object))
        names[fill] = found.to_numpy(dtype=object)[fill]
    channels: tuple[str, ...] = ()
    boost = None
    if C.channel in purchases.columns:
        from models.recommenders.policy import channel_boosts

        # Factorised first, the few distinct values normalised after: no string operation per purchase line.
        raw_code, raw = pd.factorize(purchases[C.channel])
        spelled = [str(v).strip().lower() for v in raw]
        channels = tuple(sorted({name for name in spelled if name}))
        index = {name: k for k, name in enumerate(channels)}
        code = np.array([index.get(name, -1) for name in spelled] + [-1], dtype=np.int64)[raw_code]  # -1: none
        if channels:
            boost = channel_boosts(code, channels, products.to_internal(purchases[C.product_id].astype("str")), n)
    return Catalog(products=products, price=price, category=category, categories=categories, in_stock=in_stock,
                   names=names, stock=store_stock(tables.get(Tables.inventory), products), channels=channels,
                   channel_boost=boost, launch_age=_launch_age(catalogue, purchases, ids, cutoff))


def store_stock(inventory: pd.DataFrame | None, products: IdMap) -> "StoreStock | None":
    """What each store has on its shelf (:func:`features.stock.on_shelf`) on the model's product codes; products
    the model does not know are left out. None without an inventory table."""
    from features.stock import on_shelf
    from models.recommenders.policy import StoreStock

    if inventory is None:
        return None
    rows = on_shelf(inventory)
    items = np.where(rows["on_shelf"].to_numpy(), products.to_internal(rows[C.product_id], unknown="missing"), -1)
    return StoreStock.from_rows(rows[C.store_id].to_numpy(dtype=object), items, len(products))


def _launch_age(catalogue: pd.DataFrame | None, purchases: pd.DataFrame, ids: pd.Index,
                cutoff: pd.Timestamp) -> np.ndarray:
    """Days from launch to the cutoff (:attr:`Catalog.launch_age`); a launch date after the first sale gives
    way to the sale."""
    at = np.datetime64(pd.Timestamp(cutoff), "ns").astype(np.int64)
    first = purchases.groupby(purchases[C.product_id].astype("str"))[C.timestamp].min().reindex(ids)
    launch = first.to_numpy(dtype="datetime64[ns]")
    if catalogue is not None and C.launched_at in catalogue.columns:
        listed = pd.to_datetime(catalogue[C.launched_at], errors="coerce").reindex(ids).to_numpy(
            dtype="datetime64[ns]")
        use = ~np.isnat(listed) & (np.isnat(launch) | (listed < launch))
        launch = np.where(use, listed, launch)
    age = np.full(len(ids), np.nan)
    known = ~np.isnat(launch)
    age[known] = (at - launch[known].astype(np.int64)) / NS_PER_DAY
    return age


def _customer_regions(tables: dict[str, pd.DataFrame], purchases: pd.DataFrame,
                      customers: IdMap) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's region: the customers table's, else the region of their latest purchase (an extra
    transaction column such as Online Retail's country)."""
    ids = pd.Index(customers.external_ids)
    region = pd.Series(np.nan, index=ids, dtype=object)
    profile = tables.get(Tables.customers)
    if profile is not None and C.region in profile.columns:
        region = profile.drop_duplicates(C.customer_id).set_index(C.customer_id)[C.region].reindex(ids)
    if C.region in purchases.columns:
        latest = purchases.dropna(subset=[C.region]).groupby(C.customer_id)[C.region].last().reindex(ids)
        region = region.where(region.notna(), latest)
    codes, uniques = pd.factorize(region.astype(object), sort=True)
    return codes.astype(np.int32), np.asarray(uniques, dtype=object)


def _profiling_consent(tables: dict[str, pd.DataFrame], customers: IdMap) -> np.ndarray:
    """Profiling consent per customer; a customer without a recorded answer counts as consenting (the
    validation report notes when the data has no consent column at all)."""
    profile = tables.get(Tables.customers)
    if profile is None or C.consent_profiling not in profile.columns:
        return np.ones(len(customers), dtype=bool)
    answer = profile.drop_duplicates(C.customer_id).set_index(C.customer_id)[C.consent_profiling]
    answer = answer.reindex(pd.Index(customers.external_ids)).astype("boolean")
    return answer.fillna(True).to_numpy(dtype=bool)


def _text(values: np.ndarray) -> np.ndarray:
    """Object text as a fixed-width unicode array (``np.savez`` stores it without pickle)."""
    values = np.asarray(values, dtype=object)
    return values.astype("U") if len(values) else np.array([], dtype="U1")
