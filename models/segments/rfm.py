"""RFM scores (quintiles learned at fit, tie-safe) and the classic named RFM segments.

Scores
------
Each of recency, frequency and monetary value is scored 1..5 (``rfm.scores`` in configs/segments.yaml) on the
training population, 5 best (for recency: the most recent). The cut points are *values*, not rank positions,
so customers with identical values always share a score whatever the row order, and a customer scored alone
at serving time gets the score they get in bulk. Precisely, with ``n`` scores,

    score = 1 + min(n - 1, floor(n * w))

where ``w`` is the share of the training customers strictly worse than the customer (strictly less recent,
fewer orders, less spend). A block of tied customers therefore gets the score of the lowest quintile it
covers: most retailers have a majority of one-time buyers, and all of them get F = 1 instead of being spread
over F = 1..3 by an arbitrary tie-break (the classic ``qcut(rank(method="first"))`` recipe does exactly that,
and its result changes when the rows are shuffled).

Named segments
--------------
The segment is looked up from the R score and the FM score, the mean of F and M rounded half up, in the map of
``rfm.segment_map`` (rows: R score, columns: FM = 1..5). The default is the widely used R x F segment grid
(champions, loyal customers, potential loyalists, new customers, promising, need attention, about to sleep,
at risk, cannot lose them, hibernating) with "lost" carved out of the oldest, least valuable corner::

            FM=1            FM=2                 FM=3                 FM=4             FM=5
    R=5     new_customers   potential_loyalists  potential_loyalists  champions        champions
    R=4     promising       potential_loyalists  potential_loyalists  loyal_customers  loyal_customers
    R=3     about_to_sleep  about_to_sleep       need_attention       loyal_customers  loyal_customers
    R=2     hibernating     hibernating          at_risk              at_risk          cannot_lose_them
    R=1     lost            lost                 at_risk              at_risk          cannot_lose_them

Customers without a purchase before the cutoff (recency, frequency or monetary value missing) get no scores
and the segment ``prospect``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.exceptions import ClienteleError, DataError

R_SCORE, F_SCORE, M_SCORE, FM_SCORE = "r_score", "f_score", "m_score", "fm_score"
RFM_CODE, RFM_SEGMENT = "rfm_code", "rfm_segment"
PROSPECT = "prospect"
DIMENSIONS = ("recency", "frequency", "monetary")
_FORMAT = "clientele.segments.RFMScorer"
_FORMAT_VERSION = 1
# n * share is rounded to this many decimals before the ceiling: 10 * 0.6 is 6.000000000000001 in floats.
_SHARE_DECIMALS = 9

DEFAULT_SEGMENT_MAP: dict[int, tuple[str, ...]] = {
    5: ("new_customers", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal_customers", "loyal_customers"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal_customers", "loyal_customers"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose_them"),
    1: ("lost", "lost", "at_risk", "at_risk", "cannot_lose_them"),
}


def quantile_cuts(values: np.ndarray, shares: list[float] | np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Tie-safe cut points: a value beats the ``k``-th cut exactly when at least ``shares[k]`` of ``values`` are
    strictly worse than it.

    The ``k``-th cut is the smallest value (in the "better" direction) at or below which ``shares[k]`` of the
    values lie (the inverted-CDF quantile), so it is always one of the values and depends only on their
    multiset, never on their order.

    Parameters
    ----------
    values
        The training population's values; NaN and infinite values are left out.
    shares
        Increasing shares in (0, 1), e.g. ``[0.2, 0.4, 0.6, 0.8]`` for quintiles.
    higher_is_better
        False for quantities where less is better (recency): the cuts are then taken on the negated values
        and returned in natural units (decreasing).

    Returns
    -------
    numpy.ndarray
        One cut per share, in the units of ``values``.

    Raises
    ------
    DataError
        No finite value to learn from.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise DataError("no finite value to learn cut points from")
    better = np.sort(v if higher_is_better else -v)
    n = better.size
    index = np.ceil(np.round(n * np.asarray(shares, dtype=np.float64), _SHARE_DECIMALS)).astype(np.int64) - 1
    cuts = better[np.clip(index, 0, n - 1)]
    return cuts if higher_is_better else -cuts


def cuts_beaten(values: np.ndarray, cuts: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """How many of the cuts (from :func:`quantile_cuts`) each value strictly beats; NaN values count 0 (mask
    them yourself)."""
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(cuts, dtype=np.float64)
    better, c = (v, c) if higher_is_better else (-v, -c)
    beaten = np.searchsorted(c, better, side="left")  # the number of cuts strictly below the value
    return np.where(np.isnan(better), 0, beaten)


class RFMConfig(BaseModel):
    """RFM settings (section ``rfm`` of configs/segments.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recency_column: str = "recency_days"
    frequency_column: str = "frequency"
    monetary_column: str = "monetary_total"
    scores: int = Field(5, ge=2, le=9)
    segment_map: dict[int, tuple[str, ...]] = Field(default_factory=lambda: dict(DEFAULT_SEGMENT_MAP))

    @model_validator(mode="after")
    def _grid_matches_scores(self) -> "RFMConfig":
        if sorted(self.segment_map) != list(range(1, self.scores + 1)):
            raise ValueError(f"segment_map needs one row per R score 1..{self.scores}")
        for r, row in self.segment_map.items():
            if len(row) != self.scores:
                raise ValueError(f"segment_map row {r} needs {self.scores} names (FM = 1..{self.scores})")
            if any(not name or not name.strip() or name == PROSPECT for name in row):
                raise ValueError(f"segment_map row {r}: names must be non-empty and not '{PROSPECT}'")
        return self

    @property
    def columns(self) -> dict[str, str]:
        """Feature column of each dimension."""
        return {"recency": self.recency_column, "frequency": self.frequency_column,
                "monetary": self.monetary_column}

    @property
    def segment_names(self) -> list[str]:
        """Every segment name, best R first, in map order, then ``prospect``."""
        names = dict.fromkeys(name for r in sorted(self.segment_map, reverse=True) for name in self.segment_map[r])
        return [*names, PROSPECT]


class RFMScorer:
    """R, F, M scores from quintile cuts learned on a training population, and the named RFM segment.

    Parameters
    ----------
    config
        Columns, number of scores and segment map; defaults to :class:`RFMConfig` ().

    Attributes
    ----------
    cuts_ : dict[str, list[float]]
        Per dimension (``recency``, ``frequency``, ``monetary``), the ``scores - 1`` cut points in the
        feature's units. Recency cuts decrease: R >= k + 1 means more recent than the k-th cut.
    n_customers_ : int
        Customers the cuts were learned from (those with a purchase).
    """

    def __init__(self, config: RFMConfig | None = None) -> None:
        self.config = config

    @property
    def settings(self) -> RFMConfig:
        """The configuration in force (the default when none was given)."""
        return self.config if self.config is not None else RFMConfig()

    def fit(self, frame: pd.DataFrame) -> RFMScorer:
        """Learn the cut points from the customers in ``frame`` who have a purchase.

        Parameters
        ----------
        frame
            Customer feature frame (:func:`features.customer.customer_features`).

        Returns
        -------
        RFMScorer
            ``self``, fitted.

        Raises
        ------
        DataError
            A configured column is missing, or no customer has all three values.
        """
        cfg = self.settings
        values = self._values(frame)
        scored = np.logical_and.reduce([np.isfinite(v) for v in values.values()])
        if not scored.any():
            raise DataError("segments: no customer with a purchase to learn the RFM quintiles from")
        shares = np.arange(1, cfg.scores) / cfg.scores
        self.cuts_ = {dim: quantile_cuts(values[dim][scored], shares, higher_is_better=dim != "recency").tolist()
                      for dim in DIMENSIONS}
        self.n_customers_ = int(scored.sum())
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Scores and segment of every row of ``frame`` with the cuts learned at fit.

        Parameters
        ----------
        frame
            Customer feature frame; only the configured columns are read.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``frame``: ``r_score``, ``f_score``, ``m_score``, ``fm_score`` (nullable Int8, missing
            for prospects), ``rfm_code`` (e.g. ``"545"``) and ``rfm_segment`` (categorical over every segment
            name, so one row and a bulk export carry the same categories).
        """
        return pd.DataFrame(self.columns(frame), index=frame.index)

    def columns(self, frame: pd.DataFrame) -> dict[str, pd.api.extensions.ExtensionArray]:
        """The columns of :meth:`transform` as arrays in row order (the fast path for one serving row)."""
        self._check_fitted()
        cfg = self.settings
        values = self._values(frame)
        scored = np.logical_and.reduce([np.isfinite(v) for v in values.values()])
        scores = {dim: 1 + cuts_beaten(values[dim], np.asarray(self.cuts_[dim]), dim != "recency")
                  for dim in DIMENSIONS}
        r, f, m = scores["recency"], scores["frequency"], scores["monetary"]
        fm = (f + m + 1) // 2  # mean of F and M, rounded half up
        names = cfg.segment_names
        grid = np.array([[names.index(cfg.segment_map[ri][fi - 1]) for fi in range(1, cfg.scores + 1)]
                         for ri in range(1, cfg.scores + 1)])
        codes = np.where(scored, grid[np.clip(r, 1, cfg.scores) - 1, np.clip(fm, 1, cfg.scores) - 1],
                         names.index(PROSPECT))
        code = (100 * r + 10 * f + m).astype(str).astype(object)  # one digit per score: scores <= 9
        return {
            R_SCORE: _nullable(r, scored), F_SCORE: _nullable(f, scored), M_SCORE: _nullable(m, scored),
            FM_SCORE: _nullable(fm, scored),
            RFM_CODE: pd.array(np.where(scored, code, None), dtype="str"),
            RFM_SEGMENT: pd.Categorical.from_codes(codes, dtype=category_dtype(tuple(names))),
        }

    def fit_transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """:meth:`fit` then :meth:`transform` on the same frame."""
        return self.fit(frame).transform(frame)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings and learned cuts (saved with the model)."""
        self._check_fitted()
        return {"format": _FORMAT, "version": _FORMAT_VERSION, "config": self.settings.model_dump(mode="json"),
                "cuts": {dim: list(map(float, c)) for dim, c in self.cuts_.items()},
                "n_customers": self.n_customers_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> RFMScorer:
        """Rebuild a scorer written by :meth:`to_dict`.

        Raises
        ------
        ClienteleError
            ``state`` is not a saved RFMScorer of this version.
        """
        check_saved_format(state, _FORMAT, _FORMAT_VERSION)
        scorer = cls(RFMConfig.model_validate(state["config"]))
        scorer.cuts_ = {dim: [float(c) for c in state["cuts"][dim]] for dim in DIMENSIONS}
        scorer.n_customers_ = int(state["n_customers"])
        return scorer

    def _values(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {dim: column_values(frame, col, "rfm") for dim, col in self.settings.columns.items()}

    def _check_fitted(self) -> None:
        if not hasattr(self, "cuts_"):
            raise ClienteleError("RFMScorer is not fitted: call fit(frame) or RFMScorer.from_dict(state)")

    def __repr__(self) -> str:
        return f"RFMScorer(scores={self.settings.scores})"


def column_values(frame: pd.DataFrame, column: str, section: str) -> np.ndarray:
    """``frame[column]`` as float64 (missing values NaN), or a DataError naming the column and the config
    section that asks for it."""
    if column not in frame.columns:
        raise DataError(f"segments: column '{column}' (segments.{section}) is missing from the feature frame")
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


@lru_cache(maxsize=64)
def category_dtype(names: tuple[str, ...], ordered: bool = False) -> pd.CategoricalDtype:
    """The categorical dtype of a segment column, built once per set of names (building one validates the
    categories, which would otherwise dominate the cost of scoring a single customer)."""
    return pd.CategoricalDtype(list(names), ordered=ordered)


def _nullable(values: np.ndarray, present: np.ndarray) -> pd.arrays.IntegerArray:
    """Small integer scores, missing where ``present`` is False."""
    return pd.arrays.IntegerArray(np.where(present, values, 0).astype(np.int8), ~present)


def check_saved_format(state: dict[str, Any], fmt: str, version: int) -> None:
    """Raise a ClienteleError unless ``state`` is a saved segment model of format ``fmt`` and ``version``."""
    if not isinstance(state, dict) or state.get("format") != fmt or state.get("version") != version:
        raise ClienteleError(f"not a saved {fmt.rsplit('.', 1)[-1]} of version {version}")

