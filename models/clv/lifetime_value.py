"""Customer lifetime value: BG/NBD purchases x Gamma-Gamma spend, discounted month by month.

The discounted-CLV recipe of the lifetimes / Fader-Hardie literature: over each month ``i`` of the horizon, the
expected purchases in that month (difference of the BG/NBD conditional expectations at ``i`` and ``i - 1``
months) times the Gamma-Gamma expected spend per purchase, discounted to today at ``(1 + d) ** (i / 12)`` for an
annual rate ``d``, summed. Spend and purchase processes are assumed independent, as the Gamma-Gamma model does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.exceptions import ClienteleError, ConfigError, DataError
from models.clv.bgnbd import BetaGeoModel
from models.clv.gamma_gamma import GammaGammaModel

DAYS_PER_MONTH = 365.25 / 12
OUTPUT_COLUMNS = ("p_alive", "expected_purchases", "expected_spend", "clv")
_FORMAT = "clientele.clv.LifetimeValueModel"
_FORMAT_VERSION = 1


def customer_lifetime_value(
    transaction_model: BetaGeoModel,
    spend_model: GammaGammaModel,
    summary: pd.DataFrame,
    *,
    time_unit_days: float | None = None,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
) -> pd.DataFrame:
    """Per-customer P(alive), expected purchases and spend, and discounted CLV over a horizon.

    Parameters
    ----------
    transaction_model
        A fitted :class:`BetaGeoModel`, on summaries in the same time unit as ``summary``.
    spend_model
        A fitted :class:`GammaGammaModel`.
    summary
        Customers to score: ``frequency``, ``recency``, ``T``, ``monetary_value`` as built by
        :func:`features.clv_summary.clv_summary`.
    time_unit_days
        Days per time unit of ``summary``. Defaults to ``summary.attrs["time_unit_days"]`` (set by
        ``clv_summary``); required when the summary does not carry it.
    horizon_months
        Length of the horizon in months (of 365.25 / 12 days).
    annual_discount_rate
        Yearly discount rate of future cash flows (0.10 = 10 %); each month's expected revenue is discounted
        by ``(1 + rate) ** (month / 12)``.
    margin
        Share of revenue counted as value (1 = revenue CLV; a gross margin such as 0.3 gives profit CLV).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``summary``, with ``p_alive``, ``expected_purchases`` (over the horizon),
        ``expected_spend`` (per purchase) and ``clv`` (discounted value over the horizon).

    Raises
    ------
    ConfigError
        A horizon, rate, margin or time unit is out of range, or contradicts the summary's own time unit.
    DataError
        ``summary`` lacks a column.
    ClienteleError
        A model is not fitted, or the spend model has no finite mean (Gamma-Gamma ``q <= 1``) while some
        customer has no repeat purchase.
    """
    unit = _time_unit(summary, time_unit_days)
    if int(horizon_months) != horizon_months or horizon_months < 1:
        raise ConfigError(f"horizon_months must be a whole number >= 1, got {horizon_months!r}")
    if not (np.isfinite(annual_discount_rate) and annual_discount_rate > -1):
        raise ConfigError(f"annual_discount_rate must be > -1, got {annual_discount_rate!r}")
    if not (np.isfinite(margin) and margin >= 0):
        raise ConfigError(f"margin must be >= 0, got {margin!r}")
    missing = [c for c in ("frequency", "recency", "T", "monetary_value") if c not in summary.columns]
    if missing:
        raise DataError(f"summary: column '{missing[0]}' is missing (build it with features.clv_summary)")

    x = summary["frequency"].to_numpy(dtype=float)
    tx = summary["recency"].to_numpy(dtype=float)
    T = summary["T"].to_numpy(dtype=float)
    m = summary["monetary_value"].to_numpy(dtype=float)

    spend = np.asarray(spend_model.expected_spend(x, m), dtype=float)
    if not np.all(np.isfinite(spend)):
        raise ClienteleError(
            f"Gamma-Gamma q = {spend_model.q_:.3g} <= 1 gives no finite spend for customers without repeat "
            "purchases; refit the spend model with a penalizer"
        )
    month = DAYS_PER_MONTH / unit
    months = np.arange(int(horizon_months) + 1)
    # Cumulative expected purchases at the end of each month, shape (months + 1, customers).
    cumulative = np.vstack([transaction_model.expected_purchases(i * month, x, tx, T) for i in months])
    per_month = np.diff(cumulative, axis=0)
    discount = (1.0 + annual_discount_rate) ** (-months[1:] / 12.0)
    # Month after month, one customer-wise addition each: a BLAS product (or numpy's pairwise sum) orders the
    # additions by the batch's width, so a customer's last bit would depend on who else is scored with them
    # (alone, in bulk, in a Dask bucket).
    discounted = np.zeros(len(x))
    for weight, purchases in zip(discount, per_month):
        discounted += weight * purchases
    clv = margin * spend * discounted

    return pd.DataFrame(
        {
            "p_alive": transaction_model.p_alive(x, tx, T),
            "expected_purchases": cumulative[-1],
            "expected_spend": spend,
            "clv": clv,
        },
        index=summary.index,
        columns=list(OUTPUT_COLUMNS),
    )


class LifetimeValueModel:
    """BG/NBD + Gamma-Gamma fitted together and saved as one artefact that scores customers.

    Parameters
    ----------
    time_unit_days
        Days per time unit of the summaries it is fitted on and scores (7 = weeks).
    horizon_months, annual_discount_rate, margin
        CLV settings, see :func:`customer_lifetime_value`.
    penalizer, spend_penalizer
        L2 penalizers of the BG/NBD and Gamma-Gamma fits (0 = plain MLE).
    max_iter
        Iteration cap of each local optimisation in both fits.

    Attributes
    ----------
    transaction_model_ : BetaGeoModel
        The fitted purchase model.
    spend_model_ : GammaGammaModel
        The fitted spend model.
    """

    def __init__(
        self,
        time_unit_days: float = 7.0,
        horizon_months: int = 12,
        annual_discount_rate: float = 0.10,
        margin: float = 1.0,
        penalizer: float = 0.0,
        spend_penalizer: float = 0.0,
        max_iter: int = 2000,
    ) -> None:
        self.time_unit_days = time_unit_days
        self.horizon_months = horizon_months
        self.annual_discount_rate = annual_discount_rate
        self.margin = margin
        self.penalizer = penalizer
        self.spend_penalizer = spend_penalizer
        self.max_iter = max_iter

    def fit(self, summary: pd.DataFrame) -> LifetimeValueModel:
        """Fit both models on a summary from :func:`features.clv_summary.clv_summary`.

        Parameters
        ----------
        summary
            Per-customer ``frequency``, ``recency``, ``T``, ``monetary_value``, in units of ``time_unit_days``.

        Returns
        -------
        LifetimeValueModel
            ``self``, fitted.

        Raises
        ------
        ConfigError
            The summary's time unit differs from ``time_unit_days``.
        DataError, ClienteleError
            As raised by :meth:`BetaGeoModel.fit` and :meth:`GammaGammaModel.fit`.
        """
        _time_unit(summary, self.time_unit_days)
        self.transaction_model_ = BetaGeoModel(penalizer=self.penalizer, max_iter=self.max_iter).fit(summary)
        self.spend_model_ = GammaGammaModel(penalizer=self.spend_penalizer, max_iter=self.max_iter).fit(summary)
        return self

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Score customers: ``p_alive``, ``expected_purchases``, ``expected_spend``, ``clv`` (see
        :func:`customer_lifetime_value`)."""
        if not hasattr(self, "transaction_model_"):
            raise ClienteleError(
                "LifetimeValueModel is not fitted: call fit(summary) or LifetimeValueModel.load(path)"
            )
        return customer_lifetime_value(
            self.transaction_model_,
            self.spend_model_,
            summary,
            time_unit_days=self.time_unit_days,
            horizon_months=self.horizon_months,
            annual_discount_rate=self.annual_discount_rate,
            margin=self.margin,
        )

    def _hyperparameters(self) -> dict[str, Any]:
        return {
            "time_unit_days": self.time_unit_days,
            "horizon_months": self.horizon_months,
            "annual_discount_rate": self.annual_discount_rate,
            "margin": self.margin,
            "penalizer": self.penalizer,
            "spend_penalizer": self.spend_penalizer,
            "max_iter": self.max_iter,
        }

    def save(self, path: str | Path) -> Path:
        """Write settings and both fitted models to one JSON file.

        Parameters
        ----------
        path
            File to write.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        if not hasattr(self, "transaction_model_"):
            raise ClienteleError("LifetimeValueModel is not fitted: nothing to save")
        state = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "hyperparameters": self._hyperparameters(),
            "transaction_model": self.transaction_model_.to_dict(),
            "spend_model": self.spend_model_.to_dict(),
        }
        path = Path(path)
        path.write_text(json.dumps(state, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> LifetimeValueModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ClienteleError
            The file is not a saved LifetimeValueModel of this version.
        """
        path = Path(path)
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ClienteleError(f"{path}: cannot read a saved LifetimeValueModel ({exc})") from exc
        if state.get("format") != _FORMAT or state.get("version") != _FORMAT_VERSION:
            raise ClienteleError(f"{path}: not a saved LifetimeValueModel of version {_FORMAT_VERSION}")
        model = cls(**state["hyperparameters"])
        model.transaction_model_ = BetaGeoModel.from_dict(state["transaction_model"])
        model.spend_model_ = GammaGammaModel.from_dict(state["spend_model"])
        return model

    def __repr__(self) -> str:
        return (f"LifetimeValueModel(time_unit_days={self.time_unit_days!r}, "
                f"horizon_months={self.horizon_months!r})")


def _time_unit(summary: pd.DataFrame, time_unit_days: float | None) -> float:
    """The summary's time unit in days, checked against the one given (a silent mismatch mis-scales CLV)."""
    recorded = summary.attrs.get("time_unit_days") if isinstance(summary, pd.DataFrame) else None
    if time_unit_days is None:
        if recorded is None:
            raise ConfigError(
                "time_unit_days is needed: the summary does not record the time unit it was built with"
            )
        time_unit_days = recorded
    if not (np.isfinite(time_unit_days) and time_unit_days > 0):
        raise ConfigError(f"time_unit_days must be a positive number of days, got {time_unit_days!r}")
    if recorded is not None and not np.isclose(float(recorded), float(time_unit_days)):
        raise ConfigError(
            f"summary was built with time_unit_days={recorded} but the model uses {time_unit_days}; "
            "rebuild one to match"
        )
    return float(time_unit_days)
