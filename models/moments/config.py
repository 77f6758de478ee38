"""Settings of moment detection: section ``moments`` of configs/segments.yaml."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_MONTH_DAY = re.compile(r"\d\d-\d\d")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedOccasion(_Section):
    """A date people buy gifts for: the same day every year (``month_day``) or a list of dates (lunar ones)."""

    month_day: str | None = None
    dates: tuple[str, ...] = ()

    @field_validator("month_day")
    @classmethod
    def _month_day(cls, value: str | None) -> str | None:
        if value is not None and not _MONTH_DAY.fullmatch(value):
            raise ValueError(f"month_day must be MM-DD, not {value!r}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "NamedOccasion":
        if (self.month_day is None) == (not self.dates):
            raise ValueError("give either month_day or dates")
        return self


class OccasionConfig(_Section):
    """Occasions learned from recurring purchase dates.

    A customer's purchase days that fall in the same calendar window (``window_days`` either side) in at least
    ``min_years`` different years make an occasion; its confidence is one minus the chance that the customer's
    own purchase rate puts a purchase in that window in that many years by coincidence (a binomial tail, times
    the number of windows tried). Movable occasions (``dates``) are tested on the days before each year's date.
    """

    window_days: int = Field(7, ge=1, le=30)
    min_years: int = Field(2, ge=2)
    min_confidence: float = Field(0.8, gt=0, lt=1)
    lead_days: int = Field(21, ge=0, le=60)  # gifts are bought in the days before the occasion
    max_per_customer: int = Field(2, ge=1)
    named: dict[str, NamedOccasion] = Field(default_factory=lambda: {
        "valentines": NamedOccasion(month_day="02-14"),
        "day_520": NamedOccasion(month_day="05-20"),
        "qixi": NamedOccasion(dates=("2019-08-07", "2020-08-25", "2021-08-14", "2022-08-04", "2023-08-22",
                                     "2024-08-10", "2025-08-29", "2026-08-19", "2027-08-08", "2028-08-26",
                                     "2029-08-16", "2030-08-05")),
        "christmas": NamedOccasion(month_day="12-25"),
    })


class ReplenishmentConfig(_Section):
    """Refills due, from the repeat-purchase timing the recommender learns (models/recommenders/signals.py)."""

    horizon_days: int = Field(90, ge=1)  # a refill due further ahead than this is not a moment yet
    lapsed_cycles: float = Field(3.0, gt=0)  # not bought for this many usual gaps: they moved on


class TierConfig(_Section):
    """Tier upgrades: members whose 12-month spend is within reach of the next tier.

    ``thresholds`` are the programme's published spend thresholds, lowest first ({silver: 1000, gold: 5000});
    empty: the suggested membership tiers learned at training (section ``membership``).
    """

    thresholds: dict[str, float] = Field(default_factory=dict)
    max_gap_orders: float = Field(1.5, gt=0)  # within this many of the customer's usual orders

    @field_validator("thresholds")
    @classmethod
    def _ascending(cls, value: dict[str, float]) -> dict[str, float]:
        spend = list(value.values())
        if any(b <= a for a, b in zip(spend, spend[1:])) or any(s <= 0 for s in spend):
            raise ValueError("thresholds must be positive and ascending, lowest tier first")
        return value


class MomentsConfig(_Section):
    """All moment settings (section ``moments`` of configs/segments.yaml)."""

    horizon_days: int = Field(365, ge=1, le=730)  # moments from the cutoff up to this many days ahead
    suggestions: int = Field(3, ge=0, le=20)  # products suggested per moment
    occasion: OccasionConfig = OccasionConfig()
    replenishment: ReplenishmentConfig = ReplenishmentConfig()
    tier_upgrade: TierConfig = TierConfig()
