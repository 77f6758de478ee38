"""Moments to reach out, found at training for serving: :func:`models.moments.detect.find_moments` with what the
run has just fitted (the membership tiers, P(alive), the recommender's policy for suggested products)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.columns import Columns as C
from models.moments.config import MomentsConfig
from models.moments.detect import find_moments, learned_tiers, recommender_suggestions
from models.segments import CustomerSegmenter


def find_training_moments(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, config: MomentsConfig,
                          features: pd.DataFrame, segmenter: CustomerSegmenter, segments: pd.DataFrame,
                          values: pd.DataFrame, recommender: Any | None) -> pd.DataFrame:
    """The moments of the customers who may be profiled (``features`` holds only them) as of ``cutoff``.

    Tier upgrades use the programme's thresholds of ``config.tier_upgrade`` when given, else the membership
    tiers the segmenter learned (each customer's present tier counted, so one who reached it by orders is not
    told to spend for it); suggestions come from ``recommender`` (None: only a refill's own product).
    """
    thresholds = dict(config.tier_upgrade.thresholds)
    current = None
    if not thresholds and getattr(segmenter, "membership_", None) is not None:
        thresholds = learned_tiers(segmenter.membership_)
        current = segments.set_index(C.customer_id)["membership_tier"].astype("object")
    suggest = recommender_suggestions(recommender, config.suggestions) if recommender is not None else None
    return find_moments(tables, cutoff, config, customers=features[C.customer_id], features=features,
                        tiers=thresholds, current_tier=current,
                        p_alive=values.set_index(C.customer_id)["p_alive"], suggest=suggest)
