"""The sequence model learns order, trains in seconds on CPU and picks its device."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from models.recommenders import SASRec

N_PRODUCTS = 12


def cyclic_purchases(customers: int = 150, length: int = 8, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every customer walks the catalogue in a cycle p0 -> p1 -> ... from a random start, one product a day."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        start = rng.integers(N_PRODUCTS)
        for step in range(length):
            rows.append((f"c{c}", f"p{(start + step) % N_PRODUCTS:02d}",
                         pd.Timestamp("2024-01-01") + pd.Timedelta(days=step), 1.0))
    tx = pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp", "amount"])
    return {"transactions": tx}


def test_sasrec_learns_what_comes_next():
    tables = cyclic_purchases()
    model = SASRec(dim=16, blocks=1, heads=1, max_len=8, epochs=60, batch_size=32, learning_rate=5e-3,
                   dropout=0.0).fit(tables)
    out = model.recommend([f"c{c}" for c in range(40)], n=1)
    last = tables["transactions"].groupby("customer_id")["product_id"].last()
    expected = last.map(lambda p: f"p{(int(p[1:]) + 1) % N_PRODUCTS:02d}")
    hits = (out.set_index("customer_id")["product_id"] == expected.reindex(out["customer_id"]).to_numpy()).mean()
    assert hits > 0.8
    assert out["reason"].str.startswith("often bought after").all()


def test_sasrec_uses_a_gpu_only_when_there_is_one():
    model = SASRec(dim=8, blocks=1, heads=1, max_len=4, epochs=1).fit(cyclic_purchases(20, 4))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(model.network_.parameters()).device.type == expected


def test_sampled_softmax_for_large_catalogues_also_learns():
    tables = cyclic_purchases()
    model = SASRec(dim=16, blocks=1, heads=1, max_len=8, epochs=60, batch_size=32, learning_rate=5e-3,
                   dropout=0.0, full_softmax_max_items=4, negatives=6).fit(tables)
    out = model.recommend([f"c{c}" for c in range(40)], n=3)
    last = tables["transactions"].groupby("customer_id")["product_id"].last()
    expected = last.map(lambda p: f"p{(int(p[1:]) + 1) % N_PRODUCTS:02d}")
    hit = out.merge(expected.rename("next").reset_index(), on="customer_id")
    assert (hit["product_id"] == hit["next"]).groupby(hit["customer_id"]).any().mean() > 0.8
