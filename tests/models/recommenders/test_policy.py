"""The recommendation policy's own rules, on plain arrays (the parity test holds every path to them)."""

from __future__ import annotations

import numpy as np
import pytest

from features.exceptions import DataError
from models.recommenders.filters import Filters
from models.recommenders.policy import EventSettings, buy_again_mix, events_since

SETTINGS = EventSettings(weights={"purchase": 1.0, "cart": 0.5, "view": 0.1}, max_products=2)


def test_events_count_newest_first_by_when_they_happened_not_when_they_arrived():
    # An app syncing late sends an older view after a newer cart.
    arrived = [(200.0, "cart", 1), (150.0, "view", 2), (300.0, "view", 3)]
    touched = events_since(arrived, cutoff_ts=100.0, settings=SETTINGS)
    assert touched.products == ((3, "view"), (1, "cart"))  # the two newest by time; 2 is the oldest


def test_events_before_the_cutoff_unknown_products_and_unweighted_types_do_not_count():
    events = [(50.0, "cart", 1), (150.0, "try_on", 2), (160.0, "view", -1), (170.0, "purchase", 4)]
    touched = events_since(events, cutoff_ts=100.0, settings=SETTINGS)
    assert touched.products == ((4, "purchase"),) and touched.bought == frozenset({4})


def test_events_without_a_time_are_the_newest_in_the_order_given():
    touched = events_since([(None, "view", 1), (None, "cart", 2), (500.0, "view", 3)], None, SETTINGS)
    assert touched.products == ((2, "cart"), (1, "view"))


def test_buy_again_mix_gives_the_share_of_places_to_bought_products_in_rank_order():
    bought = np.array([True, True, True, True, False, True, False, False, False])
    assert buy_again_mix(bought, 4, 0.5).tolist() == [0, 1, 4, 6]
    assert buy_again_mix(bought, 4, 0.0).tolist() == [4, 6, 7, 8]
    assert buy_again_mix(bought, 4, 1.0).tolist() == [0, 1, 2, 3]


def test_buy_again_mix_fills_from_the_other_kind_when_one_runs_short():
    bought = np.array([False, True, False])
    assert buy_again_mix(bought, 3, 1.0).tolist() == [0, 1, 2]  # one bought product, two new fill in
    assert buy_again_mix(np.array([True, True, False]), 3, 0.0).tolist() == [0, 1, 2]
    assert buy_again_mix(np.array([True, False]), 5, 0.4).tolist() == [0, 1]


def test_a_share_outside_0_to_1_is_refused_naming_it():
    with pytest.raises(DataError, match="buy_again_share"):
        Filters(buy_again_share=1.5)
