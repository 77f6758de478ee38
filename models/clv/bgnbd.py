"""BG/NBD purchase-and-dropout model (Fader, Hardie & Lee 2005) fitted by maximum likelihood with scipy.

Why scipy and not PyMC-Marketing: see the package docstring (``models/clv/__init__.py``).

The model: while alive, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; after each purchase
they drop out with probability ``p ~ Beta(a, b)``. It is fitted on the per-customer summary from
:func:`features.clv_summary.clv_summary` (``frequency`` = repeat purchases, ``recency``, ``T``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from features.exceptions import ClienteleError, DataError
from models.clv.base import LikelihoodModel

logger = logging.getLogger(__name__)

PARAM_NAMES = ("r", "alpha", "a", "b")
_SUMMARY_COLUMNS = ("frequency", "recency", "T")
# Starting points (r, alpha, a, b) with alpha in units of the largest T (times are rescaled before fitting).
# Spread over the shapes seen in retail: few/many buyers, quick/slow dropout.
_STARTS = (
    (1.0, 1.0, 1.0, 1.0),
    (0.25, 0.1, 0.8, 2.5),
    (2.0, 2.0, 0.5, 5.0),
    (0.5, 0.05, 2.0, 0.5),
)
_LOG_BOUND = 25.0  # |log(param)| cap: keeps a runaway direction (e.g. b -> inf, no dropout) finite.
_FORMAT = "clientele.clv.BetaGeoModel"
_FORMAT_VERSION = 1


class BetaGeoModel(LikelihoodModel):
    """BG/NBD model of purchase frequency and dropout, fitted by maximum likelihood.

    Parameters
    ----------
    penalizer
        L2 penalty on the parameters (``r``, ``alpha`` measured in units of the largest ``T``, ``a``, ``b``),
        added to the mean negative log-likelihood. 0 (the default) is the plain MLE and reproduces the
        published CDNOW fit; a small value (e.g. 0.001) keeps sparse or odd data away from extreme
        parameters.
    max_iter
        Iteration cap for each local optimisation (L-BFGS-B, then Nelder-Mead as a fallback).
    tol
        Convergence tolerance of the local optimisations (on the mean negative log-likelihood).

    Attributes
    ----------
    params_ : dict[str, float]
        Fitted ``r``, ``alpha``, ``a``, ``b``; also available as ``r_``, ``alpha_``, ``a_``, ``b_``.
    log_likelihood_ : float
        Log-likelihood of the training summary at ``params_`` (without the penalty).
    n_customers_ : int
        Customers the model was fitted on.
    converged_ : bool
        Whether the best local optimisation reported convergence (a finite best optimum that the optimiser
        did not certify is kept, with a warning logged).
    """

    FORMAT = _FORMAT
    FORMAT_VERSION = _FORMAT_VERSION
    PARAM_NAMES = PARAM_NAMES

    # ------------------------------------------------------------------ fitting

    def fit(self, summary: pd.DataFrame) -> BetaGeoModel:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        summary
            One row per customer with columns ``frequency`` (repeat purchases), ``recency`` and ``T`` (same
            time unit), as built by :func:`features.clv_summary.clv_summary`. Other columns are ignored.

        Returns
        -------
        BetaGeoModel
            ``self``, fitted.

        Raises
        ------
        DataError
            The summary is empty, lacks a column, or holds invalid values (negative, non-finite, fractional
            frequency, recency > T, recency > 0 with frequency 0), or no customer has a repeat purchase.
        ClienteleError
            No starting point led to a finite optimum.
        ValueError
            A hyperparameter is out of range.
        """
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValueError(f"penalizer must be a finite number >= 0, got {self.penalizer!r}")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter!r}")
        x, tx, T = _validate_summary(summary)

        # Rescale time so that the largest T is 1: the starting points and bounds then suit any time unit,
        # and alpha (a time scale) is the only parameter that moves (alpha = alpha_scaled * scale).
        scale = float(T.max())
        if not scale > 0:
            raise DataError("summary: every customer has T = 0; the cutoff must fall after the first purchases")
        # Many customers share (x, t_x, T) (day-resolution data): fit on the distinct rows with weights.
        rows, weights = np.unique(np.column_stack([x, tx / scale, T / scale]), axis=0, return_counts=True)
        xs, txs, Ts = np.unique(rows[:, 0], return_inverse=True), rows[:, 1], rows[:, 2]
        w = weights.astype(float) / weights.sum()
        penalizer = float(self.penalizer)

        def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            params = np.exp(log_params)
            ll, grad = _log_likelihood_and_grad(params, xs, txs, Ts)
            value = -(w @ ll) + penalizer * np.sum(params**2)
            # Gradient with respect to the log-parameters (chain rule: d/dlog p = p d/dp).
            g = -(grad @ w) * params + penalizer * 2.0 * params**2
            if not np.isfinite(value) or not np.all(np.isfinite(g)):
                return np.inf, np.zeros_like(log_params)
            return float(value), g

        best = _multistart(objective, np.log(np.array(_STARTS)), int(self.max_iter), float(self.tol))
        if best is None:
            raise ClienteleError(
                f"BG/NBD fit failed: no finite likelihood optimum from {len(_STARTS)} starting points "
                f"on {len(x)} customers; check the summary or set a penalizer"
            )
        params = np.exp(best.x)
        params[1] *= scale
        if not np.all(np.isfinite(params)):
            raise ClienteleError(f"BG/NBD fit failed: non-finite parameters {params.tolist()}")
        at_bound = [n for n, v in zip(PARAM_NAMES, best.x) if abs(v) >= _LOG_BOUND - 1e-6]
        if at_bound:
            logger.warning("BG/NBD: parameter(s) %s ran to the bound; consider a penalizer", ", ".join(at_bound))
        if not best.success:
            logger.warning("BG/NBD: optimiser did not certify convergence (%s); keeping the best optimum",
                           best.message)

        self.params_ = dict(zip(PARAM_NAMES, (float(v) for v in params)))
        self.log_likelihood_ = float(np.sum(_log_likelihood_and_grad(params, x, tx, T)[0]))
        self.n_customers_ = int(len(x))
        self.converged_ = bool(best.success)
        return self

    # ------------------------------------------------------------------ fitted parameters

    @property
    def r_(self) -> float:
        return self._params()["r"]

    @property
    def alpha_(self) -> float:
        return self._params()["alpha"]

    @property
    def a_(self) -> float:
        return self._params()["a"]

    @property
    def b_(self) -> float:
        return self._params()["b"]

    # ------------------------------------------------------------------ predictions

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray | pd.Series:
        """Probability that each customer is still alive at the end of their observation window.

        ``1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))`` for ``x > 0`` and exactly 1 for
        ``x = 0``: in the BG/NBD a customer can only drop out right after a purchase, so one who never
        repeated cannot have dropped out yet (Fader, Hardie & Lee 2005, eq. 11).

        Parameters
        ----------
        frequency, recency, T
            Repeat purchases, recency and age in the training time unit (scalars or array-likes that
            broadcast; a pandas Series' index is kept).

        Returns
        -------
        numpy.ndarray or pandas.Series
            Probabilities in [0, 1].
        """
        p = self._params()
        x, tx, TT, index = _broadcast(frequency, recency, T)
        return _wrap(_p_alive(p["r"], p["alpha"], p["a"], p["b"], x, tx, TT), index, "p_alive")

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray | pd.Series:
        """Expected number of purchases in the next ``t`` time units given each customer's history.

        The conditional expectation of Fader, Hardie & Lee (2005, eq. 10), evaluated after an Euler
        transformation of its Gauss hypergeometric term so that it stays finite for wholesale customers with
        hundreds of repeat purchases::

            (1 - z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) = (1 - z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z),
            z = t / (alpha + T + t)

        whose right side has bounded parameters and no huge power (the left side over- and underflows when
        ``x`` is large).

        Parameters
        ----------
        t
            Horizon length(s) in the training time unit, >= 0.
        frequency, recency, T
            Repeat purchases, recency and age in the training time unit (broadcast together with ``t``).

        Returns
        -------
        numpy.ndarray or pandas.Series
            Expected purchase counts, >= 0.
        """
        p = self._params()
        x, tx, TT, index = _broadcast(frequency, recency, T)
        t_arr = np.asarray(t, dtype=float)
        if np.any(t_arr < 0) or not np.all(np.isfinite(t_arr)):
            raise ValueError("t must be finite and >= 0")
        r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
        value = _expected_purchases(r, alpha, a, b, t_arr, x, tx, TT)
        return _wrap(value, index, "expected_purchases")

    def p_no_purchase(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray | pd.Series:
        """Probability of no purchase in the next ``t`` time units given each customer's history.

        A dead customer buys nothing; an alive one has a Gamma(r + x, alpha + T) purchase rate a posteriori
        and, as BG/NBD dropout happens only right after a purchase, stays alive through a purchase-free spell:
        ``(1 - P(alive)) + P(alive) * ((alpha + T) / (alpha + T + t)) ** (r + x)``.
        """
        p = self._params()
        x, tx, TT, index = _broadcast(frequency, recency, T)
        alive = _p_alive(p["r"], p["alpha"], p["a"], p["b"], x, tx, TT)
        t_arr = np.asarray(t, dtype=float)
        quiet = np.exp((p["r"] + x) * (np.log(p["alpha"] + TT) - np.log(p["alpha"] + TT + t_arr)))
        return _wrap(1.0 - alive + alive * quiet, index, "p_no_purchase")

    def expected_purchases_new(self, t: Any) -> np.ndarray | float:
        """Expected purchases in ``t`` time units by a customer just acquired (FHL 2005, eq. 9)."""
        p = self._params()
        t_arr = np.asarray(t, dtype=float)
        zero = np.zeros_like(t_arr)
        # A brand-new customer is a customer with x = 0, t_x = 0 seen for T = 0 (P(alive) = 1).
        value = _expected_purchases(p["r"], p["alpha"], p["a"], p["b"], t_arr, zero, zero, zero)
        return float(value) if value.ndim == 0 else value


# ---------------------------------------------------------------------- likelihood and predictions


def _log_likelihood_and_grad(
    params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer BG/NBD log-likelihood (FHL 2005, eq. 6) in log space, and its gradient (4 x n).

    ``log L = A + logaddexp(t1, t2)`` with ``A = lnG(r+x) - lnG(r) + r ln alpha``,
    ``t1 = lnB(a, b+x) - lnB(a, b) - (r+x) ln(alpha+T)`` and, for ``x > 0`` only,
    ``t2 = lnB(a+1, b+x-1) - lnB(a, b) - (r+x) ln(alpha+t_x)``. ``x`` is either the frequencies or a pair
    ``(distinct frequencies, index of each customer's)``: the special functions of ``x`` are then evaluated
    once per distinct frequency, which is most of the cost on large logs.
    """
    r, alpha, a, b = params
    ux, inv = x if isinstance(x, tuple) else np.unique(x, return_inverse=True)
    repeat_u = ux > 0
    uxm1 = np.where(repeat_u, ux - 1.0, 0.0)  # keeps b+x-1 > 0 where t2 is not used
    blab = betaln(a, b)
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + ux)
    # Per distinct frequency: the parts of A, t1, t2 and of their derivatives that do not involve time.
    g_r = (gammaln(r + ux) - gammaln(r))[inv]
    b1 = (betaln(a, b + ux) - blab)[inv]
    b2 = np.where(repeat_u, betaln(a + 1.0, b + uxm1) - blab, -np.inf)[inv]
    dr_u = (digamma(r + ux) - digamma(r))[inv]
    da1 = (psi_ab - psi_abx)[inv]
    da2 = (digamma(a + 1.0) - digamma(a) + psi_ab - psi_abx)[inv]
    db1 = (digamma(b + ux) - digamma(b) + psi_ab - psi_abx)[inv]
    db2 = np.where(repeat_u, digamma(b + uxm1) - digamma(b) + psi_ab - psi_abx, 0.0)[inv]

    xr = ux[inv] + r
    repeat = repeat_u[inv]
    log_at = np.log(alpha + T)
    log_atx = np.log(alpha + tx)
    t1 = b1 - xr * log_at
    t2 = b2 - xr * log_atx  # -inf where x = 0
    lse = np.logaddexp(t1, t2)
    ll = g_r + r * np.log(alpha) + lse
    w1 = np.exp(t1 - lse)
    w2 = np.where(repeat, np.exp(t2 - lse), 0.0)

    d_r = dr_u + np.log(alpha) - w1 * log_at - w2 * log_atx
    d_alpha = r / alpha - xr * (w1 / (alpha + T) + w2 / (alpha + tx))
    d_a = w1 * da1 + w2 * da2
    d_b = w1 * db1 + w2 * db2
    return ll, np.vstack([d_r, d_alpha, d_a, d_b])


def _log_odds_dead(r: float, alpha: float, a: float, b: float, x, tx, T) -> np.ndarray:
    """``log(a / (b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x))`` for x > 0, ``-inf`` for x = 0."""
    repeat = x > 0
    xm1 = np.where(repeat, x - 1.0, 0.0)
    log_odds = np.log(a) - np.log(b + xm1) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
    return np.where(repeat, log_odds, -np.inf)


def _p_alive(r: float, alpha: float, a: float, b: float, x, tx, T) -> np.ndarray:
    # expit(-log_odds) = 1 / (1 + odds) without overflowing for x in the hundreds.
    return expit(-_log_odds_dead(r, alpha, a, b, x, tx, T))


def _expected_purchases(r: float, alpha: float, a: float, b: float, t, x, tx, T) -> np.ndarray:
    if abs(a - 1.0) < 1e-7:
        # The closed form divides 0 by 0 at a = 1; it is smooth there, so average the two sides
        # (the error is O(h^2), far below anything a forecast can notice).
        h = 1e-5
        return 0.5 * (
            _expected_purchases(r, alpha, 1.0 - h, b, t, x, tx, T)
            + _expected_purchases(r, alpha, 1.0 + h, b, t, x, tx, T)
        )
    t, x, tx, T = np.broadcast_arrays(np.asarray(t, float), x, tx, T)
    z = t / (alpha + T + t)
    c = a + b + x - 1.0
    # Euler transform (see expected_purchases): (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z).
    tail = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    value = c / (a - 1.0) * (1.0 - tail) * _p_alive(r, alpha, a, b, x, tx, T)
    value = np.where(t == 0, 0.0, value)
    return np.maximum(value, 0.0)


# ---------------------------------------------------------------------- input handling


def _validate_summary(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(summary, pd.DataFrame):
        raise DataError(f"summary must be a pandas DataFrame, got {type(summary).__name__}")
    missing = [c for c in _SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise DataError(f"summary: column '{missing[0]}' is missing (build it with features.clv_summary)")
    if len(summary) == 0:
        raise DataError("summary is empty: no customer has a purchase before the cutoff")
    arrays = []
    for col in _SUMMARY_COLUMNS:
        values = pd.to_numeric(summary[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"summary: column '{col}' has {summary[col].iloc[i]} for customer {summary.index[i]!r}; "
                "need a finite value >= 0"
            )
        arrays.append(values)
    x, tx, T = arrays
    checks = (
        (x != np.round(x), "frequency", "is not a whole number"),
        (tx > T * (1 + 1e-9) + 1e-12, "recency", "exceeds T"),
        ((x == 0) & (tx > 0), "recency", "is > 0 with frequency 0"),
    )
    for bad, col, what in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"summary: column '{col}' {what} for customer {summary.index[i]!r}")
    if not (x > 0).any():
        raise DataError("summary: no customer has a repeat purchase (frequency > 0); BG/NBD cannot be fitted")
    return x, np.minimum(tx, T), T


def _broadcast(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index | None]:
    index = next((v.index for v in (frequency, recency, T) if isinstance(v, pd.Series)), None)
    x, tx, TT = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    x, tx, TT = np.broadcast_arrays(x, tx, TT)
    if not (np.all(x >= 0) and np.all(tx >= 0) and np.all(TT >= 0)):
        raise ValueError("frequency, recency and T must be finite and >= 0")
    return x, tx, TT, index


def _wrap(values: np.ndarray, index: pd.Index | None, name: str) -> np.ndarray | pd.Series:
    if index is not None and np.ndim(values) == 1 and len(values) == len(index):
        return pd.Series(values, index=index, name=name)
    return values


def _multistart(objective, starts: np.ndarray, max_iter: int, tol: float):
    """Best local optimum over the starting points: L-BFGS-B, with Nelder-Mead where it fails."""
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * starts.shape[1]
    best = None
    for x0 in starts:
        with np.errstate(all="ignore"):
            res = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-9})
            if not (res.success and np.isfinite(res.fun)):
                # A line search that broke down (typically in a flat or overflowing region): the simplex needs
                # no gradient. It starts from a finite point only; from an infinite one it cannot move.
                start = res.x if np.isfinite(res.fun) else x0
                if np.isfinite(objective(start)[0]):
                    nm = minimize(lambda v: objective(v)[0], start, method="Nelder-Mead", bounds=bounds,
                                  options={"maxiter": max_iter * 2, "xatol": 1e-10, "fatol": tol})
                    if np.isfinite(nm.fun) and (not np.isfinite(res.fun) or nm.fun <= res.fun):
                        res = nm
        if np.isfinite(res.fun) and np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
            best = res
    return best
