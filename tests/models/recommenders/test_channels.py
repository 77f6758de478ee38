"""Channel boosts and store stock: learned from the history, saved with the model, read by the one policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.recommenders import Filters, registry
from models.recommenders.data import TrainingData
from models.recommenders.policy import CHANNEL_CLIP, CHANNEL_WEIGHT, channel_boosts
from tests.models.recommenders.conftest import TINY


def test_a_product_bought_through_one_channel_is_boosted_there_and_demoted_elsewhere():
    # Product 0: 60 online purchases; product 1: 60 in store; product 2: 30 and 30; product 3: never bought.
    code = np.array([1] * 60 + [0] * 60 + [0] * 30 + [1] * 30)  # 0 store, 1 online
    item = np.array([0] * 60 + [1] * 60 + [2] * 60)
    boost = channel_boosts(code, ["store", "online"], item, 4)
    assert boost[1, 0] > 0 > boost[0, 0] and boost[0, 1] > 0 > boost[1, 1]
    assert abs(boost[0, 2]) < 1e-6 and abs(boost[1, 2]) < 1e-6  # bought like everything else: nothing moves
    assert (boost[:, 3] == 0).all()  # no history, no opinion
    assert np.abs(boost).max() <= CHANNEL_WEIGHT * CHANNEL_CLIP + 1e-6
    # Two purchases say little: shrunk towards the overall share.
    few = channel_boosts(np.array([1] * 2 + [1] * 60 + [0] * 100), ["store", "online"],
                         np.array([0] * 2 + [2] * 60 + [1] * 100), 3)
    assert 0 < few[1, 0] < few[1, 2]


def test_channel_names_are_normalised_and_blanks_are_no_channel(handmade):
    tx = handmade["transactions"].copy()
    tx["channel"] = ["Store ", "online", "ONLINE", None, "", "store", "app", "app", "store", "online", "store",
                     "app"]
    data = TrainingData.build({**handmade, "transactions": tx})
    assert data.catalog.channels == ("app", "online", "store")
    assert data.catalog.channel_boost.shape == (3, data.catalog.size)


def test_stock_and_boosts_survive_save_and_load(synthetic, cutoff, tmp_path):
    model = registry()["repeat"](**TINY["repeat"]).fit(synthetic, cutoff=cutoff)
    assert model.catalog_.stock is not None and model.catalog_.channels == ("app", "online", "store")
    store = model.catalog_.stock.stores[3]
    customers = list(model.customers_.external_ids[model.active_][:15]) + ["nobody"]
    filters = Filters(channel="store", store_id=store, availability="order_online", exclude_bought=False)
    loaded = type(model).load(model.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.recommend(customers, n=8, filters=filters),
                                  model.recommend(customers, n=8, filters=filters))
    in_store = model.recommend(customers, n=8, filters=Filters(store_id=store), locale=None)
    shelf = set(model.catalog_.products.to_external(model.catalog_.stock.items[
        model.catalog_.stock.offsets[3]:model.catalog_.stock.offsets[4]]))
    assert set(in_store["product_id"]) <= shelf and len(in_store) == 8 * len(customers)
    # The store's popular list tops an in-store list up from its own shelf.
    assert (in_store["reason"].str.contains("rec.popular_in_store")).any()


def test_filters_refuse_an_unknown_channel_or_availability():
    from features.exceptions import DataError

    with pytest.raises(DataError, match="channel"):
        Filters(channel="fax")
    with pytest.raises(DataError, match="availability"):
        Filters(availability="maybe")
