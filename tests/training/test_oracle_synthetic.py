"""The synthetic presets' ceiling (benchmarks/oracle_synthetic.py): ranking by the true purchase probabilities."""

from __future__ import annotations

from benchmarks.oracle_synthetic import oracle_counts, oracle_lists
from features.synthetic import generate
from models.recommenders import RepeatPurchase
from training.evaluate_recommender import evaluate_model, ranking_metrics, temporal_split, window_start


def test_the_true_probabilities_rank_better_than_a_model_of_the_history():
    tables = generate("grocery", 600, 4)
    start, end = window_start(tables, 30)
    split = temporal_split(tables, start, end)
    counts, realised = oracle_counts("grocery", 600, 4, 60, split)
    lists = oracle_lists(counts, "count_1")
    assert lists.groupby("customer_id")["rank"].max().max() == 20
    assert set(lists["customer_id"]) <= set(split.customers)
    oracle = ranking_metrics(lists, split.target)
    quarter = ranking_metrics(oracle_lists(counts, "count_4"), split.target)
    repeat = evaluate_model(RepeatPurchase().fit(tables, cutoff=start), split, new_variant=False)
    # Told each customer's favourites, regimens and tastes, the oracle leads what the history alone suggests; with
    # a quarter of the redraws its estimate of the probabilities is coarser, and so is its ranking.
    assert oracle["ndcg@10"] > repeat["ndcg@10"] + 0.03, (oracle, repeat)
    assert oracle["recall@20"] > quarter["recall@20"]
    assert len(realised) > 0.9 * len(split.target)
