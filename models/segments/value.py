"""Value tiers from CLV, value at risk (churn probability x CLV) and a suggested membership tier.

Tiers are named in configs/segments.yaml with the share of the training population each should hold, lowest
first (value tiers: low 50 %, medium 30 %, high 20 %). Their thresholds are learned at fit with the same
tie-safe value cuts as the RFM scores (:func:`models.segments.rfm.quantile_cuts`): a customer reaches a tier
when the customers strictly below them make up at least the shares of all tiers beneath it, so identical values
always get the same tier, the row order never matters, and the tier is monotone in the value. A tie straddling a
threshold stays in the lower tier, so upper tiers hold at most their share.

The suggested membership tier works the same way on 365-day spend and on 365-day orders (configurable
columns): the thresholds are those a membership programme would publish ("gold: spend above 5,000 or more than
6 orders a year"). With ``qualify: any`` meeting either threshold earns the tier (the customer who buys one
expensive ring a year still reaches the top); with ``all`` both are needed.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.columns import Columns as C
from features.exceptions import ClienteleError, DataError
from models.segments.rfm import category_dtype, check_saved_format, column_values, cuts_beaten, quantile_cuts

VALUE_TIER, MEMBERSHIP_TIER, VALUE_AT_RISK = "value_tier", "membership_tier", "value_at_risk"
_VALUE_FORMAT = "clientele.segments.ValueTiers"
_MEMBERSHIP_FORMAT = "clientele.segments.MembershipTiers"
_FORMAT_VERSION = 1
_SHARE_SUM_TOLERANCE = 1e-6
# Cumulative shares are rounded so that 0.55 + 0.25 is 0.8, not 0.8000000000000002.
_SHARE_DECIMALS = 12


def _validate_shares(shares: dict[str, float]) -> dict[str, float]:
    if len(shares) < 2:
        raise ValueError("give at least two tiers")
    if any(not name or not name.strip() for name in shares):
        raise ValueError("tier names must be non-empty")
    if any(not (0 < s < 1) for s in shares.values()):
        raise ValueError("every tier's share must be between 0 and 1")
    if abs(sum(shares.values()) - 1) > _SHARE_SUM_TOLERANCE:
        raise ValueError(f"tier shares must sum to 1, not {sum(shares.values()):g}")
    return shares


def _cumulative_shares(shares: dict[str, float]) -> np.ndarray:
    """Share of the population below each tier above the lowest."""
    return np.round(np.cumsum(list(shares.values()))[:-1], _SHARE_DECIMALS)


class _TierConfig(BaseModel):
    """Tier names with the share of the population each should hold, lowest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shares: dict[str, float]

    @field_validator("shares")
    @classmethod
    def _valid_shares(cls, shares: dict[str, float]) -> dict[str, float]:
        return _validate_shares(shares)


class ValueTierConfig(_TierConfig):
    """Value tiers by CLV (section ``value_tiers`` of configs/segments.yaml)."""

    shares: dict[str, float] = Field(default_factory=lambda: {"low": 0.5, "medium": 0.3, "high": 0.2})


class MembershipConfig(_TierConfig):
    """Suggested membership tier (section ``membership`` of configs/segments.yaml)."""

    spend_column: str = "spend_365d"
    frequency_column: str = "orders_365d"
    qualify: Literal["any", "all"] = "any"
    shares: dict[str, float] = Field(default_factory=lambda: {
        "basic": 0.55, "silver": 0.25, "gold": 0.15, "platinum": 0.05})


