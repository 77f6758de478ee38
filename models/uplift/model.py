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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.exceptions import DataError
from models.uplift.config import UpliftModelConfig
from models.uplift.learners import LEARNERS, FeatureEncoder, fit_response, is_binary, response


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

    def __init__(self, config: UpliftModelConfig | None = None, random_state: int = 0):
        self.config = config or UpliftModelConfig()
        self.random_state = random_state

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
