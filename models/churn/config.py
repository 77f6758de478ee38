"""Typed churn settings parsed from configs/churn.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.exceptions import ConfigError
from features.presets import CONFIG_DIR


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChurnModelConfig(_Strict):
    n_estimators: int = Field(400, ge=1)
    learning_rate: float = Field(0.02, gt=0)
    num_leaves: int = Field(7, ge=2)
    min_child_samples: int = Field(100, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    calibration: Literal["temperature", "auto", "isotonic", "sigmoid", "none"] = "temperature"
    random_state: int = 0


class ChurnTrainingConfig(_Strict):
    step_days: int = Field(14, ge=1)
    max_cutoffs: int = Field(16, ge=1)
    min_history_days: int = Field(30, ge=0)
    calibrate_on_latest: bool = True


class RiskBands(_Strict):
    """Churn probability from which a customer is in the medium / high risk band."""

    medium: float = Field(0.3, gt=0, lt=1)
    high: float = Field(0.6, gt=0, lt=1)


class ReasonConfig(_Strict):
    top: int = Field(3, ge=1)


class ClvConfig(_Strict):
    time_unit_days: float = Field(7.0, gt=0)
    horizon_months: int = Field(12, ge=1)
    annual_discount_rate: float = Field(0.10, ge=0)
    penalizer: float = Field(0.001, ge=0)


class ChurnConfig(_Strict):
    model: ChurnModelConfig = ChurnModelConfig()
    training: ChurnTrainingConfig = ChurnTrainingConfig()
    reasons: ReasonConfig = ReasonConfig()
    risk_bands: RiskBands = RiskBands()
    clv: ClvConfig = ClvConfig()
    rfm_features: tuple[str, ...] = ("recency_days", "frequency", "monetary_total")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "churn config") -> "ChurnConfig":
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(f"{where}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None

    @classmethod
    def load(cls, path: str | Path | None = None) -> "ChurnConfig":
        path = Path(path) if path else CONFIG_DIR / "churn.yaml"
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
        return cls.from_dict(data, str(path))
