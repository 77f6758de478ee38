"""Every customer's reranked lists computed on Dask by customer partition, or by threads side by side in process,
are those of the one-thread fit; the batch export of recommendations on Dask is the in-process export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.recommenders import TwoStage
from tests.models.recommenders.conftest import tiny_two_stage


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def in_process(synthetic, cutoff) -> TwoStage:
    return TwoStage(**tiny_two_stage(workers=1)).fit(synthetic, cutoff=cutoff)


def test_lists_reranked_on_dask_by_customer_partition_are_the_in_process_lists(in_process, synthetic, cutoff, client):
    listed = int((in_process.active_ & in_process.consent_).sum())
    on_dask = TwoStage(**tiny_two_stage(dask_partition_customers=70)).fit(synthetic, cutoff=cutoff, client=client)
    assert listed > 3 * 70  # several partitions, on both workers
    assert set(on_dask.serve_) == set(in_process.serve_)
    for kind, lists in in_process.serve_.items():
        for field, values in lists.items():
            np.testing.assert_array_equal(on_dask.serve_[kind][field], values, err_msg=f"{kind} {field}")
    assert (np.asarray(in_process.serve_["all"]["items"]) >= 0).any()
    customers = in_process.customers_.external_ids[:60]
    pd.testing.assert_frame_equal(on_dask.recommend(customers, n=10), in_process.recommend(customers, n=10))


def test_lists_reranked_by_threads_side_by_side_are_the_one_thread_lists(synthetic, cutoff):
    # TIFU-KNN's two generators share one neighbour search per block: blocks on several threads share it too.
    generators = {**tiny_two_stage()["generators"],
                  "tifu": {"model": "tifu_knn", "candidates": 20, "params": {"neighbours": 20, "alpha": 0.7}},
                  "tifu_neighbours": {"model": "tifu_knn", "candidates": 10, "params": {"neighbours": 20, "alpha": 0.0}}}
    one = TwoStage(**tiny_two_stage(generators=generators, batch_size=25, workers=1)).fit(synthetic, cutoff=cutoff)
    three = TwoStage(**tiny_two_stage(generators=generators, batch_size=25, workers=3)).fit(synthetic, cutoff=cutoff)
    assert int((one.active_ & one.consent_).sum()) > 6 * 25  # more blocks than threads
    assert set(three.serve_) == set(one.serve_)
    for kind, lists in one.serve_.items():
        for field, values in lists.items():
            np.testing.assert_array_equal(three.serve_[kind][field], values, err_msg=f"{kind} {field}")
    assert (np.asarray(one.serve_["all"]["items"]) >= 0).sum() > 100 * 25


def test_lists_reranked_by_the_compiled_reranker_are_the_lightgbm_lists(in_process, synthetic, cutoff, monkeypatch):
    pytest.importorskip("lleaves")
    from models.ranking import lambdarank

    assert in_process.ranker_._compiled is None  # LightGBM's predictions
    monkeypatch.setattr(lambdarank, "COMPILE_AFTER_ROWS", 0)
    compiled = TwoStage(**tiny_two_stage(workers=1)).fit(synthetic, cutoff=cutoff)
    assert isinstance(compiled.ranker_._compiled, list)
    for kind, lists in in_process.serve_.items():
        for field, values in lists.items():
            np.testing.assert_array_equal(compiled.serve_[kind][field], values, err_msg=f"{kind} {field}")


def test_champion_recommendations_on_dask_are_the_in_process_export(in_process, client, tmp_path):
    from training.score import Champions, champion_recommendations

    in_process.save(tmp_path / "recommender" / "model")
    champions = Champions(folders={"recommender": tmp_path / "recommender"}, versions={"recommender": "1"})
    here = champion_recommendations(champions, 8, batch=90)
    there = champion_recommendations(champions, 8, batch=90, client=client)
    assert here[here.columns[0]].nunique() == len(in_process.customers_.external_ids) > 2 * 90
    pd.testing.assert_frame_equal(there, here)


class _Counted:
    """A shared state that counts how many times a process unpickled one."""

    def __init__(self, payload: np.ndarray):
        self.payload = payload

    def __setstate__(self, state: dict) -> None:
        _UNPICKLED.append(1)
        self.__dict__.update(state)


_UNPICKLED: list[int] = []


def _read(shared: _Counted, part: int) -> tuple[int, int, int]:
    import os

    return os.getpid(), len(_UNPICKLED), int(shared.payload[part])


def test_the_shared_state_travels_to_each_worker_once_not_with_each_task(client):
    from features.dask_engine import map_partitions

    out = list(map_partitions(client, _read, _Counted(np.arange(100) * 3), list(range(24))))
    assert [value for _, _, value in out] == [3 * k for k in range(24)]  # in partition order
    assert {count for _, count, _ in out} == {1}
    assert len({pid for pid, _, _ in out}) == 2
