"""Churn risk: LightGBM on point-in-time features, calibrated on a later cutoff, with reason codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.exceptions import ClienteleError, DataError
from models.churn.calibration import Calibrator
from models.churn.config import ChurnModelConfig, ReasonConfig
from models.churn.reasons import top_reasons
from models.tabular import NON_FEATURES, FrameEncoder, prediction_threads

LABEL = "churned"
# The defaults are ChurnModelConfig's, the one place they live (configs/churn.yaml overrides them for training).
_DEFAULTS = ChurnModelConfig()
_REASONS = ReasonConfig()


class ChurnModel:
    """Gradient-boosted churn classifier with calibrated probabilities and per-customer reasons.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree, reg_lambda
        LightGBM hyperparameters; defaults from :class:`models.churn.config.ChurnModelConfig`.
    calibration
        ``temperature``, ``isotonic``, ``sigmoid`` (Platt), ``auto`` (isotonic with enough calibration rows,
        else sigmoid) or ``none`` (see :class:`models.churn.calibration.Calibrator`).
    features
        Restrict the model to these feature columns (e.g. plain RFM); all feature columns by default.
    random_state
        Seed for LightGBM's bagging and column sampling.
    n_jobs
        LightGBM threads.
    """

    def __init__(self, n_estimators: int = _DEFAULTS.n_estimators, learning_rate: float = _DEFAULTS.learning_rate,
                 num_leaves: int = _DEFAULTS.num_leaves, min_child_samples: int = _DEFAULTS.min_child_samples,
                 subsample: float = _DEFAULTS.subsample, colsample_bytree: float = _DEFAULTS.colsample_bytree,
                 reg_lambda: float = _DEFAULTS.reg_lambda,
                 calibration: Literal["temperature", "auto", "isotonic", "sigmoid", "none"] = _DEFAULTS.calibration,
                 features: list[str] | None = None, random_state: int = _DEFAULTS.random_state,
                 n_jobs: int = _DEFAULTS.n_jobs):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.calibration = calibration
        self.features = features
        self.random_state = random_state
        self.n_jobs = n_jobs

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters, as logged to MLflow."""
        return {k: getattr(self, k) for k in ("n_estimators", "learning_rate", "num_leaves", "min_child_samples",
                                              "subsample", "colsample_bytree", "reg_lambda", "calibration",
                                              "features", "random_state")}

    def _lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "binary", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples, "bagging_fraction": self.subsample, "bagging_freq": 1,
            "feature_fraction": self.colsample_bytree, "lambda_l2": self.reg_lambda, "seed": self.random_state,
            "num_threads": self.n_jobs, "deterministic": True, "force_row_wise": True, "verbose": -1,
        }

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.features is None:
            return frame
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise DataError(f"churn model: feature column '{missing[0]}' is missing from the frame")
        return frame[[c for c in frame.columns if c in self.features or c in NON_FEATURES]]

    def fit(self, train: pd.DataFrame, calibration: pd.DataFrame | None = None) -> "ChurnModel":
        """Fit on labelled feature frames.

        Parameters
        ----------
        train
            Feature frames of earlier cutoffs with the ``churned`` label.
        calibration
            A later cutoff's labelled frame the booster never saw, for the probability calibration.

        Returns
        -------
        ChurnModel
            ``self``, with ``encoder_``, ``booster_`` and ``calibrator_``.

        Raises
        ------
        DataError
            No label column, or a single class in the training labels.
        """
        for name, frame in (("train", train), ("calibration", calibration)):
            if frame is not None and LABEL not in frame.columns:
                raise DataError(f"churn model: the {name} frame has no '{LABEL}' column (the data must reach past "
                                f"cutoff + horizon)")
        y = train[LABEL].to_numpy(dtype=np.float64)
        if len(np.unique(y)) < 2:
            raise DataError(f"churn model: the training labels hold one class only ({int(y[0]) if len(y) else '-'})"
                            f"; use more cutoffs or a different horizon")
        self.encoder_ = FrameEncoder().fit(self._frame(train))
        X = self.encoder_.transform(train)
        data = lgb.Dataset(X, y, categorical_feature=self.encoder_.categorical or "auto", free_raw_data=True)
        self.booster_ = lgb.train(self._lgb_params(), data, num_boost_round=self.n_estimators)
        self.feature_names_ = list(self.encoder_.columns)
        self.calibrator_ = Calibrator(self.calibration)
        if calibration is not None and self.calibration != "none":
            self.calibrator_.fit(self.raw_score(calibration), calibration[LABEL].to_numpy(dtype=np.float64))
        self.base_rate_ = float(y.mean())
        return self

    @classmethod
    def from_parts(cls, params: dict[str, Any], encoder: FrameEncoder, booster: lgb.Booster, calibrator: Calibrator,
                   base_rate: float) -> "ChurnModel":
        """A fitted model assembled from parts trained elsewhere (e.g. by LightGBM's Dask API)."""
        model = cls(**params)
        model.encoder_, model.booster_, model.calibrator_ = encoder, booster, calibrator
        model.feature_names_ = list(encoder.columns)
        model.base_rate_ = float(base_rate)
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise ClienteleError("churn model is not fitted yet")

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of churn."""
        self._check_fitted()
        return self.booster_.predict(self.encoder_.transform(frame), raw_score=True, num_threads=prediction_threads())

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of churn for each row of ``frame``."""
        return self.calibrator_.transform(self.raw_score(frame))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions to the raw score (the last column is the bias); rows sum to the raw score."""
        self._check_fitted()
        return np.asarray(self.booster_.predict(self.encoder_.transform(frame), pred_contrib=True,
                                                num_threads=prediction_threads()))

    def reasons(self, frame: pd.DataFrame, top: int = _REASONS.top) -> list[list[dict[str, Any]]]:
        """The ``top`` plain-language reasons raising each customer's risk (see :mod:`models.churn.reasons`)."""
        return top_reasons(self.contributions(frame), self.feature_names_, frame, top)

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        self._check_fitted()
        gain = self.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_).sort_values(ascending=False)

    def save(self, path: str | Path) -> Path:
        """Write the model to a folder: LightGBM text model, encoder, calibrator and parameters as JSON."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(path / "booster.txt"))
        (path / "churn.json").write_text(json.dumps({
            "params": self.get_params(), "encoder": self.encoder_.to_dict(), "calibrator": self.calibrator_.to_dict(),
            "base_rate": self.base_rate_,
        }, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ChurnModel":
        """Read a model written by :meth:`save`."""
        path = Path(path)
        try:
            meta = json.loads((path / "churn.json").read_text())
            booster = lgb.Booster(model_file=str(path / "booster.txt"))
        except (OSError, ValueError, lgb.basic.LightGBMError) as exc:
            raise ClienteleError(f"{path}: cannot load churn model ({str(exc).splitlines()[0]})") from None
        return cls.from_parts(meta["params"], FrameEncoder.from_dict(meta["encoder"]), booster,
                              Calibrator.from_dict(meta["calibrator"]), meta["base_rate"])


def customer_scores_frame(model: ChurnModel, frame: pd.DataFrame, top: int = _REASONS.top) -> pd.DataFrame:
    """``customer_id``, ``churn_probability`` and ``churn_reasons`` (list of texts) for a feature frame."""
    reasons = model.reasons(frame, top)
    return pd.DataFrame({C.customer_id: frame[C.customer_id].to_numpy(),
                         "churn_probability": model.predict_proba(frame),
                         "churn_reasons": [[r["text"] for r in rs] for rs in reasons],
                         "churn_reason_codes": [[r["code"] for r in rs] for rs in reasons]})
