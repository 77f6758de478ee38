"""Typed churn settings: every default lives here; configs/churn.yaml (or a project's) overrides what it names.

:class:`ScoringSettings` is what a fitted churn or CLV model carries beside it, so that scoring rebuilds the
features and words the reasons as training did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from features.config import FeatureConfig
from features.configfile import ConfigModel as _Strict
from features.exceptions import ClienteleError


class ChurnModelConfig(_Strict):
    """LightGBM settings of :class:`models.churn.lightgbm.ChurnModel`, whose own defaults are these."""

    n_estimators: int = Field(400, ge=1)
    learning_rate: float = Field(0.02, gt=0)
    num_leaves: int = Field(7, ge=2)
    min_child_samples: int = Field(100, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    # Fitted on the latest training cutoff, held out from the booster. Temperature rescales the log-odds only,
    # so the held-out season's churn rate is not carried into later scores.
    calibration: Literal["temperature", "auto", "isotonic", "sigmoid", "none"] = "temperature"
    random_state: int = 0
    # One thread is steadier on a shared 2-core box (OpenMP threads spin while they wait); raise it on a
    # machine of its own.
    n_jobs: int = Field(1, ge=1)


class ChurnTrainingConfig(_Strict):
    """Training cutoffs step back by ``step_days`` from the latest one whose label window ends before the
    scoring cutoff, while ``min_history_days`` of history precede them; the latest is held out to calibrate.
    Customers x cutoffs beyond ``max_rows`` train on a random share of the customers (the same at every cutoff),
    so the training frames stop growing with the customer count."""

    step_days: int = Field(14, ge=1)
    max_cutoffs: int = Field(16, ge=1)
    min_history_days: int = Field(30, ge=0)
    calibrate_on_latest: bool = True
    # Boosting and the frames grow with the rows: at 100k synthetic beauty customers, half a million rows
    # (31,250 customers x 16 cutoffs) gave holdout ROC-AUC 0.9295 against 0.9299 from a million, in half the time.
    max_rows: int = Field(500_000, ge=1)


class RiskBands(_Strict):
    """Churn probability from which a customer is in the medium / high risk band."""

    medium: float = Field(0.3, gt=0, lt=1)
    high: float = Field(0.6, gt=0, lt=1)


class ReasonConfig(_Strict):
    """Plain-language reasons given per customer."""

    top: int = Field(3, ge=1)


class ClvConfig(_Strict):
    """Time unit of the BG/NBD fit (days), CLV horizon and discounting, and the fit's penalizer."""

    time_unit_days: float = Field(7.0, gt=0)
    horizon_months: int = Field(12, ge=1)
    annual_discount_rate: float = Field(0.10, ge=0)
    penalizer: float = Field(0.001, ge=0)


class ChurnConfig(_Strict):
    """All churn settings; configs/churn.yaml overrides what it names."""

    DEFAULT_FILE = "churn.yaml"

    model: ChurnModelConfig = ChurnModelConfig()
    training: ChurnTrainingConfig = ChurnTrainingConfig()
    reasons: ReasonConfig = ReasonConfig()
    risk_bands: RiskBands = RiskBands()
    clv: ClvConfig = ClvConfig()
    # Peers evaluated side by side: LightGBM on these plain RFM features.
    rfm_features: tuple[str, ...] = ("recency_days", "frequency", "monetary_total")


class ScoringSettings(_Strict):
    """The settings a churn or CLV model was trained with, saved beside it (:attr:`FILE`).

    Scoring reads these from the model's artefact, never from today's YAML: the same feature windows and
    interaction settings, the same churn horizon, the same number of reasons and risk-band thresholds.
    """

    FILE: ClassVar[str] = "scoring.json"

    features: FeatureConfig
    horizon_days: int = Field(ge=1)
    reasons: ReasonConfig
    risk_bands: RiskBands
    clv: ClvConfig

    @classmethod
    def of(cls, config: ChurnConfig, features: FeatureConfig, horizon_days: int) -> "ScoringSettings":
        """The scoring settings of a model trained with ``config``, ``features`` and ``horizon_days``."""
        return cls(features=features, horizon_days=horizon_days, reasons=config.reasons,
                   risk_bands=config.risk_bands, clv=config.clv)

    def save(self, folder: str | Path) -> Path:
        """Write ``<folder>/scoring.json``."""
        path = Path(folder) / self.FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ScoringSettings":
        """Read a file written by :meth:`save` (``path`` is the file or its folder).

        Raises
        ------
        ClienteleError
            The file is missing or unreadable (a model logged before its settings travelled with it).
        """
        path = Path(path)
        path = path / cls.FILE if path.is_dir() else path
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ClienteleError(f"{path}: cannot read the model's scoring settings ({str(exc).splitlines()[0]}); "
                                 f"retrain it with `clientele train`") from None
        return cls.from_dict(data, str(path))
