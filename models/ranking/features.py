"""Features of (customer, candidate product) pairs as of a cutoff: customer, product and pair features.

Customer features come from :func:`features.customer.customer_features` (the same point-in-time features churn
uses); product and pair features are computed here from the purchase log of the same cutoff, with the shared
signals of :mod:`models.recommenders.signals`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from pydantic import Field

from features.columns import Columns as C
from features.config import CustomerFeatureConfig
from features.customer import CATEGORICAL_FEATURES, customer_features
from models.ranking.rhythm import RhythmFeatures
from models.recommenders import signals
from models.recommenders.config import Params
from models.recommenders.data import TrainingData


class PairFeatures(Params):
    """Windows of the product and pair features.

    Attributes
    ----------
    popularity_windows_days
        Distinct buyers of the product in each of these windows before the cutoff.
    trend_recent_days, trend_baseline_days, trend_prior
        The product's trend: recent buyers against its baseline rate (see :func:`signals.trend`).
    decay_half_lives_days
        Half-lives of the pair's decayed purchase counts (frequency and recency in one number each; short ones
        follow a habit that is changing, long ones a steady one).
    region_window_days, region_shrinkage
        Popularity of the product in the customer's region, shrunk towards the overall popularity.
    season_lag_days
        Seasonal features look at the label window's weeks this long ago (52 weeks keeps weekdays aligned).
    customer
        Windows of the customer features (``customer`` of ``features.yaml``, given by the training job and saved
        with the model's parameters).
    rhythm
        Add the pairs' rhythm counted in the customer's own baskets (:mod:`models.ranking.rhythm`).
    """

    popularity_windows_days: tuple[float, ...] = (7.0, 30.0, 90.0, 365.0)
    trend_recent_days: float = 14.0
    trend_baseline_days: float = 90.0
    trend_prior: float = 3.0
    decay_half_lives_days: tuple[float, ...] = (14.0, 60.0, 365.0)
    region_window_days: float = 90.0
    region_shrinkage: float = 50.0
    season_lag_days: float = 364.0
    customer: CustomerFeatureConfig = Field(default_factory=CustomerFeatureConfig)
    rhythm: bool = True


# A part of a feature matrix (:func:`stack_columns`): one column, several, or the rows ``index`` of a table.
Part = Union[np.ndarray, tuple[np.ndarray, np.ndarray]]
# Rows filled at a time by stack_columns: a few thousand rows of every column stay in the cache.
_STACK_ROWS = 2048


def stack_columns(parts: list[Part], rows: int) -> np.ndarray:
    """The float32 matrix (rows, columns) of ``parts`` side by side, the values of ``np.column_stack``.

    Parameters
    ----------
    parts
        1-D arrays (one column each), 2-D arrays (their columns), or ``(table, index)`` pairs (the columns of
        ``table[index]``, gathered without an intermediate copy), each of ``rows`` rows.
    rows
        Rows of the result.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32, as LightGBM reads it without a copy.

    Notes
    -----
    Filled a few thousand rows at a time: writing whole columns into a row-major matrix touches a new cache line
    at every value, about four times slower for the hundred-odd columns of a block of candidates.
    """
    widths = [1 if not isinstance(p, tuple) and p.ndim == 1 else (p[0] if isinstance(p, tuple) else p).shape[1]
              for p in parts]
    out = np.empty((rows, sum(widths)), dtype=np.float32)
    for start in range(0, rows, _STACK_ROWS):
        end = min(start + _STACK_ROWS, rows)
        block, col = out[start:end], 0
        for part, width in zip(parts, widths):
            if isinstance(part, tuple):
                block[:, col:col + width] = part[0][part[1][start:end]]
            elif width == 1 and part.ndim == 1:
                block[:, col] = part[start:end]
            else:
                block[:, col:col + width] = part[start:end]
            col += width
    return out


def _finite(values: np.ndarray) -> np.ndarray:
    """``values`` with infinities as NaN (in place)."""
    values[np.isinf(values)] = np.nan
    return values


@dataclass
class _Block:
    names: list[str]
    values: np.ndarray  # (rows of the entity, features) float32


class CandidateFeatures:
    """Everything needed to describe candidates of one cutoff, computed once and looked up per pair.

    Parameters
    ----------
    data
        Training data of the cutoff.
    tables
        The canonical tables (cut at the cutoff or not: customer features read only rows before it).
    params
        Feature windows.
    categories
        Vocabulary of each text customer attribute (gender, region, member tier), so codes mean the same at
        every cutoff of one fit.
    horizon_days
        Length of the window the candidates are ranked for (seasonal features look at it a year earlier).
    customers
        Only these customers' candidates are described (internal indices): the customer features are worked out
        for them alone (each customer's from their own rows: the very values), the others' left NaN. Default:
        every customer.
    """

    def __init__(self, data: TrainingData, tables: dict[str, pd.DataFrame], params: PairFeatures,
                 categories: dict[str, list[str]] | None = None, horizon_days: float = 30.0,
                 customers: np.ndarray | None = None):
        self.data = data
        self.params = params
        n_items = data.n_items
        lag = params.season_lag_days
        season = (data.log.age >= lag - horizon_days) & (data.log.age < lag)
        self._season_keys = np.unique(data.log.user[season].astype(np.int64) * n_items + data.log.item[season])
        # Every pair statistic below reads the same (pair, day) rows: grouped once, not once per statistic.
        day_rows = signals.distinct_days(data.log, n_items)
        self.history = signals.pair_history(data.log, n_items, day_rows)
        self._keys = self.history.key(n_items)
        self._decayed = {h: self.history.decayed(data.log, n_items, h, day_rows)
                         for h in params.decay_half_lives_days}
        del day_rows
        self.customer = _customer_block(data, tables, categories or {}, params.customer, customers)
        self.product = _product_block(data, self.history, params, horizon_days)
        trips = pd.Series(data.log.day).groupby(data.log.user).nunique()
        self._trips = trips.reindex(np.arange(data.n_users)).to_numpy(dtype=np.float64)
        paid = data.log.quantity > 0
        unit = pd.Series(data.log.amount[paid] / data.log.quantity[paid]).groupby(data.log.user[paid]).median()
        self._unit_price = unit.reindex(np.arange(data.n_users)).to_numpy(dtype=np.float64)
        counts = signals.segment_buyers(data.log, data.region, len(data.regions), n_items, params.region_window_days)
        overall = signals.buyers(data.log, n_items, params.region_window_days)
        overall = overall / max(overall.sum(), 1.0)
        self._region_share = signals.shrunk_share(counts, overall, params.region_shrinkage) if len(counts) else None
        self._overall_share = overall
        self._category_share = _category_shares(data)
        self._rhythm = RhythmFeatures(data, self.history, horizon_days) if params.rhythm else None
        # What pairs read of the product and customer blocks, a ratio over zero undefined (NaN), not huge.
        self._product_values = _finite(self.product.values.copy())
        self._customer_values = _finite(self.customer.values.copy())

    @property
    def categorical(self) -> list[str]:
        """Names of integer-coded categorical features."""
        return [f"c_{name}" for name in CATEGORICAL_FEATURES if f"c_{name}" in self.customer.names] + \
            (["p_category"] if "p_category" in self.product.names else [])

    def build(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Customer, product and pair features of each (users[k], items[k]).

        Returns
        -------
        (numpy.ndarray of float32, list of str)
            One row per pair; NaN where a feature is undefined (never bought, no usual gap).
        """
        parts, names = self.columns(users, items)
        return stack_columns(parts, len(users)), names

    def columns(self, users: np.ndarray, items: np.ndarray) -> tuple[list[Part], list[str]]:
        """:meth:`build`'s features as parts for :func:`stack_columns` (a caller adding columns of its own
        stacks everything once)."""
        n_items = self.data.n_items
        keys = users.astype(np.int64) * n_items + items
        h = self.history
        if len(self._keys):
            where = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
            bought = self._keys[where] == keys
        else:
            where, bought = np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=bool)

        def pick(values: np.ndarray, missing: float = np.nan) -> np.ndarray:
            return np.where(bought, values[where], missing) if len(values) else np.full(len(keys), missing)

        days = pick(h.days, 0.0)
        last_age, gap = pick(h.last_age), pick(h.gap)
        product_gap = self.product.values[items, self.product.names.index("p_median_gap")]
        with np.errstate(divide="ignore", invalid="ignore"):
            pair = {
                "x_days": days,
                "x_quantity": pick(h.quantity, 0.0),
                **{f"x_decayed_{int(half_life)}d": pick(values, 0.0) for half_life, values in self._decayed.items()},
                "x_last_age": last_age,
                "x_first_age": pick(h.first_age),
                "x_gap": gap,
                "x_since_over_gap": last_age / gap,
                "x_due_in": gap - last_age,
                "x_since_over_product_gap": last_age / product_gap,
                "x_trip_share": days / self._trips[users],
                "x_interaction": np.asarray(self.data.interactions[users, items]).ravel(),
                "x_region_share": self._region(users, items),
                "x_category_share": self._category(users, items),
                "x_price_ratio": np.log(self.data.catalog.price[items] / self._unit_price[users]),
                "x_bought_last_season": signals.in_sorted(self._season_keys, keys).astype(np.float64),
            }
        if self._rhythm is not None:
            pair.update(self._rhythm.build(users, where, bought))
        names = list(pair) + self.product.names + self.customer.names
        parts: list[Part] = [_finite(np.array(v, dtype=np.float32)) for v in pair.values()]
        return parts + [(self._product_values, items), (self._customer_values, users)], names

    def _region(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        region = self.data.region[users]
        out = self._overall_share[items].astype(np.float64)
        if self._region_share is not None:
            known = region >= 0
            out[known] = self._region_share[region[known], items[known]]
        return out

    def _category(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self._category_share is None:
            return np.full(len(users), np.nan)
        category = self.data.catalog.category[items]
        out = np.full(len(users), np.nan)
        known = category >= 0
        out[known] = np.asarray(self._category_share[users[known], category[known]]).ravel()
        return out


def _customer_block(data: TrainingData, tables: dict[str, pd.DataFrame],
                    categories: dict[str, list[str]], config: CustomerFeatureConfig,
                    customers: np.ndarray | None = None) -> _Block:
    ids = data.customers.external_ids
    frame = customer_features(tables, data.cutoff, config,
                              customer_ids=pd.Index(ids if customers is None else ids[customers]))
    names, columns = [], []
    for col in frame.columns:
        if col == C.customer_id:
            continue
        names.append(f"c_{col}")
        if col in CATEGORICAL_FEATURES:
            vocab = categories.get(col) or sorted(frame[col].dropna().astype("str").unique())
            codes = pd.Categorical(frame[col].astype("str"), categories=vocab).codes.astype(np.float32)
            codes[codes < 0] = np.nan
            columns.append(codes)
            continue
        # Every other column becomes a number, whatever dtype this cutoff's data gave it (a flag column with a
        # missing value arrives as objects), so the reranker sees the same features at every cutoff.
        try:
            columns.append(frame[col].astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan))
        except (TypeError, ValueError, ArithmeticError, pa.ArrowException):
            columns.append(np.full(len(frame), np.nan, dtype=np.float32))
    values = np.column_stack(columns) if columns else np.zeros((len(frame), 0), dtype=np.float32)
    if customers is not None:
        every = np.full((data.n_users, values.shape[1]), np.nan, dtype=np.float32)
        every[customers] = values
        values = every
    return _Block(names, values.astype(np.float32))


def _product_block(data: TrainingData, history: signals.PairHistory, params: PairFeatures,
                   horizon_days: float) -> _Block:
    n_items = data.n_items
    log = data.log
    cols: dict[str, np.ndarray] = {}
    for w in params.popularity_windows_days:
        cols[f"p_buyers_{int(w)}d"] = signals.buyers(log, n_items, w)
    cols["p_buyers_all"] = signals.buyers(log, n_items)
    cols["p_trend"] = signals.trend(log, n_items, params.trend_recent_days, params.trend_baseline_days,
                                    params.trend_prior)
    # The same weeks a year ago, and the weeks before them: what this season sells and how it ramps up.
    lag = params.season_lag_days
    cols["p_buyers_last_season"] = signals.buyers_between(log, n_items, lag - horizon_days, lag)
    cols["p_buyers_before_last_season"] = signals.buyers_between(log, n_items, lag, lag + horizon_days)
    share, median_gap = signals.product_repeat_stats(history, n_items)
    cols["p_repeat_share"] = share
    cols["p_median_gap"] = median_gap
    cols["p_price"] = data.catalog.price
    first = np.full(n_items, np.nan)
    last = np.full(n_items, np.nan)
    if len(log):
        order = pd.Series(log.age).groupby(log.item)
        first[order.max().index.to_numpy()] = order.max().to_numpy()
        last[order.min().index.to_numpy()] = order.min().to_numpy()
    cols["p_first_sale_age"] = first
    cols["p_last_sale_age"] = last
    lines = np.bincount(log.item, minlength=n_items).astype(np.float64)
    units = np.bincount(log.item, weights=log.quantity, minlength=n_items)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["p_units_per_line"] = np.where(lines > 0, units / lines, np.nan)
    if (data.catalog.category >= 0).any():
        category = data.catalog.category.astype(np.float64)
        category[category < 0] = np.nan
        cols["p_category"] = category
    return _Block(list(cols), np.column_stack(list(cols.values())).astype(np.float32))


def _category_shares(data: TrainingData) -> sp.csr_matrix | None:
    """Customers x categories share of each customer's purchase lines (None without categories)."""
    category = data.catalog.category
    if not (category >= 0).any():
        return None
    line_category = category[data.log.item]
    keep = line_category >= 0
    counts = sp.csr_matrix((np.ones(keep.sum()), (data.log.user[keep], line_category[keep])),
                           shape=(data.n_users, len(data.catalog.categories)))
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = sp.diags(np.where(totals > 0, 1.0 / np.maximum(totals, 1.0), 0.0))
    return sp.csr_matrix(scale @ counts)
