"""Point-in-time customer features: everything is computed as of a cutoff from data strictly before it.

The same function builds training rows for past cutoffs and serving rows for today, on pandas directly or on
each customer partition under Dask, so there is one implementation of every feature.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from features.codes import factorize
from features.columns import Columns as C
from features.columns import EventTypes, Tables
from features.config import CustomerFeatureConfig
from features.purchases import returned

DAY = np.timedelta64(1, "D")
Population = Literal["purchasers", "all"]
CHANNELS = ("store", "online", "app")
# Categorical attributes passed through as text; models own their encoding.
CATEGORICAL_FEATURES = ("gender", "region", "member_tier")


def _days_before(cutoff: pd.Timestamp, times: pd.Series | np.ndarray) -> np.ndarray:
    """Days from each time to the cutoff (positive: before it)."""
    return (np.datetime64(cutoff, "ns") - np.asarray(times, dtype="datetime64[ns]")) / DAY


class _Grouper:
    """Per-customer sums and counts over rows already coded 0..n-1 by customer (np.bincount is the fast path)."""

    def __init__(self, codes: np.ndarray, n: int):
        self.codes = codes
        self.n = n

    def count(self, mask: np.ndarray | None = None) -> np.ndarray:
        codes = self.codes if mask is None else self.codes[mask]
        return np.bincount(codes, minlength=self.n).astype(np.float64)

    def sum(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        if mask is not None:
            return np.bincount(self.codes[mask], weights=values[mask], minlength=self.n)
        return np.bincount(self.codes, weights=values, minlength=self.n)

    def max(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Largest value per customer; NaN for customers without rows."""
        codes, vals = (self.codes, values) if mask is None else (self.codes[mask], values[mask])
        return pd.Series(vals).groupby(codes).max().reindex(range(self.n)).to_numpy(dtype=np.float64)

    def min(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Smallest value per customer; NaN for customers without rows."""
        return -self.max(-values, mask)

    def distinct(self, keys: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Number of distinct non-negative ``keys`` per customer."""
        codes, keys = (self.codes, keys) if mask is None else (self.codes[mask], keys[mask])
        valid = keys >= 0
        pairs = pd.unique(codes[valid].astype(np.int64) * (int(keys.max(initial=0)) + 1) + keys[valid])
        return np.bincount(pairs // (int(keys.max(initial=0)) + 1), minlength=self.n).astype(np.float64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _trend(recent: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """(recent - previous) / (recent + previous): -1 stopped, 0 steady, +1 new; NaN with no activity in either."""
    return _ratio(recent - previous, recent + previous)


class _Rows:
    """Rows of one table before the cutoff that belong to the population, held as positions and customer codes.

    Copying string columns of a 10M-row table for every mask costs more than the features themselves, so rows
    are selected by position and each column is read once, as numbers or as factor codes.
    """

    def __init__(self, table: pd.DataFrame, cutoff: pd.Timestamp, ids: pd.Index):
        self.table = table
        times = table[C.timestamp].to_numpy(dtype="datetime64[ns]")
        customer = _map_codes(table[C.customer_id], ids)
        self.pos = np.flatnonzero((times < np.datetime64(cutoff, "ns")) & (customer >= 0)).astype(np.int32)
        self.codes = customer[self.pos].astype(np.int32)
        self.time = times[self.pos]
        self.cutoff_ns = np.datetime64(cutoff, "ns").astype(np.int64)

    @property
    def age(self) -> np.ndarray:
        """Days from each row to the cutoff."""
        return (self.cutoff_ns - self.time.view(np.int64)) / 86_400e9

    def __len__(self) -> int:
        return len(self.pos)

    def has(self, col: str) -> bool:
        return col in self.table.columns

    def number(self, col: str, default: float | None = None) -> np.ndarray:
        if col not in self.table.columns:
            return np.full(len(self.pos), np.nan if default is None else default)
        return self.table[col].to_numpy(dtype=np.float64, na_value=np.nan)[self.pos]

    def flag(self, col: str) -> np.ndarray:
        if col not in self.table.columns:
            return np.zeros(len(self.pos), dtype=bool)
        return self.table[col].to_numpy(dtype=bool, na_value=False)[self.pos]

    def factor(self, col: str) -> tuple[np.ndarray, pd.Index]:
        """Codes of a text column on the selected rows (-1 when missing) and the distinct values."""
        if col in (C.customer_id, C.product_id):  # shared with other steps: remembered
            codes, uniques = factorize(self.table[col])
        else:
            codes, uniques = pd.factorize(self.table[col])
        return codes[self.pos].astype(np.int64), pd.Index(uniques)

    def subset(self, mask: np.ndarray) -> "_Rows":
        out = object.__new__(_Rows)
        out.table, out.cutoff_ns = self.table, self.cutoff_ns
        out.pos, out.codes, out.time = self.pos[mask], self.codes[mask], self.time[mask]
        return out


def _map_codes(values: pd.Series, ids: pd.Index) -> np.ndarray:
    """Position of each value in ``ids`` (-1 if absent), looking up each distinct value once."""
    codes, uniques = factorize(values)
    lookup = ids.get_indexer(uniques.astype("str")).astype(np.int32)
    out = lookup[codes]
    out[codes < 0] = -1  # missing ids (code -1) would otherwise pick the last lookup entry
    return out


def population_before(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp,
                      population: Population = "purchasers") -> pd.Index:
    """Customers known as of the cutoff, sorted.

    Parameters
    ----------
    tables
        Canonical tables (transactions required).
    cutoff
        Only data strictly before this time counts.
    population
        ``purchasers``: customers with a purchase before the cutoff (the churn population);
        ``all``: also customers who signed up before it without buying yet (serving scores everyone known).
    """
    tx = tables[Tables.transactions]
    before = tx[C.timestamp].to_numpy(dtype="datetime64[ns]") < np.datetime64(pd.Timestamp(cutoff), "ns")
    before &= ~returned(tx)
    codes, uniques = factorize(tx[C.customer_id])
    bought = np.bincount(codes[before & (codes >= 0)], minlength=len(uniques)) > 0
    ids = pd.Index(uniques[bought])
    customers = tables.get(Tables.customers)
    if population == "all" and customers is not None:
        known = customers[C.customer_id]
        if C.signup_date in customers.columns:
            known = known[~(customers[C.signup_date] >= cutoff)]
        ids = ids.union(pd.Index(known.unique()))
    return ids.sort_values().astype("str")


def customer_features(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp | str,
                      config: CustomerFeatureConfig | None = None,
                      population: Population = "purchasers",
                      customer_ids: pd.Index | None = None) -> pd.DataFrame:
    """Features of every customer as of ``cutoff``, from data strictly before it.

    Parameters
    ----------
    tables
        Canonical tables: ``transactions`` required; ``customers``, ``products``, ``events`` and ``feedback``
        used when present (their features are absent otherwise).
    cutoff
        The as-of time. Rows at or after it are never read.
    config
        Windows and thresholds (``configs/features.yaml``).
    population
        Which customers get a row (see :func:`population_before`); ignored when ``customer_ids`` is given.
    customer_ids
        Exactly these customers, in this order (e.g. the ones a request asks about).

    Returns
    -------
    pandas.DataFrame
        One row per customer, column ``customer_id`` first, sorted by it unless ``customer_ids`` is given.
        Counts and amounts are float64 (0 when there was no activity), ratios and gaps NaN when undefined,
        ``gender`` / ``region`` / ``member_tier`` text, consent flags boolean.
    """
    config = config or CustomerFeatureConfig()
    cutoff = pd.Timestamp(cutoff)
    ids = population_before(tables, cutoff, population) if customer_ids is None else pd.Index(
        customer_ids).astype("str")
    n = len(ids)
    out: dict[str, np.ndarray] = {}

    tx = _Rows(tables[Tables.transactions], cutoff, ids)
    is_return = tx.flag(C.is_return)
    returns = _return_features(tx, is_return, n)
    purchases = tx.subset(~is_return)
    del tx, is_return  # the purchase features hold many arrays of this length: free these rows first
    out.update(_purchase_features(purchases, n, config, tables.get(Tables.products)))
    out.update(returns)
    del purchases  # the events table is as large
    events = tables.get(Tables.events)
    if events is not None:
        out.update(_event_features(_Rows(events, cutoff, ids), n, config))
    feedback = tables.get(Tables.feedback)
    if feedback is not None:
        out.update(_feedback_features(_Rows(feedback, cutoff, ids), n, config))
    frame = pd.DataFrame(out)
    frame.insert(0, C.customer_id, ids.to_numpy())
    customers = tables.get(Tables.customers)
    if customers is not None:
        frame = _customer_attributes(frame, customers, cutoff)
    return frame


def _purchase_features(purchases: _Rows, n: int, config: CustomerFeatureConfig,
                       products: pd.DataFrame | None) -> dict[str, np.ndarray]:
    g = _Grouper(purchases.codes, n)
    amount = purchases.number(C.amount)
    quantity = purchases.number(C.quantity, default=1.0)
    orders = _orders(purchases, amount)
    og = _Grouper(orders["code"], n)
    age = orders["age"]  # days before the cutoff
    out: dict[str, np.ndarray] = {}
    n_orders = og.count()
    first, last = og.max(age), og.min(age)
    out["recency_days"] = last
    out["tenure_days"] = first
    out["frequency"] = n_orders
    out["monetary_total"] = g.sum(amount)
    out["monetary_avg_order"] = _ratio(out["monetary_total"], n_orders)
    out["items_per_order"] = _ratio(g.sum(quantity), n_orders)
    out["lines_per_order"] = _ratio(g.count(), n_orders)
    out["max_order_value"] = og.max(orders["value"])
    out.update(_gap_features(orders, n, last))
    for w in config.windows_days:
        recent, previous = age < w, (age >= w) & (age < 2 * w)
        out[f"orders_{w}d"] = og.count(recent)
        out[f"spend_{w}d"] = og.sum(orders["value"], recent)
        out[f"orders_trend_{w}d"] = _trend(out[f"orders_{w}d"], og.count(previous))
        out[f"spend_trend_{w}d"] = _trend(out[f"spend_{w}d"], og.sum(orders["value"], previous))
    if purchases.has(C.product_id):
        product_codes, product_index = purchases.factor(C.product_id)
        out["distinct_products"] = g.distinct(product_codes)
        out["repeat_product_share"] = _ratio(g.count() - out["distinct_products"], g.count())
        if products is not None and C.category in products.columns:
            out.update(_category_features(g, product_codes, product_index, products))
        if products is not None and C.price in products.columns:
            out.update(_discount_features(g, product_index, product_codes, amount, quantity, products, config))
    if "channel" in orders:
        for ch in CHANNELS:
            code = orders["channel_names"].get_indexer([ch])[0]
            hits = og.count(orders["channel"] == code) if code >= 0 else np.zeros(n)
            out[f"share_{ch}"] = _ratio(hits, n_orders)
    return out


def _orders(purchases: _Rows, amount: np.ndarray) -> dict[str, Any]:
    """One row per purchase occasion (order_id, or the calendar day when there is none), sorted by customer
    and time."""
    times = purchases.time.view(np.int64)
    if purchases.has(C.order_id):
        order_key = purchases.factor(C.order_id)[0]
    else:
        order_key = purchases.time.astype("datetime64[D]").astype(np.int64)
    order_key += purchases.codes.astype(np.int64) * (int(order_key.max(initial=0)) + 1)  # (customer, order)
    key = pd.factorize(order_key)[0]
    del order_key
    n_orders = int(key.max(initial=-1)) + 1
    first_time = np.full(n_orders, np.iinfo(np.int64).max)
    np.minimum.at(first_time, key, times)  # no groupby: a 10M-row one costs more memory than all else here
    value = np.bincount(key, weights=amount, minlength=n_orders)
    order_code = np.empty(n_orders, dtype=np.int64)
    order_code[key] = purchases.codes
    result: dict[str, Any] = {"code": order_code, "time": first_time, "value": value}
    if purchases.has(C.channel):
        line_channel, names = purchases.factor(C.channel)
        channel = np.empty(n_orders, dtype=np.int64)
        channel[key[::-1]] = line_channel[::-1]  # the order's first line
        result["channel"] = channel
    order = np.lexsort((result["time"], result["code"]))
    result = {k: v[order] for k, v in result.items()}
    if purchases.has(C.channel):
        result["channel_names"] = names
    result["age"] = (purchases.cutoff_ns - result["time"]) / 86_400e9  # days before the cutoff
    return result


def _gap_features(orders: dict[str, np.ndarray], n: int, recency: np.ndarray) -> dict[str, np.ndarray]:
    """Gaps in days between consecutive purchase days (two orders on one day are one occasion, so a split
    basket does not read as a zero-day cycle), and how overdue the customer is against their usual gap."""
    day = orders["time"] // 86_400_000_000_000
    code = orders["code"]
    first_of_day = np.ones(len(code), dtype=bool)
    first_of_day[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    code, day = code[first_of_day], day[first_of_day]
    same = np.zeros(len(code), dtype=bool)
    same[1:] = code[1:] == code[:-1]
    gaps = np.diff(day, prepend=day[:1]).astype(np.float64)[same]
    gcode = code[same]
    g = _Grouper(gcode, n)
    count = g.count()
    mean = _ratio(g.sum(gaps), count)
    var = _ratio(g.sum(gaps ** 2), count) - mean ** 2
    last_gap = np.full(n, np.nan)
    last_gap[gcode] = gaps  # rows are sorted by time, so the last write is the latest gap
    median = pd.Series(gaps).groupby(gcode).median().reindex(range(n)).to_numpy()
    return {
        "purchase_days": _Grouper(code, n).count(),
        "gap_mean_days": mean, "gap_median_days": median,
        "gap_std_days": np.where(count > 1, np.sqrt(np.clip(var, 0, None)), np.nan),
        "gap_last_days": last_gap, "overdue_ratio": _ratio(recency, median),
    }


def _category_features(g: _Grouper, product_codes: np.ndarray, product_index: pd.Index,
                       products: pd.DataFrame) -> dict[str, np.ndarray]:
    category = products.drop_duplicates(C.product_id).set_index(C.product_id)[C.category]
    cat_codes, _ = pd.factorize(category.reindex(product_index).to_numpy())
    line_cat = np.where(product_codes >= 0, cat_codes[product_codes], -1).astype(np.int64)
    distinct = g.distinct(line_cat)
    lines = g.count(line_cat >= 0)
    # Share of lines in the customer's most bought category: 1.0 is a single-category shopper.
    known, width = line_cat >= 0, int(line_cat.max(initial=0)) + 1
    pairs, lines_in_pair = np.unique(g.codes[known].astype(np.int64) * width + line_cat[known], return_counts=True)
    top = np.zeros(g.n)
    np.maximum.at(top, pairs // width, lines_in_pair.astype(np.float64))  # (customer, category) pairs: no groupby
    return {"distinct_categories": distinct, "top_category_share": _ratio(top, lines)}


def _discount_features(g: _Grouper, product_index: pd.Index, product_codes: np.ndarray, amount: np.ndarray,
                       quantity: np.ndarray, products: pd.DataFrame,
                       config: CustomerFeatureConfig) -> dict[str, np.ndarray]:
    price = products.drop_duplicates(C.product_id).set_index(C.product_id)[C.price]
    line_price = price.reindex(product_index).to_numpy(dtype=np.float64)[product_codes]
    list_value = line_price * quantity
    priced = np.isfinite(list_value) & (list_value > 0)
    discounted = priced & (amount < config.discounted_below * np.where(priced, list_value, 0))
    return {
        "discount_line_share": _ratio(g.count(discounted), g.count(priced)),
        "discount_depth": 1 - _ratio(g.sum(np.where(priced, amount, 0)), g.sum(np.where(priced, list_value, 0))),
    }


def _return_features(tx: _Rows, is_return: np.ndarray, n: int) -> dict[str, np.ndarray]:
    g = _Grouper(tx.codes, n)
    amount = np.abs(tx.number(C.amount))
    returned_amount = g.sum(amount, is_return)
    bought = g.sum(amount, ~is_return)
    return {"return_lines": g.count(is_return), "return_amount_share": _ratio(returned_amount, bought)}


def _event_features(events: _Rows, n: int, config: CustomerFeatureConfig) -> dict[str, np.ndarray]:
    g = _Grouper(events.codes, n)
    age = events.age
    kind, names = events.factor(C.event_type)
    out = {"days_since_last_event": g.min(age)}
    for w in config.event_windows_days:
        recent = age < w
        out[f"events_{w}d"] = g.count(recent)
        for event_type in (EventTypes.view, EventTypes.cart, EventTypes.wishlist, EventTypes.try_on):
            code = names.get_indexer([event_type])[0]
            out[f"{event_type}s_{w}d"] = g.count(recent & (kind == code)) if code >= 0 else np.zeros(n)
    return out


def _feedback_features(feedback: _Rows, n: int, config: CustomerFeatureConfig) -> dict[str, np.ndarray]:
    codes, age = feedback.codes, feedback.age
    g = _Grouper(codes, n)
    out: dict[str, np.ndarray] = {"feedback_count": g.count()}
    if feedback.has(C.score):
        score = feedback.number(C.score)
        scored = np.isfinite(score)
        out["satisfaction_mean"] = _ratio(g.sum(np.where(scored, score, 0)), g.count(scored))
        order = np.lexsort((-age, codes))  # oldest first, so the last write per customer is the latest score
        last = np.full(n, np.nan)
        sel = order[scored[order]]
        last[codes[sel]] = score[sel]
        out["satisfaction_last"] = last
    if feedback.has(C.complaint):
        complaint = feedback.flag(C.complaint)
        for w in config.complaint_windows_days:
            out[f"complaints_{w}d"] = g.count(complaint & (age < w))
        out["days_since_last_complaint"] = g.min(age, complaint)
    return out


def _customer_attributes(frame: pd.DataFrame, customers: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Profile attributes as of the cutoff (attributes are a snapshot; the signup date is not)."""
    attrs = customers.drop_duplicates(C.customer_id).set_index(C.customer_id)
    rows = attrs.reindex(frame[C.customer_id])
    if C.signup_date in attrs.columns:
        frame["days_since_signup"] = _days_before(cutoff, rows[C.signup_date].to_numpy())
        frame.loc[frame["days_since_signup"] < 0, "days_since_signup"] = np.nan
    if C.birth_year in attrs.columns:
        frame["age"] = cutoff.year - rows[C.birth_year].astype("float64").to_numpy()
    for col in CATEGORICAL_FEATURES:
        if col in attrs.columns:
            frame[col] = rows[col].astype("str").to_numpy()
    for col in (C.consent_profiling, C.consent_marketing):
        if col in attrs.columns:
            frame[col] = rows[col].astype("boolean").to_numpy()
    return frame
