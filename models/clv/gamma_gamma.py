"""Gamma-Gamma model of spend per purchase (Fader & Hardie 2013, after Colombo & Jiang 1999), fitted by MLE.

A customer's transaction values are ``Gamma(p, nu)`` around their own mean ``p / nu``, with
``nu ~ Gamma(q, gamma)`` across customers; spend is assumed independent of the purchase process. It is fitted on
customers with at least one repeat purchase, from their number of repeat purchases ``x`` and the mean value
``m_x`` of those purchases (``frequency`` and ``monetary_value`` of :func:`features.clv_summary.clv_summary`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from features.exceptions import ClienteleError, DataError
from models.clv.base import LikelihoodModel
from models.clv.bgnbd import _LOG_BOUND, _multistart, _wrap

logger = logging.getLogger(__name__)

PARAM_NAMES = ("p", "q", "gamma")
# (p, q, gamma) with gamma in units of the median spend (spend is rescaled before fitting): q > 1 keeps the
# population mean spend p * gamma / (q - 1) finite at the start.
_STARTS = ((1.0, 2.0, 1.0), (6.0, 4.0, 3.0), (0.5, 1.5, 0.5), (2.0, 10.0, 10.0))
_FORMAT = "clientele.clv.GammaGammaModel"
_FORMAT_VERSION = 1


class GammaGammaModel(LikelihoodModel):
    """Gamma-Gamma spend model, fitted by maximum likelihood.

    Parameters
    ----------
    penalizer
        L2 penalty on ``p``, ``q`` and ``gamma`` (the latter measured in units of the median spend), added to
        the mean negative log-likelihood. 0 (the default) is the plain MLE and reproduces the published
        CDNOW fit.
    max_iter
        Iteration cap for each local optimisation (L-BFGS-B, then Nelder-Mead as a fallback).
    tol
        Convergence tolerance of the local optimisations.

    Attributes
    ----------
    params_ : dict[str, float]
        Fitted ``p``, ``q``, ``gamma``; also ``p_``, ``q_``, ``gamma_``.
    log_likelihood_ : float
        Log-likelihood of the repeat customers' mean spend at ``params_`` (without the penalty).
    n_customers_ : int
        Customers the model was fitted on (those with ``frequency > 0`` and ``monetary_value > 0``).
    converged_ : bool
        Whether the best local optimisation reported convergence.
    """

    FORMAT = _FORMAT
    FORMAT_VERSION = _FORMAT_VERSION
    PARAM_NAMES = PARAM_NAMES

    def fit(self, summary: pd.DataFrame) -> GammaGammaModel:
        """Fit the model by maximum likelihood on the customers with repeat purchases.

        Parameters
        ----------
        summary
            One row per customer with ``frequency`` (repeat purchases) and ``monetary_value`` (mean value of
            the repeat purchases). Customers with ``frequency == 0`` or ``monetary_value == 0`` carry no spend
            information and are skipped.

        Returns
        -------
        GammaGammaModel
            ``self``, fitted.

        Raises
        ------
        DataError
            A column is missing, holds negative or non-finite values, or no customer has a repeat purchase
            with a positive value.
        ClienteleError
            No starting point led to a finite optimum.
        ValueError
            A hyperparameter is out of range.
        """
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValueError(f"penalizer must be a finite number >= 0, got {self.penalizer!r}")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter!r}")
        x, m = _validate_summary(summary)
        used = (x > 0) & (m > 0)
        if not used.any():
            raise DataError("summary: no customer has a repeat purchase with monetary_value > 0; cannot fit spend")
        x, m = x[used], m[used]

        # Spend is rescaled to a median of 1 (gamma is a spend scale: gamma = gamma_scaled * scale), so that
        # starting points and bounds suit CDs at $15 and wholesale orders at thousands alike.
        scale = float(np.median(m))
        rows, weights = np.unique(np.column_stack([x, m / scale]), axis=0, return_counts=True)
        xs, ms = rows[:, 0], rows[:, 1]
        w = weights.astype(float) / weights.sum()
        penalizer = float(self.penalizer)

        def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(log_params)
            ll, grad = _log_likelihood_and_grad(params, xs, ms)
            value = -(w @ ll) + penalizer * np.sum(params**2)
            g = -(grad @ w) * params + penalizer * 2.0 * params**2
            if not np.isfinite(value) or not np.all(np.isfinite(g)):
                return np.inf, np.zeros_like(log_params)
            return float(value), g

        best = _multistart(objective, np.log(np.array(_STARTS)), int(self.max_iter), float(self.tol))
        if best is None:
            raise ClienteleError(
                f"Gamma-Gamma fit failed: no finite likelihood optimum from {len(_STARTS)} starting points "
                f"on {len(x)} repeat customers; check monetary_value or set a penalizer"
            )
        params = np.exp(best.x)
        params[2] *= scale
        if not np.all(np.isfinite(params)):
            raise ClienteleError(f"Gamma-Gamma fit failed: non-finite parameters {params.tolist()}")
        at_bound = [n for n, v in zip(PARAM_NAMES, best.x) if abs(v) >= _LOG_BOUND - 1e-6]
        if at_bound:
            logger.warning("Gamma-Gamma: parameter(s) %s ran to the bound; consider a penalizer",
                           ", ".join(at_bound))
        if not best.success:
            logger.warning("Gamma-Gamma: optimiser did not certify convergence (%s); keeping the best optimum",
                           best.message)
        if params[1] <= 1.0:
            # q <= 1: the population spend distribution has no finite mean (very heavy tail, e.g. a few
            # wholesale accounts); customers without repeats then have no finite expected spend.
            logger.warning("Gamma-Gamma: q = %.3g <= 1, population mean spend is infinite; consider a penalizer",
                           params[1])

        self.params_ = dict(zip(PARAM_NAMES, (float(v) for v in params)))
        self.log_likelihood_ = float(np.sum(_log_likelihood_and_grad(params, x, m)[0]))
        self.n_customers_ = int(len(x))
        self.converged_ = bool(best.success)
        return self

    @property
    def p_(self) -> float:
        return self._params()["p"]

    @property
    def q_(self) -> float:
        return self._params()["q"]

    @property
    def gamma_(self) -> float:
        return self._params()["gamma"]

    def mean_spend(self) -> float:
        """Population mean spend per purchase, ``p * gamma / (q - 1)`` (``inf`` when ``q <= 1``)."""
        p = self._params()
        return p["p"] * p["gamma"] / (p["q"] - 1.0) if p["q"] > 1.0 else float("inf")

    def expected_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray | pd.Series:
        """Expected value of a customer's future purchases given their repeat purchases (FH 2013, eq. 5).

        ``(gamma + m_x x) p / (p x + q - 1)``: a weighted mean of the population mean ``p gamma / (q - 1)`` and the
        customer's own ``m_x``, leaning on ``m_x`` the more repeats they made. Customers with ``frequency == 0``
        get the population mean.

        Parameters
        ----------
        frequency, monetary_value
            Repeat purchases and mean value of the repeat purchases (scalars or array-likes that broadcast; a
            pandas Series' index is kept).

        Returns
        -------
        numpy.ndarray or pandas.Series
            Expected spend per purchase.
        """
        par = self._params()
        p, q, gamma = par["p"], par["q"], par["gamma"]
        index = next((v.index for v in (frequency, monetary_value) if isinstance(v, pd.Series)), None)
        x, m = np.broadcast_arrays(np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float))
        if not (np.all(x >= 0) and np.all(m >= 0)):
            raise ValueError("frequency and monetary_value must be finite and >= 0")
        m = np.where(x > 0, m, 0.0)  # m_x means nothing without repeats
        denom = p * x + q - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(denom > 0, (gamma + m * x) * p / denom, np.inf)
        return _wrap(value, index, "expected_spend")


def _log_likelihood_and_grad(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log density of the mean repeat spend ``m_x`` (FH 2013, eq. 3) and its gradient (3 x n).

    ``lnG(px+q) - lnG(px) - lnG(q) + q ln gamma + (px-1) ln m + px ln x - (px+q) ln(gamma + m x)``; the special
    functions are evaluated once per distinct ``x``.
    """
    p, q, gamma = params
    ux, inv = np.unique(x, return_inverse=True)
    pux = p * ux
    lg = (gammaln(pux + q) - gammaln(pux))[inv]
    psi_pxq_u = digamma(pux + q)
    dp_u = (ux * (psi_pxq_u - digamma(pux)))[inv]
    psi_pxq = psi_pxq_u[inv]
    px = p * x
    log_m, log_x = np.log(m), np.log(x)
    log_gmx = np.log(gamma + m * x)
    ll = lg - gammaln(q) + q * np.log(gamma) + (px - 1.0) * log_m + px * log_x - (px + q) * log_gmx
    d_p = dp_u + x * (log_m + log_x - log_gmx)
    d_q = psi_pxq - digamma(q) + np.log(gamma) - log_gmx
    d_gamma = q / gamma - (px + q) / (gamma + m * x)
    return ll, np.vstack([d_p, d_q, d_gamma])


def _validate_summary(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(summary, pd.DataFrame):
        raise DataError(f"summary must be a pandas DataFrame, got {type(summary).__name__}")
    for col in ("frequency", "monetary_value"):
        if col not in summary.columns:
            raise DataError(f"summary: column '{col}' is missing (build it with features.clv_summary)")
    if len(summary) == 0:
        raise DataError("summary is empty: no customer has a purchase before the cutoff")
    arrays = []
    for col in ("frequency", "monetary_value"):
        values = pd.to_numeric(summary[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"summary: column '{col}' has {summary[col].iloc[i]} for customer {summary.index[i]!r}; "
                "need a finite value >= 0"
            )
        arrays.append(values)
    return arrays[0], arrays[1]
