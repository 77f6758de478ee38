"""Customer segments for the CRM: RFM scores and segment, lifecycle stage, value tier, value at risk, membership.

Every part reads the point-in-time customer feature frame (:func:`features.pipeline.feature_frame`) and never
recomputes a feature. Thresholds are learned once on the training population by :meth:`CustomerSegmenter.fit`
and saved with the model (:meth:`CustomerSegmenter.to_dict`), so serving scores one customer with the
thresholds of training time and a single row gets exactly the segment it gets in a bulk export. All rules work
on values, never on rank positions, so the row order never changes a segment.

- :mod:`models.segments.rfm`: R, F, M scores 1..5 and the named RFM segment (the segment map);
- :mod:`models.segments.lifecycle`: prospect / new / active / reactivated / at risk / lapsed;
- :mod:`models.segments.value`: value tier from CLV, value at risk, suggested membership tier.

Settings live in configs/segments.yaml (:class:`SegmentConfig`); the lifecycle windows scale with the preset's
churn horizon (``churn.horizon_days``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.columns import Columns as C
from features.configfile import ConfigModel
from features.exceptions import ClienteleError, DataError
from models.moments.config import MomentsConfig
from models.segments.lifecycle import LIFECYCLE_STAGE, STAGES, LifecycleConfig, LifecycleStager, Window
from models.segments.rfm import (F_SCORE, M_SCORE, R_SCORE, RFM_CODE, RFM_SEGMENT, RFMConfig, RFMScorer,
                                 category_dtype, check_saved_format)
from models.segments.value import (MEMBERSHIP_TIER, VALUE_AT_RISK, VALUE_TIER, MembershipConfig, MembershipTiers,
                                   ValueTierConfig, ValueTiers, aligned_values, value_at_risk)

CHURN_PROBABILITY, CLV = "churn_probability", "clv"
SEGMENT_COLUMNS = (C.customer_id, R_SCORE, F_SCORE, M_SCORE, RFM_CODE, RFM_SEGMENT, LIFECYCLE_STAGE,
                   MEMBERSHIP_TIER, CHURN_PROBABILITY, CLV, VALUE_AT_RISK, VALUE_TIER)
_FORMAT = "clientele.segments.CustomerSegmenter"
_FORMAT_VERSION = 1


class SegmentConfig(ConfigModel):
    """All segment settings: configs/segments.yaml parsed and validated."""

    DEFAULT_FILE = "segments.yaml"

    rfm: RFMConfig = RFMConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    value_tiers: ValueTierConfig = ValueTierConfig()
    membership: MembershipConfig = MembershipConfig()
    moments: MomentsConfig = MomentsConfig()  # moments to reach out (models/moments), tier upgrades among them


class CustomerSegmenter:
    """RFM, lifecycle, membership and value tiers learned together and saved as one artefact.

    Parameters
    ----------
    horizon_days
        The preset's churn horizon ``H`` (``churn.horizon_days``): the lifecycle windows scale with it.
    config
        Segment settings; defaults to :class:`SegmentConfig` () (``SegmentConfig.load()`` reads the YAML).

    Attributes
    ----------
    rfm_ : RFMScorer
    lifecycle_ : LifecycleStager
    membership_ : MembershipTiers
    value_tiers_ : ValueTiers or None
        None when no CLV was given to :meth:`fit`.
    """

    def __init__(self, horizon_days: float | None = None, config: SegmentConfig | None = None) -> None:
        self.horizon_days = horizon_days
        self.config = config

    @property
    def settings(self) -> SegmentConfig:
        """The configuration in force (the default when none was given)."""
        return self.config if self.config is not None else SegmentConfig()

    def fit(self, frame: pd.DataFrame, clv: np.ndarray | pd.Series | None = None) -> CustomerSegmenter:
        """Learn every threshold from the training population.

        Parameters
        ----------
        frame
            Customer feature frame as of one cutoff (the training population).
        clv
            CLV of those customers, to learn the value tiers (see :func:`segment_customers` for how it is
            matched to the rows); without it the segmenter assigns no value tier.

        Returns
        -------
        CustomerSegmenter
            ``self``, fitted.

        Raises
        ------
        DataError
            A needed column is missing or there is nobody to learn from.
        ConfigError
            A lifecycle window needs ``horizon_days`` and it is missing.
        """
        cfg = self.settings
        self.rfm_ = RFMScorer(cfg.rfm).fit(frame)
        self.lifecycle_ = LifecycleStager(cfg.lifecycle, self.horizon_days).fit(frame)
        self.membership_ = MembershipTiers(cfg.membership).fit(frame)
        self.value_tiers_ = None if clv is None else ValueTiers(cfg.value_tiers).fit(aligned_values(clv, frame, CLV))
        return self

    def transform(self, frame: pd.DataFrame, churn_probability: np.ndarray | pd.Series | None = None,
                  clv: np.ndarray | pd.Series | None = None) -> pd.DataFrame:
        """Every segment column for every row of ``frame`` (see :func:`segment_customers`)."""
        if not hasattr(self, "rfm_"):
            raise ClienteleError("CustomerSegmenter is not fitted: call fit(frame) or CustomerSegmenter.from_dict()")
        if C.customer_id not in frame.columns:
            raise DataError(f"segments: column '{C.customer_id}' is missing from the feature frame")
        probability = aligned_values(churn_probability, frame, CHURN_PROBABILITY)
        value = aligned_values(clv, frame, CLV)
        if clv is not None and self.value_tiers_ is None:
            raise ClienteleError("CustomerSegmenter was fitted without CLV: pass clv to fit to learn value tiers")
        if self.value_tiers_ is not None:
            value_tier = self.value_tiers_.predict(value).array
        else:  # no tiers learned: an all-missing column with the configured tiers, so the schema never varies
            value_tier = pd.Categorical.from_codes(
                np.full(len(frame), -1), dtype=category_dtype(tuple(self.settings.value_tiers.shares), ordered=True))
        rfm = self.rfm_.columns(frame)
        columns = {
            C.customer_id: frame[C.customer_id].array,
            **{name: rfm[name] for name in (R_SCORE, F_SCORE, M_SCORE, RFM_CODE, RFM_SEGMENT)},
            LIFECYCLE_STAGE: self.lifecycle_.predict(frame).array,
            MEMBERSHIP_TIER: self.membership_.predict(frame).array,
            CHURN_PROBABILITY: probability,
            CLV: value,
            VALUE_AT_RISK: value_at_risk(probability, value),
            VALUE_TIER: value_tier,
        }
        return pd.DataFrame(columns, index=frame.index)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings and every learned threshold (saved with the model)."""
        if not hasattr(self, "rfm_"):
            raise ClienteleError("CustomerSegmenter is not fitted: nothing to save")
        return {"format": _FORMAT, "version": _FORMAT_VERSION, "horizon_days": self.horizon_days,
                "config": self.settings.model_dump(mode="json"), "rfm": self.rfm_.to_dict(),
                "lifecycle": self.lifecycle_.to_dict(), "membership": self.membership_.to_dict(),
                "value_tiers": None if self.value_tiers_ is None else self.value_tiers_.to_dict()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CustomerSegmenter:
        """Rebuild a segmenter written by :meth:`to_dict`.

        Raises
        ------
        ClienteleError
            ``state`` is not a saved CustomerSegmenter of this version.
        """
        check_saved_format(state, _FORMAT, _FORMAT_VERSION)
        segmenter = cls(state["horizon_days"], SegmentConfig.from_dict(state["config"], "saved CustomerSegmenter"))
        segmenter.rfm_ = RFMScorer.from_dict(state["rfm"])
        segmenter.lifecycle_ = LifecycleStager.from_dict(state["lifecycle"])
        segmenter.membership_ = MembershipTiers.from_dict(state["membership"])
        segmenter.value_tiers_ = None if state["value_tiers"] is None else ValueTiers.from_dict(state["value_tiers"])
        return segmenter

    def __repr__(self) -> str:
        return f"CustomerSegmenter(horizon_days={self.horizon_days!r})"


def segment_customers(frame: pd.DataFrame, churn_probability: np.ndarray | pd.Series | None,
                      clv: np.ndarray | pd.Series | None, segmenter: CustomerSegmenter) -> pd.DataFrame:
    """One row per customer with every segment column, ready for the CRM export.

    Parameters
    ----------
    frame
        Customer feature frame (:func:`features.pipeline.feature_frame`), any number of rows.
    churn_probability
        Calibrated churn probability per customer (``ChurnModel.predict_proba(frame)``), or None.
    clv
        CLV per customer (``LifetimeValueModel.predict(summary)["clv"]``), or None. For both: a Series indexed
        by ``customer_id`` is matched on the frame's ``customer_id`` (customers it lacks get NaN); any other
        Series must share the frame's index; an array has one value per row, in the frame's order.
    segmenter
        A fitted :class:`CustomerSegmenter`.

    Returns
    -------
    pandas.DataFrame
        Indexed and ordered like ``frame``, columns :data:`SEGMENT_COLUMNS`: ``customer_id``, ``r_score``,
        ``f_score``, ``m_score``, ``rfm_code``, ``rfm_segment``, ``lifecycle_stage``, ``membership_tier``,
        ``churn_probability``, ``clv``, ``value_at_risk`` (churn probability x CLV) and ``value_tier``.
        Segment columns are categoricals over every possible value (tiers ordered lowest first).

    Raises
    ------
    DataError
        A needed column is missing, the probabilities or CLVs cannot be matched to the rows, or a probability
        lies outside [0, 1].
    ClienteleError
        ``segmenter`` is not fitted, or CLV is given but the segmenter learned no value tiers.
    """
    return segmenter.transform(frame, churn_probability=churn_probability, clv=clv)


__all__ = [
    "SEGMENT_COLUMNS", "STAGES", "CustomerSegmenter", "LifecycleConfig", "LifecycleStager",
    "MembershipConfig", "MembershipTiers", "RFMConfig", "RFMScorer", "SegmentConfig", "ValueTierConfig",
    "ValueTiers", "Window", "segment_customers", "value_at_risk",
]
