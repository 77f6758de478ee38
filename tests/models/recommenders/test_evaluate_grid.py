"""The evaluation's peer grids share what their points share, and choose exactly what one fit per point would."""

from __future__ import annotations

import pytest

from features.exceptions import ConfigError
from models.recommenders import Recommender, TifuKNN
from models.recommenders.config import PeerSpec
from models.recommenders.data import TrainingData, tables_before
from training import evaluate_recommender as ev


@pytest.fixture(scope="module")
def split(synthetic):
    start, end = ev.window_start(synthetic, 30)
    train = tables_before(synthetic, start)
    return train, ev.temporal_split(train, start - ev.pd.Timedelta(days=30), start)


def test_a_grid_fits_once_per_fit_setting_and_picks_what_separate_fits_pick(synthetic, split, monkeypatch):
    train, validation = split
    grid = {"group_decay": [0.6, 0.9], "neighbours": [5, 40], "alpha": [0.5, 0.9]}
    peer = PeerSpec(model="tifu_knn", grid=grid)
    config = {"models": {}}
    fits, builds = [], []
    fit_data, build = Recommender.fit_data, TrainingData.build.__func__
    monkeypatch.setattr(Recommender, "fit_data", lambda self, *a, **k: fits.append(self.get_params()) or
                        fit_data(self, *a, **k))
    monkeypatch.setattr(TrainingData, "build", classmethod(lambda cls, *a, **k: builds.append(1) or build(cls, *a, **k)))
    chosen = ev.tune_peer("tifu_knn", peer, config, train, validation, "ndcg@10")
    assert len(builds) == 1 and len(fits) == 2  # one data build; one fit per group_decay
    monkeypatch.undo()
    # The same choice as fitting every point on its own, first best in grid order on ties.
    values = [ev.evaluate_model(TifuKNN(**setting).fit(train, cutoff=validation.start), validation,
                                new_variant=False)["ndcg@10"] for setting in ev._grid(grid)]
    assert chosen == ev._grid(grid)[values.index(max(values))]


def test_only_scoring_parameters_change_without_a_refit(synthetic, split):
    train, validation = split
    fitted = TifuKNN(neighbours=5, alpha=0.5).fit(train, cutoff=validation.start)
    changed = fitted.with_params(neighbours=40, alpha=0.9)
    direct = TifuKNN(neighbours=40, alpha=0.9).fit(train, cutoff=validation.start)
    customers = validation.customers[:50]
    ev.pd.testing.assert_frame_equal(changed.recommend(customers, n=10), direct.recommend(customers, n=10))
    assert fitted.params.neighbours == 5  # the original keeps its own
    with pytest.raises(ConfigError, match="group_decay change the fit"):
        fitted.with_params(group_decay=0.5)


def test_variants_share_the_neighbour_search_and_score_as_separate_fits(synthetic, split, monkeypatch):
    train, validation = split
    customers = validation.customers[:80]
    fitted = TifuKNN(neighbours=30, alpha=0.5).fit(train, cutoff=validation.start)
    fitted.recommend(customers, n=10, explain=False)
    searches = len(fitted._neighbour_means)
    assert searches > 0
    for alpha in (0.7, 0.9):
        shared = fitted.with_params(alpha=alpha).recommend(customers, n=10)
        direct = TifuKNN(neighbours=30, alpha=alpha).fit(train, cutoff=validation.start).recommend(customers, n=10)
        ev.pd.testing.assert_frame_equal(shared, direct)
    assert len(fitted._neighbour_means) == searches  # the variants found the searches done
    other = fitted.with_params(neighbours=10).recommend(customers, n=10)  # a search of its own
    ev.pd.testing.assert_frame_equal(other, TifuKNN(neighbours=10, alpha=0.5).fit(
        train, cutoff=validation.start).recommend(customers, n=10))
    # The searches kept stay within their budget: the oldest are dropped first.
    monkeypatch.setattr("models.recommenders.tifu_knn._KEPT_WEIGHTS", 1)
    fitted.with_params(neighbours=10).recommend(customers[:40], n=10, explain=False)
    assert len(fitted._neighbour_means) == 1