class ValueTiers:
    """High / medium / low value tier from CLV thresholds learned on a training population.

    Parameters
    ----------
    config
        Tier names and shares, lowest first; defaults to :class:`ValueTierConfig` ().

    Attributes
    ----------
    cuts_ : list[float]
        CLV thresholds, one per tier above the lowest: a customer whose CLV is above the ``k``-th reaches
        tier ``k + 1``.
    n_customers_ : int
        Customers with a CLV the cuts were learned from.
    """

    def __init__(self, config: ValueTierConfig | None = None) -> None:
        self.config = config

    @property
    def settings(self) -> ValueTierConfig:
        """The configuration in force (the default when none was given)."""
        return self.config if self.config is not None else ValueTierConfig()

    def fit(self, clv: np.ndarray | pd.Series) -> ValueTiers:
        """Learn the CLV thresholds.

        Parameters
        ----------
        clv
            CLV of the training customers (e.g. ``LifetimeValueModel.predict(summary)["clv"]``); missing values
            are left out.

        Returns
        -------
        ValueTiers
            ``self``, fitted.

        Raises
        ------
        DataError
            No finite CLV.
        """
        values = _float_values(clv, "clv")
        try:
            self.cuts_ = quantile_cuts(values, _cumulative_shares(self.settings.shares)).tolist()
        except DataError:
            raise DataError("segments.value_tiers: no customer with a CLV to learn the value tiers from") from None
        self.n_customers_ = int(np.isfinite(values).sum())
        return self

    def predict(self, clv: np.ndarray | pd.Series) -> pd.Series:
        """Value tier of each CLV.

        Returns
        -------
        pandas.Series
            ``value_tier``, an ordered categorical (lowest tier first), missing where the CLV is; indexed like
            ``clv`` when it is a Series.
        """
        if not hasattr(self, "cuts_"):
            raise ClienteleError("ValueTiers is not fitted: call fit(clv) or ValueTiers.from_dict(state)")
        values = _float_values(clv, "clv")
        codes = np.where(np.isfinite(values), cuts_beaten(values, np.asarray(self.cuts_)), -1)
        index = clv.index if isinstance(clv, pd.Series) else None
        return _tier_series(codes, self.settings.shares, VALUE_TIER, index)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings and learned thresholds."""
        if not hasattr(self, "cuts_"):
            raise ClienteleError("ValueTiers is not fitted: nothing to save")
        return {"format": _VALUE_FORMAT, "version": _FORMAT_VERSION, "config": self.settings.model_dump(mode="json"),
                "cuts": [float(c) for c in self.cuts_], "n_customers": self.n_customers_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ValueTiers:
        """Rebuild tiers written by :meth:`to_dict`."""
        check_saved_format(state, _VALUE_FORMAT, _FORMAT_VERSION)
        tiers = cls(ValueTierConfig.model_validate(state["config"]))
        tiers.cuts_ = [float(c) for c in state["cuts"]]
        tiers.n_customers_ = int(state["n_customers"])
        return tiers

    def __repr__(self) -> str:
        return f"ValueTiers(tiers={list(self.settings.shares)})"


class MembershipTiers:
    """Suggested membership tier (e.g. basic / silver / gold / platinum) from spend and order thresholds.

    Parameters
    ----------
    config
        Columns, qualification rule and tier shares, lowest first; defaults to :class:`MembershipConfig` ().

    Attributes
    ----------
    spend_cuts_, frequency_cuts_ : list[float]
        Thresholds per tier above the lowest, in the units of the spend and frequency columns: the ``k``-th
        tier above the lowest needs a value above the ``k``-th threshold.
    n_customers_ : int
        Customers the thresholds were learned from.
    """

    def __init__(self, config: MembershipConfig | None = None) -> None:
        self.config = config

    @property
    def settings(self) -> MembershipConfig:
        """The configuration in force (the default when none was given)."""
        return self.config if self.config is not None else MembershipConfig()

    def fit(self, frame: pd.DataFrame) -> MembershipTiers:
        """Learn the spend and frequency thresholds from the customers in ``frame``.

        Parameters
        ----------
        frame
            Customer feature frame with the configured spend and frequency columns.

        Returns
        -------
        MembershipTiers
            ``self``, fitted.

        Raises
        ------
        DataError
            A configured column is missing or has no value.
        """
        spend, orders = self._values(frame)
        known = np.isfinite(spend) & np.isfinite(orders)
        if not known.any():
            raise DataError("segments.membership: no customer with spend and orders to learn the tiers from")
        shares = _cumulative_shares(self.settings.shares)
        self.spend_cuts_ = quantile_cuts(spend[known], shares).tolist()
        self.frequency_cuts_ = quantile_cuts(orders[known], shares).tolist()
        self.n_customers_ = int(known.sum())
        return self

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """Suggested membership tier of every row of ``frame``.

        Returns
        -------
        pandas.Series
            ``membership_tier``, an ordered categorical (lowest tier first), indexed like ``frame``; missing
            where spend or orders are.
        """
        if not hasattr(self, "spend_cuts_"):
            raise ClienteleError("MembershipTiers is not fitted: call fit(frame) or MembershipTiers.from_dict(state)")
        spend, orders = self._values(frame)
        by_spend = cuts_beaten(spend, np.asarray(self.spend_cuts_))
        by_orders = cuts_beaten(orders, np.asarray(self.frequency_cuts_))
        level = np.maximum(by_spend, by_orders) if self.settings.qualify == "any" else np.minimum(by_spend, by_orders)
        codes = np.where(np.isfinite(spend) & np.isfinite(orders), level, -1)
        return _tier_series(codes, self.settings.shares, MEMBERSHIP_TIER, frame.index)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings and learned thresholds."""
        if not hasattr(self, "spend_cuts_"):
            raise ClienteleError("MembershipTiers is not fitted: nothing to save")
        return {"format": _MEMBERSHIP_FORMAT, "version": _FORMAT_VERSION,
                "config": self.settings.model_dump(mode="json"),
                "spend_cuts": [float(c) for c in self.spend_cuts_],
                "frequency_cuts": [float(c) for c in self.frequency_cuts_], "n_customers": self.n_customers_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> MembershipTiers:
        """Rebuild tiers written by :meth:`to_dict`."""
        check_saved_format(state, _MEMBERSHIP_FORMAT, _FORMAT_VERSION)
        tiers = cls(MembershipConfig.model_validate(state["config"]))
        tiers.spend_cuts_ = [float(c) for c in state["spend_cuts"]]
        tiers.frequency_cuts_ = [float(c) for c in state["frequency_cuts"]]
        tiers.n_customers_ = int(state["n_customers"])
        return tiers

    def _values(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.settings
        return (column_values(frame, cfg.spend_column, "membership"),
                column_values(frame, cfg.frequency_column, "membership"))

    def __repr__(self) -> str:
        return f"MembershipTiers(tiers={list(self.settings.shares)}, qualify={self.settings.qualify!r})"


def value_at_risk(churn_probability: np.ndarray | pd.Series, clv: np.ndarray | pd.Series) -> np.ndarray | pd.Series:
    """Expected value lost to churn: churn probability x CLV, customer by customer.

    Parameters
    ----------
    churn_probability
        Calibrated churn probabilities in [0, 1] (NaN where unknown).
    clv
        Customer lifetime values, in the same order (NaN where unknown).

    Returns
    -------
    numpy.ndarray or pandas.Series
        The products (NaN where either input is); a Series named ``value_at_risk`` with the inputs' index when
        either input is a Series.

    Raises
    ------
    DataError
        The inputs differ in length or index, or a probability lies outside [0, 1].
    """
    p = _float_values(churn_probability, "churn_probability")
    v = _float_values(clv, "clv")
    if p.shape != v.shape:
        raise DataError(f"value_at_risk: {p.size} churn probabilities but {v.size} CLV values")
    outside = ~np.isnan(p) & ((p < 0) | (p > 1))
    if outside.any():
        raise DataError(f"value_at_risk: churn_probability at position {int(np.argmax(outside))} is "
                        f"{p[outside][0]!r}, outside [0, 1]")
    series = [x for x in (churn_probability, clv) if isinstance(x, pd.Series)]
    if len(series) == 2 and not series[0].index.equals(series[1].index):
        raise DataError("value_at_risk: churn_probability and clv are Series with different indexes; align them")
    result = p * v
    return pd.Series(result, index=series[0].index, name=VALUE_AT_RISK) if series else result


def aligned_values(values: np.ndarray | pd.Series | None, frame: pd.DataFrame, name: str) -> np.ndarray:
    """One float per row of ``frame`` (NaN where unknown) from per-customer values.

    A Series indexed by ``customer_id`` (as :class:`models.clv.LifetimeValueModel` returns) is matched on the
    frame's ``customer_id`` column, customers it lacks getting NaN; another Series must share the frame's index
    (a frame column); an array must have one value per row, in order; ``None`` gives all NaN.

    Raises
    ------
    DataError
        The values cannot be matched to the rows.
    """
    if values is None:
        return np.full(len(frame), np.nan)
    if isinstance(values, pd.DataFrame):
        raise DataError(f"segments: pass {name} as one column (a Series or an array), not a DataFrame")
    if isinstance(values, pd.Series) and values.index.name == C.customer_id:
        if C.customer_id not in frame.columns:
            raise DataError(f"segments: column '{C.customer_id}' is missing from the feature frame")
        ids = values.index.astype("str")
        if ids.has_duplicates:
            raise DataError(f"segments: {name} has customer_id {ids[ids.duplicated()][0]!r} more than once")
        by_id = pd.Series(_float_values(values, name), index=ids)
        return by_id.reindex(frame[C.customer_id].astype("str")).to_numpy(dtype=np.float64)
    if isinstance(values, pd.Series) and not values.index.equals(frame.index):
        raise DataError(f"segments: {name} is a Series neither indexed by customer_id nor by the frame's index")
    array = _float_values(values, name)
    if array.shape != (len(frame),):
        raise DataError(f"segments: {name} has {array.size} values for {len(frame)} customers")
    return array


def _float_values(values: np.ndarray | pd.Series, name: str) -> np.ndarray:
    try:
        if isinstance(values, pd.Series):
            return pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"segments: {name} must be numbers ({exc})") from None


def _tier_series(codes: np.ndarray, shares: dict[str, float], name: str, index: pd.Index | None) -> pd.Series:
    return pd.Series(pd.Categorical.from_codes(codes, dtype=category_dtype(tuple(shares), ordered=True)),
                     index=index, name=name)
