"""Models evaluated side by side in worker processes get exactly the metrics and settings of a run one after the
other in this process."""

from __future__ import annotations

from training import evaluate_recommender as ev
from tests.models.recommenders.test_leakage import tiny_config

# Wall times differ from run to run; everything else must not.
TIMES = ("timing", "fit_seconds", "fit_steps")


def test_models_evaluated_in_worker_processes_score_as_one_after_the_other(synthetic):
    config = tiny_config()
    config["evaluation"]["peers"]["ease"]["grid"] = {"l2": [20.0, 200.0]}
    models = ["clientele", "popularity", "als", "ease"]
    # One after the other in a fresh process too, as `clientele evaluate` runs: what earlier tests left in this
    # process (loaded native libraries and their thread settings) is not what is compared.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        alone = pool.submit(ev.evaluate_recommenders, synthetic, 30, config=config, models=models).result()
    config["evaluation"]["workers"] = 2
    lines: list[str] = []
    side_by_side = ev.evaluate_recommenders(synthetic, 30, config=config, models=models, progress=lines.append)
    assert list(side_by_side) == models
    for name in models:
        assert {k: v for k, v in side_by_side[name].items() if k not in TIMES} == \
            {k: v for k, v in alone[name].items() if k not in TIMES}, name
    assert alone["ease"]["params"] in ({"l2": 20.0}, {"l2": 200.0})
    assert sum(line.startswith(tuple(f"{name}: ndcg@10" for name in models)) for line in lines) == len(models)
