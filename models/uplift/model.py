"""The project's uplift model: an X-learner on boosted stumps, and a hurdle for spend-like outcomes.

Campaign effects are small beside the noise of who buys anyway: a few points of visit rate, a fraction of a point
of conversion. Deep trees fit that noise, so every model here is boosted stumps with strong shrinkage (an
additive, one-feature-per-tree fit), and the meta-learner is the X-learner (Kunzel et al. 2019), which spends its
effect models on imputed individual effects rather than on the raw outcome, and so stays usable when the outcome
is rare (conversion under 1%), where the class transformation drowns in its own noise.

Measured, not assumed: choosing the learner per dataset by cross-validated Qini inside the training data was tried
and lost to this fixed choice on every Hillstrom outcome -- with effects this small the fold-to-fold noise of the
Qini is larger than the differences between learners, so the choice follows the noise (benchmarks/README_uplift.md).

A continuous outcome that is mostly zero (spend: most customers buy nothing in the response window) is modelled as
a hurdle: uplift = change in P(buy) x expected basket of a buyer. The basket model is fitted on the buyers of both
groups together (too few to split by group).

Small campaigns. With fewer than about twice ``min_child_samples`` customers in a group the stumps find no split:
the model learns one number, the campaigns' average effect, for everyone. It says so (``personal_`` is False,
:meth:`UpliftModel.basis` names it) instead of letting callers rank customers by a constant.

Reasons are the features' contributions to the uplift (:meth:`UpliftModel.reasons`), in the churn model's families
and words (:mod:`models.churn.reasons`). For a binary outcome the model can also give the probability of the
outcome without contact, calibrated on cross-fitted predictions (:class:`models.churn.calibration.Calibrator`), and
with contact: that probability plus the uplift (:meth:`UpliftModel.predict_arms`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.i18n import message
from features.exceptions import DataError
from models.churn.calibration import Calibrator
from models.churn.reasons import top_reasons
from models.uplift.config import UpliftModelConfig
from models.uplift.learners import LEARNERS, FeatureEncoder, fit_response, is_binary, response

PERSONAL = "customer"  # basis of an uplift that differs between customers
AVERAGE = "campaign_average"  # ... of one learned for everyone alike (too few customers to tell them apart)


def strata(treatment: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Treatment x (outcome > 0): the strata of a split that keeps both groups' response rates in every part."""
    return np.asarray(treatment, dtype=int) * 2 + (np.asarray(outcome, dtype=float) > 0)


