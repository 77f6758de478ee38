"""Typed uplift settings: every default lives here; configs/uplift.yaml overrides what it names."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from features.configfile import ConfigModel


class BoosterSettings(ConfigModel):
    """LightGBM settings of one outcome or effect model."""

    n_estimators: int = Field(100, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(20, ge=1)
    subsample: float = Field(1.0, gt=0, le=1)
    colsample_bytree: float = Field(1.0, gt=0, le=1)
    reg_lambda: float = Field(0.0, ge=0)
    n_jobs: int = Field(1, ge=1)



# Effect and outcome models of the project's learner: stumps with strong shrinkage (200 x 0.02).
STUMPS = BoosterSettings(n_estimators=200, learning_rate=0.02, num_leaves=2, min_child_samples=200)
BASKET = BoosterSettings(n_estimators=100, learning_rate=0.03, num_leaves=4, min_child_samples=50)


class UpliftModelConfig(ConfigModel):
    """The project's uplift model (models/uplift/model.py)."""

    learner: Literal["x_learner", "dr_learner", "t_learner", "s_learner", "class_transformation"] = "x_learner"
    effect: BoosterSettings = STUMPS
    # Expected basket of a buyer, for a mostly-zero continuous outcome (hurdle model).
    basket: BoosterSettings = BASKET
    # A continuous outcome with at least this share of zeros is modelled as P(buy) x basket.
    hurdle_zero_share: float = Field(0.5, ge=0, le=1)
    # Reasons: at most this many families of features per customer, each moving the uplift by at least this much
    # (a change in probability: 0.002 is 0.2 points).
    reasons_top: int = Field(3, ge=0)
    reasons_min_contribution: float = Field(0.002, ge=0)
    # Folds of the cross-fitted calibration of the purchase probability without contact.
    calibration_folds: int = Field(3, ge=2)


class UpliftEvaluationConfig(ConfigModel):
    """The evaluation protocol: a split stratified on treatment x outcome per seed, metrics averaged over seeds."""

    test_share: float = Field(0.3, gt=0, lt=1)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    top_share: float = Field(0.3, gt=0, lt=1)  # uplift@30: treated minus control response in the top 30%


class CampaignConfig(ConfigModel):
    """Campaign outcomes, planning and reports (training/campaigns.py)."""

    # Outcomes count purchases within this many days of sent_at (a campaign row's response_window_days wins).
    response_window_days: int = Field(14, ge=1)
    # A customer is contacted at most max_contacts times in any contact_window_days (planning skips the rest).
    max_contacts: int = Field(2, ge=1)
    contact_window_days: int = Field(30, ge=1)
    # Level of the report's confidence intervals (Welch: normal for large groups, Student t for small ones).
    confidence: float = Field(0.95, gt=0.5, lt=1)


class UpliftConfig(ConfigModel):
    """All uplift settings; configs/uplift.yaml overrides what it names."""

    DEFAULT_FILE = "uplift.yaml"

    model: UpliftModelConfig = UpliftModelConfig()
    # The peers' LightGBM (S-, T-learner, class transformation): one setting for all, LightGBM's usual defaults.
    peers: BoosterSettings = BoosterSettings()
    evaluation: UpliftEvaluationConfig = UpliftEvaluationConfig()
    campaigns: CampaignConfig = CampaignConfig()
