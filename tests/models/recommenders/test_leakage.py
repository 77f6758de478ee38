"""No row at or after a cutoff reaches any fit: not a model's, not the reranker's, not the evaluation's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.recommenders import Recommender, TwoStage, registry
from models.recommenders.data import TrainingData
from tests.models.recommenders.conftest import TINY, tiny_two_stage
from training import evaluate_recommender as ev


def scramble_after(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, seed: int) -> dict[str, pd.DataFrame]:
    """The same past, a different future: rows from the cutoff on get shuffled products and customers, and
    new customers and products appear."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, table in tables.items():
        table = table.copy()
        if "timestamp" in table.columns:
            late = (table["timestamp"] >= cutoff).to_numpy()
            for col in ("product_id", "customer_id"):
                if col in table.columns and late.any():
                    values = table.loc[late, col].to_numpy()
                    table.loc[late, col] = rng.permutation(values)
            if name == "transactions":
                extra = table[late].head(50).copy()
                extra["customer_id"] = [f"future-c{i}" for i in range(len(extra))]
                extra["product_id"] = [f"future-p{i}" for i in range(len(extra))]
                table = pd.concat([table, extra], ignore_index=True)
        out[name] = table
    return out


@pytest.mark.parametrize("name", ["popularity", "trending", "repeat", "bm25", "als", "ease", "clientele"])
def test_the_future_never_changes_a_fit(name, synthetic, cutoff):
    params = tiny_two_stage() if name == "clientele" else TINY[name]
    customers = synthetic["transactions"]["customer_id"].drop_duplicates().head(40).tolist()
    products = synthetic["products"]["product_id"].head(5).tolist()
    results = []
    for seed in (None, 1):
        tables = synthetic if seed is None else scramble_after(synthetic, cutoff, seed)
        model = registry()[name](**params).fit(tables, cutoff=cutoff)
        results.append((model.recommend(customers, n=10), model.similar(products, n=5)))
        assert "future-c0" not in model.customers_ and "future-p0" not in model.catalog_.products
    for before, after in zip(*results):
        pd.testing.assert_frame_equal(before, after, check_exact=True)


def test_reranker_labels_come_from_a_window_before_the_cutoff(synthetic, cutoff, monkeypatch):
    windows, builds = [], []
    original_rows = TwoStage._training_rows
    original_build = TrainingData.build.__func__

    def spy_rows(self, tables, start, end, *args, **kwargs):
        windows.append((start, end, max(t["timestamp"].max() for t in tables.values() if "timestamp" in t)))
        return original_rows(self, tables, start, end, *args, **kwargs)

    def spy_build(cls, tables, cutoff_=None, *args, **kwargs):
        builds.append(cutoff_)
        return original_build(cls, tables, cutoff_, *args, **kwargs)

    monkeypatch.setattr(TwoStage, "_training_rows", spy_rows)
    monkeypatch.setattr(TrainingData, "build", classmethod(spy_build))
    TwoStage(**tiny_two_stage(train_windows=2)).fit(synthetic, cutoff=cutoff)
    window, season = pd.Timedelta(days=60), pd.Timedelta(days=364)
    # The window just before the cutoff, the same weeks a season earlier, then the one before the first.
    assert [(s, e) for s, e, _ in windows] == [(cutoff - window, cutoff), (cutoff - season, cutoff - season + window),
                                               (cutoff - 2 * window, cutoff - window)]
    assert all(latest < cutoff for _, _, latest in windows)  # the tables it sees are already cut
    # Generators of each label window are fitted strictly before it; the final ones at the cutoff.
    assert builds == [cutoff - window, cutoff - season, cutoff - 2 * window, cutoff]


def tiny_config() -> dict:
    # One model after the other, in this process: the spies below see every fit.
    peers = {name: {"model": name} for name in ("popularity", "repeat", "itemknn", "bm25", "als", "ease")}
    peers["popularity"]["grid"] = {"window_days": [30, None]}
    peers["als"]["grid"] = {"factors": [4, 8]}
    return {"models": dict(TINY), "clientele": tiny_two_stage(window_days=30),
            "evaluation": {"test_days": 30, "k_recall": 20, "k_ndcg": 10, "k_hit": 10,
                           "select_by": "ndcg@{k_ndcg}", "peers": peers, "workers": 1}}