class UpliftModel:
    """Uplift of one outcome, learned from a randomised campaign (see the module docstring).

    Parameters
    ----------
    config
        Learner and booster settings (``configs/uplift.yaml``).
    random_state
        Seed of every booster.
    """

    name = "clientele"

    def __init__(self, config: UpliftModelConfig | None = None, random_state: int = 0, probabilities: bool = False):
        self.config = config or UpliftModelConfig()
        self.random_state = random_state
        self.probabilities = probabilities  # also fit the calibrated outcome probability without contact

    def fit(self, X: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray) -> "UpliftModel":
        """Fit on one campaign's customers: features ``X``, ``treatment`` (1 treated, 0 control), ``outcome``.

        Raises
        ------
        DataError
            A group is empty, or the outcome never happens in one of them.
        """
        t = np.asarray(treatment, dtype=float)
        y = np.asarray(outcome, dtype=float)
        if len(t) == 0 or t.min() == t.max():
            raise DataError("uplift: the training rows need treated and control customers")
        self.binary_ = is_binary(y)
        self.hurdle_ = (not self.binary_) and float((y == 0).mean()) >= self.config.hurdle_zero_share
        target = (y > 0).astype(float) if self.hurdle_ else y
        if (target[t == 1] != 0).sum() == 0 or (target[t == 0] != 0).sum() == 0:
            raise DataError("uplift: the outcome never happens in the treated or in the control group")
        self.learner_ = LEARNERS[self.config.learner](self.config.effect, random_state=self.random_state)
        self.learner_.fit(X, t, target)
        self.groups_ = {"treated": int((t == 1).sum()), "control": int((t == 0).sum())}
        learned = self.learner_.predict(X)
        self.personal_ = bool(np.ptp(learned) > 1e-9) if len(learned) else False
        self.average_ = float(np.mean(learned)) if len(learned) else 0.0
        self.arms_ = self._fit_arms(X, t, target) if self.probabilities and self.binary_ else None
        if self.hurdle_:
            self.basket_encoder_ = FeatureEncoder().fit(X)
            buyers = y > 0
            self.basket_ = fit_response(self.basket_encoder_.transform(X[buyers]), y[buyers], self.config.basket,
                                         False, self.random_state)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted uplift per row: a change in probability (binary outcome) or in the outcome's unit."""
        uplift = self.learner_.predict(X)
        if self.hurdle_:
            uplift = uplift * np.maximum(response(self.basket_, self.basket_encoder_.transform(X)), 0.0)
        return uplift

    def basis(self) -> str:
        """``customer`` when the uplift differs between customers, ``campaign_average`` when the campaigns were
        too small for the model to tell customers apart (everyone gets their average effect)."""
        return PERSONAL if self.personal_ else AVERAGE

    def note(self) -> str | None:
        """Why the uplift ranks no one, None when it does."""
        if self.personal_:
            return None
        return message("uplift.flat", treated=int(self.groups_["treated"]), control=int(self.groups_["control"]),
                       count=int(self.config.effect.min_child_samples), effect=float(self.average_))

    def reasons(self, X: pd.DataFrame, uplift: np.ndarray | None = None) -> list[list[dict[str, Any]]]:
        """Per row, the families of features that move its uplift most in the direction of its sign (raising a
        positive uplift, lowering a negative one), strongest first: ``{"code", "text", "contribution",
        "features"}`` as the churn model's reasons, ``contribution`` a signed change in probability (or in the
        outcome's unit). A model that ranks no one gives none. ``uplift``: :meth:`predict` of ``X`` when the
        caller has it (not predicted again)."""
        if not self.personal_ or self.config.reasons_top == 0:
            return [[] for _ in range(len(X))]
        contrib = self.learner_.contributions(X)
        # a hurdle's uplift is the learner's times a basket that may be 0: the sign is the learner's own
        learned = uplift if uplift is not None and not self.hurdle_ else self.learner_.predict(X)
        sign = np.where(learned < 0, -1.0, 1.0)
        found = top_reasons(contrib * sign[:, None], list(self.learner_.encoder_.columns), X,
                            self.config.reasons_top, self.config.reasons_min_contribution)
        for row, reasons in zip(sign, found):
            for reason in reasons:
                reason["contribution"] = round(float(row * reason["contribution"]), 4)
        return found

    def _fit_arms(self, X: pd.DataFrame, t: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The control group's outcome model and its calibrator, fitted on out-of-fold predictions (each control
        customer scored by a model that never saw them, so the calibrator sees honest scores)."""
        encoder = FeatureEncoder().fit(X)
        Z, yc = encoder.transform(X[t == 0]), y[t == 0]
        folds = np.random.default_rng(self.random_state).integers(0, self.config.calibration_folds, len(yc))
        held = np.zeros(len(yc))
        for k in range(self.config.calibration_folds):
            model = fit_response(Z[folds != k], yc[folds != k], self.config.effect, True, self.random_state + k)
            held[folds == k] = _log_odds(model, Z[folds == k])
        model = fit_response(Z, yc, self.config.effect, True, self.random_state)
        return {"encoder": encoder, "model": model, "calibrator": Calibrator("auto").fit(held, yc)}

    def predict_arms(self, X: pd.DataFrame, uplift: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities of the outcome without contact and with it (without + uplift, within [0, 1]);
        ``uplift``: :meth:`predict` of ``X`` when the caller has it (not predicted again).

        Raises
        ------
        DataError
            The model was fitted without ``probabilities`` or on a continuous outcome.
        """
        if self.arms_ is None:
            raise DataError("uplift: this model has no outcome probabilities (fitted without probabilities=True, "
                            "or on a continuous outcome)")
        arms = self.arms_
        without = arms["calibrator"].transform(_log_odds(arms["model"], arms["encoder"].transform(X)))
        return without, np.clip(without + (self.predict(X) if uplift is None else uplift), 0.0, 1.0)


def _log_odds(model: Any, Z: pd.DataFrame) -> np.ndarray:
    """Raw log-odds of a classifier from :func:`fit_response` (a constant's own log-odds)."""
    p = np.clip(response(model, Z), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
