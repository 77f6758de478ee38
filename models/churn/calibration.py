"""Probability calibration of raw classifier scores, fitted on a later, held-out cutoff."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize

from features.exceptions import ClienteleError

# Isotonic regression needs enough rows per step to be smoother than the noise; below this Platt is safer.
ISOTONIC_MIN_ROWS = 1000


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Calibrator:
    """Maps raw log-odds to calibrated probabilities.

    Parameters
    ----------
    method
        ``temperature`` (sigmoid(a * score): corrects over- or under-confidence but keeps the model's own base
        rate), ``isotonic`` (monotone step function), ``sigmoid`` (Platt: sigmoid(a * score + b)), ``auto``
        (isotonic from :data:`ISOTONIC_MIN_ROWS` rows, else sigmoid) or ``none`` (plain sigmoid of the raw score).

    Notes
    -----
    The held-out cutoff is one season. Isotonic and Platt also learn its churn rate, which moves with the
    calendar (a summer window churns more than a Christmas one), and carry it into every later score;
    temperature scaling learns only how sharp the scores should be, which transfers across seasons.
    """

    def __init__(self, method: str = "auto"):
        if method not in ("auto", "temperature", "isotonic", "sigmoid", "none"):
            raise ClienteleError(f"calibration: unknown method {method!r} "
                                 f"(temperature, isotonic, sigmoid, auto, none)")
        self.method = method
        self.fitted_method_ = "none"
        self.a_, self.b_ = 1.0, 0.0
        self.x_: list[float] = []
        self.y_: list[float] = []

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> "Calibrator":
        """Fit on raw scores and 0/1 labels of rows the classifier was not trained on."""
        scores, labels = np.asarray(scores, float), np.asarray(labels, float)
        method = self.method
        if method == "auto":
            method = "isotonic" if len(scores) >= ISOTONIC_MIN_ROWS else "sigmoid"
        if method == "none" or len(np.unique(labels)) < 2:
            self.fitted_method_ = "none"
            return self
        if method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(scores, labels)
            self.x_, self.y_ = iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()
        else:
            def loss(p: np.ndarray) -> float:
                z = p[0] * scores + (p[1] if len(p) > 1 else 0.0)
                return float(np.mean(np.logaddexp(0, z) - labels * z))

            start = np.array([1.0, 0.0]) if method == "sigmoid" else np.array([1.0])
            fitted = minimize(loss, start, method="BFGS").x
            self.a_ = float(fitted[0])
            self.b_ = float(fitted[1]) if method == "sigmoid" else 0.0
        self.fitted_method_ = method
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        scores = np.asarray(scores, float)
        if self.fitted_method_ == "isotonic":
            return np.interp(scores, self.x_, self.y_)
        return _sigmoid(self.a_ * scores + self.b_)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "fitted_method": self.fitted_method_, "a": self.a_, "b": self.b_,
                "x": self.x_, "y": self.y_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibrator":
        cal = cls(data["method"])
        cal.fitted_method_, cal.a_, cal.b_ = data["fitted_method"], data["a"], data["b"]
        cal.x_, cal.y_ = list(data["x"]), list(data["y"])
        return cal
