"""Meta-learners of uplift on LightGBM: S, T, class transformation, X and DR.

Each learner estimates tau(x) = E[Y | x, treated] - E[Y | x, control] from a randomised campaign: ``fit(X,
treatment, outcome)`` then ``predict(X)``. A binary outcome (bought / visited) is modelled by classifiers, so the
uplift is a change in probability; a continuous one (spend) by regressors, so it is a change in money. Features
are a frame of numbers and categories encoded by :class:`FeatureEncoder` (categories fixed at fit time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.tabular import prediction_threads
from models.uplift.config import BoosterSettings


def is_binary(outcome: np.ndarray) -> bool:
    """Whether an outcome takes only the values 0 and 1 (then it is modelled as a probability)."""
    return bool(np.isin(np.unique(outcome), (0.0, 1.0)).all())


@dataclass
class FeatureEncoder:
    """Numbers stay numbers; text becomes LightGBM categories with the codes seen at fit time (unseen -> missing)."""

    columns: list[str] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame) -> "FeatureEncoder":
        self.columns = list(frame.columns)
        self.categories = {}
        for col in self.columns:
            if not (pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col])):
                self.categories[col] = sorted(frame[col].dropna().astype("str").unique().tolist())
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for col in self.columns:
            values = frame[col]
            if col in self.categories:
                out[col] = _categorical(values, self.categories[col])
            elif values.dtype == np.float64:  # already what to_numeric would give
                out[col] = values
            else:
                out[col] = pd.to_numeric(values, errors="coerce").astype("float64")
        return pd.DataFrame(out, index=frame.index)


def _categorical(values: pd.Series, categories: list[str]) -> pd.Categorical:
    """``values`` as text coded by ``categories`` (missing or unseen: no code). A text column is coded by its
    distinct values (an uplift scorer encodes every customer's row several times), anything else row by row."""
    if not isinstance(values.dtype, pd.StringDtype):
        return pd.Categorical(values.astype("str").where(values.notna()), categories=categories)
    codes, distinct = pd.factorize(values)
    position = pd.Index(categories, dtype=object).get_indexer(np.asarray(distinct, dtype=object))
    return pd.Categorical.from_codes(np.where(codes >= 0, position[codes], -1), categories=categories)


class UpliftLearner(Protocol):
    """What every uplift learner offers."""

    def fit(self, X: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray) -> "UpliftLearner": ...

    def predict(self, X: pd.DataFrame) -> np.ndarray: ...

    def contributions(self, X: pd.DataFrame) -> np.ndarray: ...


def _booster(settings: BoosterSettings, classify: bool, seed: int) -> Any:
    params = settings.model_dump()
    params.update(random_state=seed, verbose=-1, subsample_freq=1 if settings.subsample < 1 else 0)
    return lgb.LGBMClassifier(**params) if classify else lgb.LGBMRegressor(**params)


def fit_response(X: pd.DataFrame, y: np.ndarray, settings: BoosterSettings, classify: bool, seed: int) -> Any:
    """A LightGBM classifier (``classify``: P(y = 1)) or regressor of ``y`` on ``X``; a constant when a binary
    ``y`` has one class only (a small group in which nobody responded)."""
    model = _booster(settings, classify, seed)
    if classify and np.unique(y).size < 2:
        return _Constant(float(y[0]) if len(y) else 0.0)
    model.fit(X, y)
    return model


def response(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Predictions of a model from :func:`fit_response`: probabilities for a classifier, values otherwise (on
    every core: each row is scored on its own, so the values are those of one thread)."""
    if isinstance(model, _Constant):
        return np.full(len(X), model.value)
    if isinstance(model, lgb.LGBMClassifier):
        return model.predict_proba(X, num_threads=prediction_threads())[:, 1]
    return model.predict(X, num_threads=prediction_threads())


@dataclass
class _Constant:
    value: float


def contributions(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Per-feature contributions to :func:`response` (LightGBM's ``pred_contrib``: one column per feature, the
    bias last), on the scale of the response: exact for a regressor; for a classifier the log-odds contributions
    times the slope p (1 - p) of the logistic at the row's probability (first order, the bias taking the rest so
    that a row sums to p), so they are changes in probability like the uplift they explain."""
    if isinstance(model, _Constant):
        out = np.zeros((len(X), X.shape[1] + 1))
        out[:, -1] = model.value
        return out
    raw = np.asarray(model.predict(X, pred_contrib=True, num_threads=prediction_threads()), dtype=float)
    if isinstance(model, lgb.LGBMClassifier):
        p = response(model, X)
        raw = raw * (p * (1 - p))[:, None]
        raw[:, -1] = p - raw[:, :-1].sum(axis=1)  # the bias takes what the first order misses: rows sum to p
    return raw


class _Base:
    """Common state: settings, seed, encoder and whether the outcome is binary."""

    name = "base"

    def __init__(self, settings: BoosterSettings, random_state: int = 0):
        self.settings = settings
        self.random_state = random_state

    def _prepare(self, X: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray
                 ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        self.encoder_ = FeatureEncoder().fit(X)
        t = np.asarray(treatment, dtype=float)
        y = np.asarray(outcome, dtype=float)
        self.binary_ = is_binary(y)
        return self.encoder_.transform(X), t, y


class SLearner(_Base):
    """One model of the outcome on the features and the treatment flag; uplift = f(x, 1) - f(x, 0)."""

    name = "s_learner"

    def fit(self, X: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray) -> "SLearner":
        Z, t, y = self._prepare(X, treatment, outcome)
        self.model_ = fit_response(Z.assign(_treatment=t), y, self.settings, self.binary_, self.random_state)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        Z = self.encoder_.transform(X)
        return response(self.model_, Z.assign(_treatment=1.0)) - response(self.model_, Z.assign(_treatment=0.0))

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions to the uplift (bias last; the treatment flag's own share goes to the bias)."""
        Z = self.encoder_.transform(X)
        diff = contributions(self.model_, Z.assign(_treatment=1.0)) - contributions(self.model_,
                                                                                  Z.assign(_treatment=0.0))
        diff[:, -1] += diff[:, -2]
        return np.delete(diff, -2, axis=1)


class TLearner(_Base):
    """One outcome model per group; uplift = f_treated(x) - f_control(x)."""

    name = "t_learner"

    def fit(self, X: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray) -> "TLearner":
        Z, t, y = self._prepare(X, treatment, outcome)
        self.treated_ = fit_response(Z[t == 1], y[t == 1], self.settings, self.binary_, self.random_state)
        self.control_ = fit_response(Z[t == 0], y[t == 0], self.settings, self.binary_, self.random_state)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        Z = self.encoder_.transform(X)
        return response(self.treated_, Z) - response(self.control_, Z)

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions to the uplift, bias last."""
        Z = self.encoder_.transform(X)
        return contributions(self.treated_, Z) - contributions(self.control_, Z)


class ClassTransformation(_Base):
    """Jaskowski & Jaroszewicz (2012): a binary outcome becomes Z = 1 for treated responders and control
    non-responders; with equal groups uplift = 2 P(Z=1) - 1 (scikit-uplift's ``ClassTransformation``). A continuous
    outcome is regressed as the transformed outcome Y (T - p) / (p (1 - p)), whose expectation is the uplift
    (Athey & Imbens 2016) for any treated share p."""

    name = "class_transformation"

    def fit(self, X: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray) -> "ClassTransformation":
        Z, t, y = self._prepare(X, treatment, outcome)
        if self.binary_:
            target = (y * t + (1 - y) * (1 - t))
            self.model_ = fit_response(Z, target, self.settings, True, self.random_state)
        else:
            p = t.mean()
            self.model_ = fit_response(Z, y * (t - p) / (p * (1 - p)), self.settings, False, self.random_state)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        score = response(self.model_, self.encoder_.transform(X))
        return 2 * score - 1 if self.binary_ else score

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions to the uplift, bias last."""
        out = contributions(self.model_, self.encoder_.transform(X))
        if self.binary_:
            out = 2 * out
            out[:, -1] -= 1
        return out


def _cross_fitted(Z: pd.DataFrame, t: np.ndarray, y: np.ndarray, settings: BoosterSettings, binary: bool,
                  seed: int, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions of E[Y | x, treated] and E[Y | x, control] for every row (each row is predicted
    by models that never saw it, so the pseudo-outcomes built from them are not overfitted)."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, len(y))
    mu1, mu0 = np.empty(len(y)), np.empty(len(y))
    for k in range(folds):
        train, held = fold != k, fold == k
        for group, out in ((1, mu1), (0, mu0)):
            rows = train & (t == group)
            model = fit_response(Z[rows], y[rows], settings, binary, seed + k)
            out[held] = response(model, Z[held])
    return mu1, mu0


class XLearner(_Base):
    """Kunzel et al. (2019): imputed effects D1 = Y - mu0(x) on the treated and D0 = mu1(x) - Y on the control,
    one effect model per group, blended by the treated share g: tau = g tau0 + (1 - g) tau1 (the assignment is
    randomised, so the propensity is the constant share treated)."""

    name = "x_learner"

    def __init__(self, settings: BoosterSettings, effect_settings: BoosterSettings | None = None,
                 random_state: int = 0):
        super().__init__(settings, random_state)
        self.effect_settings = effect_settings or settings

    def fit(self, X: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray) -> "XLearner":
        Z, t, y = self._prepare(X, treatment, outcome)
        seed = self.random_state
        control = fit_response(Z[t == 0], y[t == 0], self.settings, self.binary_, seed)
        treated = fit_response(Z[t == 1], y[t == 1], self.settings, self.binary_, seed)
        d1 = y[t == 1] - response(control, Z[t == 1])
        d0 = response(treated, Z[t == 0]) - y[t == 0]
        self.tau1_ = fit_response(Z[t == 1], d1, self.effect_settings, False, seed)
        self.tau0_ = fit_response(Z[t == 0], d0, self.effect_settings, False, seed)
        self.share_ = float(t.mean())
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        Z = self.encoder_.transform(X)
        return self.share_ * response(self.tau0_, Z) + (1 - self.share_) * response(self.tau1_, Z)

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions to the uplift, bias last (exact: the effect models are regressors)."""
        Z = self.encoder_.transform(X)
        return self.share_ * contributions(self.tau0_, Z) + (1 - self.share_) * contributions(self.tau1_, Z)


class DRLearner(_Base):
    """Kennedy (2023): the doubly robust pseudo-outcome mu1 - mu0 + T (Y - mu1) / e - (1 - T) (Y - mu0) / (1 - e),
    built from cross-fitted outcome models and the known treated share e, regressed on the features."""

    name = "dr_learner"

    def __init__(self, settings: BoosterSettings, effect_settings: BoosterSettings | None = None,
                 random_state: int = 0, folds: int = 3):
        super().__init__(settings, random_state)
        self.effect_settings = effect_settings or settings
        self.folds = folds

    def fit(self, X: pd.DataFrame, treatment: np.ndarray, outcome: np.ndarray) -> "DRLearner":
        Z, t, y = self._prepare(X, treatment, outcome)
        mu1, mu0 = _cross_fitted(Z, t, y, self.settings, self.binary_, self.random_state, self.folds)
        e = float(t.mean())
        pseudo = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
        self.effect_ = fit_response(Z, pseudo, self.effect_settings, False, self.random_state)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return response(self.effect_, self.encoder_.transform(X))

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions to the uplift, bias last (exact: the effect model is a regressor)."""
        return contributions(self.effect_, self.encoder_.transform(X))


LEARNERS: dict[str, type[_Base]] = {c.name: c for c in (SLearner, TLearner, ClassTransformation, XLearner,
                                                         DRLearner)}
