"""Popularity, trend and repeat-purchase signals over a purchase log: one implementation shared by the
generators, the fallback of every model and the reranker's features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.recommenders.data import PurchaseLog


def buyers(log: PurchaseLog, n_items: int, window_days: float | None = None) -> np.ndarray:
    """Distinct customers who bought each product in the last ``window_days`` (all time when ``None``).

    Distinct buyers rather than units or lines: one wholesale customer ordering a product every week should not
    make it a best seller.
    """
    _, item, last_age = log.pairs
    if window_days is not None:
        item = item[last_age < window_days]
    return np.bincount(item, minlength=n_items).astype(np.float64)


def buyers_between(log: PurchaseLog, n_items: int, min_age: float, max_age: float) -> np.ndarray:
    """Distinct customers who bought each product between ``max_age`` and ``min_age`` days before the cutoff
    (e.g. the same weeks a year ago: what sells in this season)."""
    mask = (log.age >= min_age) & (log.age < max_age)
    pairs = np.unique(log.user[mask].astype(np.int64) * n_items + log.item[mask])
    return np.bincount(pairs % n_items, minlength=n_items).astype(np.float64)


def segment_buyers(log: PurchaseLog, segment: np.ndarray, n_segments: int, n_items: int,
                   window_days: float | None = None) -> np.ndarray:
    """Distinct buyers of each product per segment: an (n_segments, n_items) array.

    Parameters
    ----------
    segment
        Segment code of every customer (-1: unknown, not counted).
    """
    user, item, last_age = log.pairs
    keep = segment[user] >= 0
    if window_days is not None:
        keep &= last_age < window_days
    counts = np.zeros((n_segments, n_items), dtype=np.float64)
    np.add.at(counts, (segment[user[keep]], item[keep]), 1.0)
    return counts


def shrunk_share(counts: np.ndarray, prior_share: np.ndarray, strength: float) -> np.ndarray:
    """``(counts + strength * prior_share) / (counts.sum() + strength)`` along the last axis: a small segment's
    popularity leans on the overall one instead of being noise."""
    total = counts.sum(axis=-1, keepdims=True)
    return (counts + strength * prior_share) / (total + strength)


def trend(log: PurchaseLog, n_items: int, recent_days: float, baseline_days: float, prior: float) -> np.ndarray:
    """Lift of each product's recent buyers over its baseline rate, smoothed by ``prior`` buyers.

    ``(recent + prior) / (baseline * recent_days / baseline_days + prior)``: 1 is steady, above 1 rising. The
    baseline window ends where the recent one starts, so a product launched last week has no baseline.
    """
    recent = buyers(log, n_items, recent_days)
    longer = buyers(log, n_items, recent_days + baseline_days)
    baseline = np.maximum(longer - recent, 0.0)
    return (recent + prior) / (baseline * recent_days / baseline_days + prior)


@dataclass(frozen=True)
class PairHistory:
    """Per (customer, product) purchase history, one row per pair bought before the cutoff, sorted by pair.

    Attributes
    ----------
    user, item
        Internal indices of the pair.
    days
        Distinct days on which the customer bought the product.
    quantity
        Units bought in total.
    last_age, first_age
        Days from the latest / first purchase to the cutoff.
    gap
        Mean days between the customer's purchase days of the product (NaN with one day only).
    """

    user: np.ndarray
    item: np.ndarray
    days: np.ndarray
    quantity: np.ndarray
    last_age: np.ndarray
    first_age: np.ndarray
    gap: np.ndarray

    def __len__(self) -> int:
        return len(self.user)

    def key(self, n_items: int) -> np.ndarray:
        return self.user.astype(np.int64) * n_items + self.item

    def decayed(self, log: PurchaseLog, n_items: int, half_life_days: float,
                day_rows: pd.DataFrame | None = None) -> np.ndarray:
        """Sum over the pair's purchase days of ``2 ** (-age / half_life_days)``: frequency and recency in one
        (``day_rows``: :func:`distinct_days` of ``log``, when the caller already has them)."""
        day_rows = distinct_days(log, n_items) if day_rows is None else day_rows
        weight = np.exp2(-day_rows["age"].to_numpy() / half_life_days)
        sums = pd.Series(weight).groupby(day_rows["key"].to_numpy()).sum()
        return sums.reindex(self.key(n_items)).to_numpy(dtype=np.float64)


def distinct_days(log: PurchaseLog, n_items: int) -> pd.DataFrame:
    """One row per (pair, calendar day): two orders on one day are one purchase occasion."""
    frame = pd.DataFrame({"key": log.user.astype(np.int64) * n_items + log.item,
                          "day": log.day, "age": log.age,
                          "q": log.quantity})
    return frame.groupby(["key", "day"], sort=True).agg(age=("age", "min"), q=("q", "sum")).reset_index()


def pair_history(log: PurchaseLog, n_items: int, day_rows: pd.DataFrame | None = None) -> PairHistory:
    """Purchase days, units, recency and the usual gap of every (customer, product) pair in ``log``
    (``day_rows``: :func:`distinct_days` of ``log``, when the caller already has them)."""
    day_rows = distinct_days(log, n_items) if day_rows is None else day_rows
    grouped = day_rows.groupby("key", sort=True)
    stats = grouped.agg(days=("day", "size"), quantity=("q", "sum"), last_age=("age", "min"),
                        first_age=("age", "max"), first_day=("day", "min"), last_day=("day", "max"))
    key = stats.index.to_numpy(dtype=np.int64)
    days = stats["days"].to_numpy(dtype=np.float64)
    span = (stats["last_day"] - stats["first_day"]).to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(days > 1, span / (days - 1), np.nan)
    return PairHistory(user=(key // n_items).astype(np.int32), item=(key % n_items).astype(np.int32),
                       days=days, quantity=stats["quantity"].to_numpy(dtype=np.float64),
                       last_age=stats["last_age"].to_numpy(dtype=np.float64),
                       first_age=stats["first_age"].to_numpy(dtype=np.float64), gap=gap)


@dataclass(frozen=True)
class Baskets:
    """Each customer's baskets (distinct orders) counted back from their newest.

    Attributes
    ----------
    back
        Per basket: its place counted back from the customer's newest basket (0 = newest).
    count
        Per basket: how many baskets its customer has.
    of_line
        Per line of the log: its basket.
    """

    back: np.ndarray
    count: np.ndarray
    of_line: np.ndarray

    def first_lines(self, log: PurchaseLog, n_items: int) -> np.ndarray:
        """Index of one line per (basket, product): a product counts once per basket."""
        _, once = np.unique(self.of_line.astype(np.int64) * n_items + log.item, return_index=True)
        return once


def basket_positions(log: PurchaseLog) -> Baskets:
    """The baskets of a purchase log, newest first per customer (TIFU-KNN's unit of time, and the reranker's
    basket-count recency)."""
    if not len(log):
        empty = np.zeros(0, dtype=np.int64)
        return Baskets(back=empty, count=empty, of_line=empty)
    # Baskets: distinct (customer, order), ordered by their first line's time (the log is sorted by time).
    basket_key = log.user.astype(np.int64) * (int(log.order.max()) + 1) + log.order
    keys, first, basket_of_line = np.unique(basket_key, return_index=True, return_inverse=True)
    basket_user = log.user[first]
    basket_time = log.time[first]
    order = np.lexsort((basket_time, basket_user))
    sorted_user = basket_user[order]
    starts = np.flatnonzero(np.r_[True, sorted_user[1:] != sorted_user[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    # Position counted back from the customer's newest basket (0 = newest).
    position_sorted = np.repeat(starts + counts - 1, counts) - np.arange(len(order))
    back = np.empty(len(keys), dtype=np.int64)
    back[order] = position_sorted
    baskets = np.empty(len(keys), dtype=np.int64)
    baskets[order] = np.repeat(counts, counts)
    return Baskets(back=back, count=baskets, of_line=basket_of_line.ravel())


def product_repeat_stats(history: PairHistory, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Per product: the share of its buyers who bought it on more than one day, and the median gap of those who
    did (NaN when nobody repeated). A replenishment product has a high share and a typical cycle."""
    buyers_all = np.bincount(history.item, minlength=n_items).astype(np.float64)
    repeaters = np.bincount(history.item, weights=(history.days > 1).astype(np.float64), minlength=n_items)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(buyers_all > 0, repeaters / buyers_all, np.nan)
    has_gap = np.isfinite(history.gap)
    median_gap = pd.Series(history.gap[has_gap]).groupby(history.item[has_gap]).median()
    return share, median_gap.reindex(np.arange(n_items)).to_numpy(dtype=np.float64)


