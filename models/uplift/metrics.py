"""Uplift metrics on a randomised test set: the Qini curve, its normalised area and uplift at the top k.

The definitions are scikit-uplift's (``sklift.metrics.qini_curve``, ``perfect_qini_curve``, ``qini_auc_score``
with ``negative_effect=True`` and ``uplift_at_k`` with ``strategy='overall'``), so figures compare with the
literature that reports them. The same formulas are applied unchanged to a continuous outcome such as spend
(scikit-uplift accepts binary outcomes only): the curve is then incremental spend instead of incremental buyers.
"""

from __future__ import annotations

import numpy as np

from features.exceptions import DataError


def _arrays(outcome: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(outcome, dtype=float)
    u = np.asarray(uplift, dtype=float)
    t = np.asarray(treatment, dtype=float)
    if not (len(y) == len(u) == len(t)):
        raise ValueError(f"outcome, uplift and treatment differ in length ({len(y)}, {len(u)}, {len(t)})")
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("treatment must be 0 or 1")
    return y, u, t


def qini_curve(outcome: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve: customers targeted (highest predicted uplift first) against incremental responses.

    At each distinct uplift value the curve is ``Y_t - Y_c * N_t / N_c`` over the customers ranked so far
    (responses of the treated minus the control's responses scaled to the treated count); ties are one step.

    Parameters
    ----------
    outcome, uplift, treatment
        Observed outcome, predicted uplift and treatment (0/1) per customer.

    Returns
    -------
    (x, y)
        Customers targeted (starting at 0) and incremental responses.
    """
    y, u, t = _arrays(outcome, uplift, treatment)
    order = np.argsort(u, kind="mergesort")[::-1]
    y, u, t = y[order], u[order], t[order]
    steps = np.r_[np.flatnonzero(np.diff(u)), len(u) - 1]
    n_treated = np.cumsum(t)[steps]
    n_all = steps + 1.0
    n_control = n_all - n_treated
    y_treated = np.cumsum(y * t)[steps]
    y_control = np.cumsum(y * (1 - t))[steps]
    scale = np.divide(n_treated, n_control, out=np.zeros_like(n_treated), where=n_control != 0)
    values = y_treated - y_control * scale
    if len(n_all) == 0 or values[0] != 0 or n_all[0] != 0:
        n_all, values = np.r_[0.0, n_all], np.r_[0.0, values]
    return n_all, values


def perfect_qini_curve(outcome: np.ndarray, treatment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best Qini curve possible on this sample (negative effects included): treated responders first,
    control responders last."""
    y, _, t = _arrays(outcome, np.zeros(len(outcome)), treatment)
    return qini_curve(y, y * t - y * (1 - t), t)


def qini_auc(outcome: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> float:
    """Normalised area under the Qini curve: (model - random) / (perfect - random), where random is the straight
    line to the curve's end. 0 is random targeting, 1 the perfect ordering, negative worse than random.

    Raises
    ------
    DataError
        Both groups are needed: the sample has no treated or no control customer, or no outcome at all.
    """
    y, u, t = _arrays(outcome, uplift, treatment)
    if t.min() == t.max():
        raise DataError("qini: the sample needs treated and control customers")
    x_model, y_model = qini_curve(y, u, t)
    x_best, y_best = perfect_qini_curve(y, t)
    baseline = np.trapezoid([0.0, y_best[-1]], [0.0, x_best[-1]])
    best = np.trapezoid(y_best, x_best) - baseline
    if best == 0:
        raise DataError("qini: the sample has no outcome to rank (every outcome is zero)")
    return float((np.trapezoid(y_model, x_model) - baseline) / best)


def uplift_at_k(outcome: np.ndarray, uplift: np.ndarray, treatment: np.ndarray, k: float = 0.3) -> float:
    """Treated minus control mean outcome among the top ``k`` share of customers by predicted uplift (NaN when
    that top share holds no treated or no control customer)."""
    y, u, t = _arrays(outcome, uplift, treatment)
    if not 0 < k < 1:
        raise ValueError(f"k must be in (0, 1), not {k}")
    top = np.argsort(u, kind="mergesort")[::-1][: int(len(y) * k)]
    treated, control = y[top][t[top] == 1], y[top][t[top] == 0]
    if not len(treated) or not len(control):
        return float("nan")
    return float(treated.mean() - control.mean())
