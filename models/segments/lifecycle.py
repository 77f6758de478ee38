"""Lifecycle stage as of the cutoff: prospect, new, active, reactivated, at risk or lapsed.

Every stage reads point-in-time features of :mod:`features.customer` (nothing is recomputed) against windows
measured in days or as a share of the preset's churn horizon ``H`` (``churn.horizon_days``; section
``lifecycle`` of configs/segments.yaml). The first rule that holds decides, in this order:

1. ``prospect``: no purchase before the cutoff (``recency_days`` missing).
2. ``lapsed``: the last purchase is older than ``lapsed_after`` (default ``H``): ``recency_days > lapsed_after``,
   the customer already counts as churned by the label's definition.
3. ``new``: the first purchase is recent: ``tenure_days < new_within`` (default ``H / 2``). New customers stay
   in their onboarding journey even when they are already overdue.
4. ``reactivated``: the customer came back after a break longer than the horizon and did so recently:
   ``gap_last_days > reactivated_gap`` (default ``H``; the gap between the last two purchase days) and
   ``recency_days <= reactivated_within`` (default ``H / 2``). Once that comeback purchase is older, the
   ordinary rules below apply; once they buy again, the gap is short and they are ``active``.
5. ``at_risk``: overdue. A customer with a usual gap (two purchase days or more) is at risk when
   ``overdue_ratio`` (recency over their median gap) exceeds ``overdue_ratio`` (default 1.5); a customer with a
   single purchase day when ``recency_days > one_time_at_risk_after`` (default ``H / 2``). Either way nobody is
   at risk with ``recency_days <= at_risk_not_before`` (default ``H / 4``): a customer who bought twice in two
   days is not "overdue" three days later.
6. ``active``: everyone else.

Comparisons are strict where written ``>`` / ``<``: a customer exactly ``H`` days out is not yet lapsed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.exceptions import ClienteleError, ConfigError
from models.segments.rfm import category_dtype, check_saved_format, column_values

LIFECYCLE_STAGE = "lifecycle_stage"
PROSPECT, NEW, ACTIVE, REACTIVATED, AT_RISK, LAPSED = "prospect", "new", "active", "reactivated", "at_risk", "lapsed"
# Categories of the output, from the start of a relationship to its end (not the order the rules are tried in).
STAGES = (PROSPECT, NEW, ACTIVE, REACTIVATED, AT_RISK, LAPSED)
RECENCY, TENURE, OVERDUE_RATIO, GAP_LAST = "recency_days", "tenure_days", "overdue_ratio", "gap_last_days"
WINDOWS = ("new_within", "lapsed_after", "reactivated_gap", "reactivated_within", "one_time_at_risk_after",
           "at_risk_not_before")
_FORMAT = "clientele.segments.LifecycleStager"
_FORMAT_VERSION = 1


class Window(BaseModel):
    """A length of time: exactly one of ``days`` or ``horizon_share`` (a share of the churn horizon)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: float | None = Field(None, gt=0)
    horizon_share: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> "Window":
        if (self.days is None) == (self.horizon_share is None):
            raise ValueError("give exactly one of 'days' or 'horizon_share'")
        return self

    def in_days(self, horizon_days: float | None) -> float:
        """The window in days for a churn horizon of ``horizon_days``."""
        if self.days is not None:
            return float(self.days)
        if horizon_days is None:
            raise ConfigError("segments.lifecycle: a window is a share of the churn horizon, but no "
                              "horizon_days was given (the preset's churn.horizon_days)")
        return float(self.horizon_share) * float(horizon_days)