def in_sorted(sorted_keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is one of ``sorted_keys`` (sorted ascending): ``np.isin``'s answer by binary
    search. ``np.isin`` sorts both arrays on every call, so a block of candidates checked against the keys of
    every customer would cost in proportion to the whole customer base, not to the block."""
    if not len(sorted_keys):
        return np.zeros(np.shape(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values


# Rows of a score matrix selected at once by :func:`top_n`: the partition's negated copy and its int64 order stay
# in the CPU cache instead of being allocated (and page-faulted) at the size of the whole matrix; 2.3x faster on
# 5,000 customers x 12,000 products, the same result (each row is selected on its own).
_TOP_ROWS = 64


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best columns of each row, best first; ``-1`` / ``-inf`` where a row has fewer finite scores.

    Ties are broken by the lower index so results are deterministic.
    """
    rows = scores.shape[0]
    if rows <= _TOP_ROWS:
        return _top_n(scores, n)
    items = np.empty((rows, n), dtype=np.int64)
    best = np.empty((rows, n), dtype=np.float32)
    for start in range(0, rows, _TOP_ROWS):
        items[start:start + _TOP_ROWS], best[start:start + _TOP_ROWS] = _top_n(scores[start:start + _TOP_ROWS], n)
    return items, best


def top_with(items: np.ndarray, scores: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
             n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's best entries (``items`` and ``scores`` as :func:`top_n` returns them) joined by those of a few
    more entries (``rows``, ``cols``, ``values``: none among the row's ``items``) that would rank among the row's
    ``n`` best overall: every entry of a row missing from both must be no better than its ``items``' last.

    A customer's best ``n`` products not bought and the products bought give the best ``n`` overall: the two
    lists merged, from one partition of the catalogue.

    Returns
    -------
    row, column, score, extra
        Flat, by row, best first (lower column first among equals); ``extra``: the entry is one of the few more.
    """
    n_rows = items.shape[0]
    listed = items >= 0
    finite = np.isfinite(values)
    r = np.concatenate([np.nonzero(listed)[0], np.asarray(rows)[finite]]).astype(np.int64)
    c = np.concatenate([items[listed], np.asarray(cols)[finite]]).astype(np.int64)
    v = np.concatenate([scores[listed], np.asarray(values)[finite]]).astype(np.float32)
    extra = np.r_[np.zeros(int(listed.sum()), dtype=bool), np.ones(int(finite.sum()), dtype=bool)]
    order = np.lexsort((c, -v, r))
    r, c, v, extra = r[order], c[order], v[order], extra[order]
    place = np.arange(len(r)) - np.searchsorted(r, np.arange(n_rows))[r]  # rank among the row's entries
    keep = ~extra | (place < n)
    return r[keep], c[keep], v[keep], extra[keep]


def _top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_n` of a few rows."""
    rows, cols = scores.shape
    n_eff = min(n, cols)
    if n_eff == 0:
        return np.full((rows, n), -1, dtype=np.int64), np.full((rows, n), -np.inf, dtype=np.float32)
    if n_eff < cols:
        part = np.argpartition(-scores, n_eff - 1, axis=1)[:, :n_eff]
    else:
        part = np.broadcast_to(np.arange(cols), (rows, cols)).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    best = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    # argpartition may cut inside a tie at the n-th place; ties at the boundary are rare and harmless, but the
    # lower-index rule keeps repeated calls identical.
    items[~np.isfinite(best)] = -1
    if n_eff < n:
        items = np.pad(items, ((0, 0), (0, n - n_eff)), constant_values=-1)
        best = np.pad(best, ((0, 0), (0, n - n_eff)), constant_values=-np.inf)
    return items, best
