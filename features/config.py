"""Typed feature configuration, parsed from configs/features.yaml (or any YAML with the same sections)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from features.configfile import ConfigModel as _Strict


class CustomerFeatureConfig(_Strict):
    """Windows of the point-in-time customer features."""

    windows_days: tuple[int, ...] = (30, 90, 180, 365)
    event_windows_days: tuple[int, ...] = (30, 90)
    complaint_windows_days: tuple[int, ...] = (90, 365)
    discounted_below: float = Field(0.98, gt=0, le=1)

    @field_validator("windows_days", "event_windows_days", "complaint_windows_days")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(d <= 0 for d in v):
            raise ValueError("windows must be positive numbers of days")
        return tuple(sorted(set(v)))


class InteractionConfig(_Strict):
    """How purchases and events become one customer x product strength."""

    weights: dict[str, float] = Field(default_factory=lambda: {
        "purchase": 1.0, "cart": 0.5, "wishlist": 0.4, "try_on": 0.4, "view": 0.1})
    quantity_damping: Literal["log", "sqrt", "none"] = "log"
    half_life_days: float | None = Field(180.0, gt=0)
    subtract_returns: bool = True


class BacktestConfig(_Strict):
    """Rolling cutoffs for training frames."""

    cutoffs: int = Field(4, ge=1)
    step_days: int = Field(30, ge=1)


class FeatureConfig(_Strict):
    """All feature settings (configs/features.yaml)."""

    DEFAULT_FILE = "features.yaml"

    customer: CustomerFeatureConfig = CustomerFeatureConfig()
    interactions: InteractionConfig = InteractionConfig()
    backtest: BacktestConfig = BacktestConfig()
