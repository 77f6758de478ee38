"""The training job's configuration (configs/train.yaml), typed and flattened for MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from features.configfile import ConfigModel as _Strict
from features.configfile import read_yaml
from features.presets import config_file


class SyntheticConfig(_Strict):
    preset: str = "beauty"
    customers: int = Field(20_000, ge=100)
    seed: int = 7
    out: Path = Path("data/demo")
    linked_share: float = Field(0.0, ge=0.0, le=1.0)
    """Share of the app buyers with an app id of their own, linked through an identities table
    (:func:`features.synthetic.with_channel_ids`)."""


class EvaluationConfig(_Strict):
    recommender_test_days: int = Field(30, ge=1)
    # The holdout scores a random sample of this many test customers at most: its cost stops growing with the
    # customer base (the metrics' `customers` says how many were scored, `test_customers` how many there were).
    recommender_test_customers: int | None = Field(25_000, ge=1)
    compare_peers: bool = False
    # Every holdout (recommender, churn, CLV, uplift) sees at most this many customers: past it, a sample drawn
    # by a keyed hash of each customer's pseudonym (`training.data.holdout_sample`), stable from run to run; the
    # holdout's models are then fitted on the sampled customers' data. None: every customer, however many.
    max_customers: int | None = Field(100_000, ge=1)
    sample_seed: int = Field(0, ge=0)


class DaskConfig(_Strict):
    """How `train --engine dask` rides out a lost worker during LightGBM's distributed fit."""

    fit_attempts: int = Field(3, ge=1)
    lightgbm_time_out_minutes: int = Field(10, ge=1)


class PromotionRule(_Strict):
    metric: str
    higher_is_better: bool = True
    min_delta: float = 0.0


class PromotionConfig(_Strict):
    recommender: PromotionRule = PromotionRule(metric="ndcg@10")
    churn: PromotionRule = PromotionRule(metric="roc_auc")
    clv: PromotionRule = PromotionRule(metric="purchases_mae", higher_is_better=False)
    uplift: PromotionRule = PromotionRule(metric="qini_auc")


class MlflowConfig(_Strict):
    experiment: str = "clientele"


class TrainConfig(_Strict):
    """Everything `clientele train` needs besides the environment's settings."""

    preset: str = "beauty"
    seed: int = 0
    data: str | None = None  # a path or a URL (text: a URL must keep its "//")
    mapping: str | None = None
    synthetic: SyntheticConfig = SyntheticConfig()
    # Each model family's YAML; None: the project's configs/<family>.yaml, else the packaged default.
    features: Path | None = None
    churn: Path | None = None
    recommender: Path | None = None
    segments: Path | None = None
    uplift: Path | None = None
    engine: Literal["pandas", "dask"] = "pandas"
    scheduler: str | None = None
    dask: DaskConfig = DaskConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    promotion: PromotionConfig = PromotionConfig()
    mlflow: MlflowConfig = MlflowConfig()

    @field_validator("data", "mapping", mode="before")
    @classmethod
    def _location_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> "TrainConfig":
        """Read ``path`` (default configs/train.yaml of the project, else the packaged one) and apply non-None
        ``overrides`` (e.g. data, mapping); the model families' files it leaves unnamed are looked up the same
        way."""
        path = Path(path) if path else config_file("train.yaml")
        data = read_yaml(path)
        data.update({k: v for k, v in overrides.items() if v is not None})
        config = cls.from_dict(data, str(path))
        return config.model_copy(update={family: config_file(f"{family}.yaml") for family in MODEL_FAMILIES
                                         if getattr(config, family) is None})


# The model families whose settings live in their own YAML, named in train.yaml or looked up by name.
MODEL_FAMILIES = ("features", "churn", "recommender", "segments")


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested config as flat ``a.b.c: value`` strings (MLflow params)."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, (list, tuple)):
        return {prefix: ",".join(map(str, value))}
    return {prefix: str(value)}