class LifecycleConfig(BaseModel):
    """Lifecycle windows and the overdue threshold (section ``lifecycle`` of configs/segments.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    new_within: Window = Window(horizon_share=0.5)
    lapsed_after: Window = Window(horizon_share=1.0)
    reactivated_gap: Window = Window(horizon_share=1.0)
    reactivated_within: Window = Window(horizon_share=0.5)
    overdue_ratio: float = Field(1.5, gt=0)
    one_time_at_risk_after: Window = Window(horizon_share=0.5)
    at_risk_not_before: Window = Window(horizon_share=0.25)


class LifecycleStager:
    """Assigns each customer's lifecycle stage as of the cutoff of their feature row (rules: module docstring).

    Nothing is learned from data; :meth:`fit` turns the configured windows into days for the horizon.

    Parameters
    ----------
    config
        Windows and thresholds; defaults to :class:`LifecycleConfig` ().
    horizon_days
        The churn horizon ``H`` of the preset (``churn.horizon_days``); needed when a window is a
        ``horizon_share``.

    Attributes
    ----------
    windows_ : dict[str, float]
        Every window in days.
    """

    def __init__(self, config: LifecycleConfig | None = None, horizon_days: float | None = None) -> None:
        self.config = config
        self.horizon_days = horizon_days

    @property
    def settings(self) -> LifecycleConfig:
        """The configuration in force (the default when none was given)."""
        return self.config if self.config is not None else LifecycleConfig()

    def fit(self, frame: pd.DataFrame | None = None) -> LifecycleStager:
        """Resolve the windows in days (and check ``frame`` has the needed columns, when given).

        Raises
        ------
        ConfigError
            ``horizon_days`` is missing or not positive while a window needs it.
        DataError
            ``frame`` lacks a column.
        """
        if self.horizon_days is not None and not (np.isfinite(self.horizon_days) and self.horizon_days > 0):
            raise ConfigError(f"segments.lifecycle: horizon_days must be a positive number, got {self.horizon_days!r}")
        cfg = self.settings
        self.windows_ = {name: getattr(cfg, name).in_days(self.horizon_days) for name in WINDOWS}
        if frame is not None:
            self._columns(frame)
        return self

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """Lifecycle stage of every row of ``frame``.

        Parameters
        ----------
        frame
            Customer feature frame with ``recency_days``, ``tenure_days``, ``overdue_ratio``, ``gap_last_days``.

        Returns
        -------
        pandas.Series
            ``lifecycle_stage``, categorical over :data:`STAGES`, indexed like ``frame``.
        """
        if not hasattr(self, "windows_"):
            raise ClienteleError("LifecycleStager is not fitted: call fit() or LifecycleStager.from_dict(state)")
        w = self.windows_
        recency, tenure, overdue, gap_last = self._columns(frame)
        # NaN comparisons are False, so a missing gap (a single purchase day) never reads as a long break.
        one_time = np.isnan(overdue)
        overdue_now = np.where(one_time, recency > w["one_time_at_risk_after"], overdue > self.settings.overdue_ratio)
        rules = [  # first match wins: see the module docstring
            (np.isnan(recency), PROSPECT),
            (recency > w["lapsed_after"], LAPSED),
            (tenure < w["new_within"], NEW),
            ((gap_last > w["reactivated_gap"]) & (recency <= w["reactivated_within"]), REACTIVATED),
            (overdue_now & (recency > w["at_risk_not_before"]), AT_RISK),
        ]
        codes = np.select([cond for cond, _ in rules], [STAGES.index(stage) for _, stage in rules],
                          default=STAGES.index(ACTIVE))
        return pd.Series(pd.Categorical.from_codes(codes, dtype=category_dtype(STAGES)), index=frame.index,
                         name=LIFECYCLE_STAGE)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (saved with the model)."""
        return {"format": _FORMAT, "version": _FORMAT_VERSION, "config": self.settings.model_dump(mode="json"),
                "horizon_days": self.horizon_days}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LifecycleStager:
        """Rebuild a fitted stager written by :meth:`to_dict`."""
        check_saved_format(state, _FORMAT, _FORMAT_VERSION)
        return cls(LifecycleConfig.model_validate(state["config"]), state["horizon_days"]).fit()

    @staticmethod
    def _columns(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
        return tuple(column_values(frame, col, "lifecycle") for col in (RECENCY, TENURE, OVERDUE_RATIO, GAP_LAST))

    def __repr__(self) -> str:
        return f"LifecycleStager(horizon_days={self.horizon_days!r})"
