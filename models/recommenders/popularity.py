"""Popularity and trending, overall or per region: the simplest peer, the cold-start answer and a generator."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from features.i18n import message
from models.recommenders import signals
from models.recommenders.base import Recommender, RecommenderParams
from models.recommenders.data import TrainingData


# Below the smallest gap between distinct window scores in practice (counts, or lifts times log counts).
_TIEBREAK_WEIGHT = 1e-3


class PopularityParams(RecommenderParams):
    """Hyperparameters of :class:`Popularity`.

    Attributes
    ----------
    mode
        ``popular``: distinct buyers in the window; ``trending``: those buyers' lift over the product's
        baseline rate (rising products first); ``seasonal``: buyers in the ``window_days`` that started
        ``season_lag_days`` ago (what sold in the coming weeks last year: Christmas, Valentine's, summer).
    window_days
        Buyers counted in this many days before the cutoff (``None``: all time).
    by_region
        Rank by popularity in the customer's region (shrunk towards the overall one) instead of overall.
    trend_baseline_days
        Trending: the baseline window just before the recent one.
    trend_prior
        Trending: pseudo-buyers added to both windows, so one sale does not make a trend.
    season_lag_days
        Seasonal: how far back the season repeats (52 weeks keeps the weekdays aligned).
    """

    mode: Literal["popular", "trending", "seasonal"] = "popular"
    window_days: float | None = 30.0
    by_region: bool = False
    trend_baseline_days: float = 90.0
    trend_prior: float = 3.0
    season_lag_days: float = 364.0


class Popularity(Recommender):
    """Most bought (or fastest rising) products, the same for every customer of a region."""

    name = "popularity"
    Params = PopularityParams

    def _fit(self, data: TrainingData) -> None:
        p = self.params
        if p.mode == "trending":
            window = p.window_days or p.trend_baseline_days
            lift = signals.trend(data.log, data.n_items, window, p.trend_baseline_days, p.trend_prior)
            # Lift alone favours a product with 2 sales after 0; weighting by recent buyers keeps them real.
            score = lift * np.log1p(signals.buyers(data.log, data.n_items, window))
        elif p.mode == "seasonal":
            window = p.window_days or p.trend_baseline_days
            score = signals.buyers_between(data.log, data.n_items, p.season_lag_days - window, p.season_lag_days)
        else:
            score = signals.buyers(data.log, data.n_items, p.window_days)
        # All-time buyers, scaled below the smallest possible difference of scores, only break ties.
        tiebreak = signals.buyers(data.log, data.n_items)
        score = score + tiebreak / (tiebreak.max() + 1.0) * _TIEBREAK_WEIGHT
        self.score_ = score / max(score.sum(), np.finfo(np.float64).tiny)
        self.region_item_score_ = np.zeros((0, data.n_items))
        if p.by_region and len(data.regions):
            counts = signals.segment_buyers(data.log, data.region, len(data.regions), data.n_items, p.window_days)
            self.region_item_score_ = signals.shrunk_share(counts, self.score_, p.segment_shrinkage)

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = np.tile(self.score_.astype(np.float32), (len(users), 1))
        if self.params.by_region and len(self.region_item_score_):
            region = self.region_[users]
            ok = (region >= 0) & self.region_ok_[np.maximum(region, 0)]
            scores[ok] = self.region_item_score_[region[ok]]
        return scores

    def _explain(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        base = {"trending": message("rec.trending"), "seasonal": message("rec.seasonal")}.get(self.params.mode,
                                                                                             message("rec.popular"))
        out = np.where(items >= 0, base, "").astype(object)
        if self.params.by_region and len(self.region_item_score_):
            for r, u in enumerate(users):
                region = self.region_[u] if u >= 0 else -1
                if region >= 0 and self.region_ok_[region]:
                    out[r, items[r] >= 0] = message("rec.popular_region", region=self.regions_[region])
        return out

    def _score_history(self, rows: Any) -> np.ndarray:
        return np.tile(self.score_.astype(np.float32), (rows.shape[0], 1))

    def _state(self) -> dict[str, np.ndarray]:
        return {"score": self.score_, "region_item_score": self.region_item_score_}

    def _load_state(self, state: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> None:
        self.score_ = state["score"]
        self.region_item_score_ = state["region_item_score"]


class Trending(Popularity):
    """Products whose buyers rise fastest against their own baseline ("popular right now")."""

    name = "trending"

    def __init__(self, **params: Any):
        params.setdefault("mode", "trending")
        super().__init__(**params)


class Seasonal(Popularity):
    """What sold in the coming weeks a year ago: seasonal and gift products before they peak again."""

    name = "seasonal"

    def __init__(self, **params: Any):
        params.setdefault("mode", "seasonal")
        super().__init__(**params)