def test_evaluation_never_lets_the_test_window_into_training(synthetic, monkeypatch):
    start, _ = ev.window_start(synthetic, 30)
    seen: list[tuple[str, pd.Timestamp, pd.Timestamp]] = []
    builds: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    fit_two_stage, fit_data = TwoStage.fit, Recommender.fit_data
    original_build = TrainingData.build.__func__

    def latest(tables):
        return max(t["timestamp"].max() for t in tables.values() if "timestamp" in t)

    def spy_fit(self, tables, cutoff=None, *args, **kwargs):
        seen.append((self.name, pd.Timestamp(cutoff), latest(tables)))
        return fit_two_stage(self, tables, cutoff, *args, **kwargs)

    def spy_build(cls, tables, cutoff_=None, *args, **kwargs):
        builds.append((pd.Timestamp(cutoff_), latest(tables)))
        return original_build(cls, tables, cutoff_, *args, **kwargs)

    def spy_fit_data(self, data, *args, **kwargs):
        # Peers learn from training data built once per window (shared by the grid points).
        seen.append((self.name, data.cutoff, data.cutoff - pd.Timedelta(days=float(data.log.age.min()))))
        return fit_data(self, data, *args, **kwargs)

    monkeypatch.setattr(TwoStage, "fit", spy_fit)
    monkeypatch.setattr(Recommender, "fit_data", spy_fit_data)
    monkeypatch.setattr(TrainingData, "build", classmethod(spy_build))
    results = ev.evaluate_recommenders(synthetic, 30, config=tiny_config())
    assert {name for name, _, _ in seen} >= {"clientele", "popularity", "repeat", "itemknn", "bm25", "als", "ease"}
    for name, cutoff, last in seen:
        assert last < start, f"{name} was given rows from {last}, inside the test window from {start}"
        assert cutoff <= start
    for cutoff, last in builds:
        assert last < start and cutoff <= start
    # Peers were tuned on the validation window: some fits stop a whole window earlier.
    assert any(cutoff == start - pd.Timedelta(days=30) for _, cutoff, _ in seen)
    assert set(results) == {"clientele", "popularity", "repeat", "itemknn", "bm25", "als", "ease"}
    for metrics in results.values():
        for key in ("recall@20", "ndcg@10", "hit@10", "coverage@20", "recall@20_new", "ndcg@10_new",
                    "recall@20_repeat", "ndcg@10_repeat"):
            assert 0.0 <= metrics[key] <= 1.0
    assert "ratio" in ev.best_peer_ratios(results)["ndcg@10"]
    assert "| **clientele** |" in ev.format_table(results)


def test_cli_function_returns_json_and_prints_the_table(tmp_path, synthetic, monkeypatch, capsys):
    import json

    from features.synthetic import write_tables

    write_tables(synthetic, tmp_path / "data")
    monkeypatch.setattr(ev, "load_config", tiny_config)
    result = ev.evaluate_recommender_cli(tmp_path / "data", None, 30, as_json=False)
    printed = capsys.readouterr().out
    assert "| model |" in printed and "clientele / best peer on ndcg@10" in printed
    assert json.loads(json.dumps(result))["clientele"]["ndcg@10"] == result["clientele"]["ndcg@10"]
    # With --json stdout is exactly one JSON object, the same as the returned one.
    monkeypatch.setattr(ev, "evaluate_recommenders", lambda *args, **kwargs: result)
    assert ev.evaluate_recommender_cli(tmp_path / "data", None, 30, as_json=True) == result
    assert json.loads(capsys.readouterr().out) == result


def test_tables_cut_after_their_last_row_share_their_data_and_keep_their_own_changes(synthetic, cutoff):
    from models.recommenders.data import tables_before

    tx = synthetic["transactions"]
    cut = tables_before(synthetic, cutoff)
    assert (cut["transactions"]["timestamp"] < cutoff).all() and len(cut["transactions"]) < len(tx)
    late = tx["timestamp"].max() + pd.Timedelta(days=1)
    whole = tables_before(synthetic, late)
    for name, table in synthetic.items():
        pd.testing.assert_frame_equal(whole[name], table)
    # The fit at the end of the data reads every row: no copy of the tables (gigabytes at a million customers).
    assert np.shares_memory(whole["transactions"]["amount"].to_numpy(), tx["amount"].to_numpy())
    before = tx["amount"].copy()
    whole["transactions"].loc[whole["transactions"].index[0], "amount"] = -1.0
    pd.testing.assert_series_equal(tx["amount"], before)
