"""The two-stage model's generator fits, alone: seconds of the final fit's two stages that fit every generator on
every customer (the first label window's training candidates, the generators at the cutoff), each generator's
fit and the shared builds inside them, and a digest of what the two stages hand on.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_generators.py --customers 300000

Fits the two-stage model on the cached synthetic beauty data of `bench_train.py` as the training job's final fit
does (its configuration, its cutoff at the end of the data, a `GeneratorFits` that holds nothing: past
`evaluation.max_customers` the holdout's generators are not handed over), with a listener on the stages the fit
marks. The reranker is not trained (its inputs are digested instead: this benchmark is about the generators) and
the fit stops where it would rerank every customer. Prints the stages' seconds, each generator's fit (seconds,
by the stage it ran in; fits side by side overlap, so they add up to more than the stage), the training data
builds and candidate features, and sha256 digests of the reranker's
training rows (features, labels, groups) and of the generators fitted at the cutoff (every fitted array): two
runs whose digests match handed the reranker and the reranking the very same numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


class _Stop(Exception):
    pass


def _digest_arrays(digest: "hashlib._Hash", name: str, value: object, depth: int = 0) -> None:
    """Every numpy / scipy.sparse array reachable from ``value`` (attributes, dicts, lists, tuples), in a fixed
    order, into ``digest``."""
    import scipy.sparse as sp

    if depth > 4:
        return
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            value = np.asarray("\x00".join(map(str, value.ravel().tolist())).encode())
        digest.update(f"{name}:{value.dtype.str}:{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif sp.issparse(value):
        value = sp.csr_matrix(value)
        for part in ("indptr", "indices", "data"):
            _digest_arrays(digest, f"{name}.{part}", getattr(value, part), depth + 1)
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            _digest_arrays(digest, f"{name}.{key}", value[key], depth + 1)
    elif isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            _digest_arrays(digest, f"{name}[{k}]", item, depth + 1)
    elif hasattr(value, "__dict__") and not isinstance(value, type) and type(value).__module__.startswith("models"):
        fields = {k: v for k, v in vars(value).items() if not k.startswith("_") or k in ("_pool_unit_t",)}
        _digest_arrays(digest, name, fields, depth + 1)


def run(customers: int, preset: str, seed: int, root: Path) -> None:
    import pandas as pd
    from bench_train import StageMeter, dataset, peak_rss_bytes

    from features.labels import data_end
    from features.progress import listen
    from features.settings import Settings
    from models.ranking import features as ranking_features
    from models.ranking.lambdarank import LambdaRanker
    from models.recommenders import registry
    from models.recommenders import two_stage
    from models.recommenders.attribute_tower import AttributeRecommender
    from models.recommenders.base import Recommender
    from models.recommenders.data import TrainingData
    from training.config import TrainConfig
    from training.data import load_training_data
    from training.evaluate_recommender import OWN
    from training.train import ModelConfigs

    data_dir = dataset(customers, preset, seed, root)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), pseudonym_key="bench-generators-" + "k" * 32)
        config = TrainConfig.load(data=data_dir, preset=preset)
        configs = ModelConfigs.from_train_config(config)
        tables = load_training_data(config, settings).tables
    print(f"loaded {customers:,} customers in {time.perf_counter() - started:.1f} s")
    cutoff = data_end(tables).normalize() + pd.Timedelta(days=1)  # the training job's final fit
    model = registry()[OWN].from_config(configs.recommender, preset=config.preset,
                                        feature_config=configs.features, random_state=configs.seed)

    where: list[str] = ["fit"]
    stages: dict[str, float] = {}
    parts: dict[tuple[str, str], float] = defaultdict(float)

    meter = StageMeter()

    class Listener:
        def started(self, path: tuple[str, ...]) -> None:
            where[0] = path[-1]
            meter.started(path)

        def ended(self, path: tuple[str, ...], seconds: float) -> None:
            stages[path[-1]] = stages.get(path[-1], 0.0) + seconds
            where[0] = "fit"
            meter.ended(path, seconds)

    def timed(label: object, call):  # noqa: ANN001, ANN202
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            begin = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                name = label(args) if callable(label) else label
                parts[(where[0], name)] += time.perf_counter() - begin
        return wrapper

    training = hashlib.sha256()

    def digest_rows(self, features, labels, groups, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        for name, array in (("features", features), ("labels", labels), ("groups", groups)):
            _digest_arrays(training, name, np.asarray(array))
        print(f"reranker's training rows: {len(labels):,} (not trained here)")
        return self

    cutoff_digest = hashlib.sha256()

    def stop(self, gens, data, described, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        for name in sorted(gens):
            _digest_arrays(cutoff_digest, name, gens[name])
        raise _Stop

    build = TrainingData.build.__func__
    TrainingData.build = classmethod(timed("TrainingData.build", build))
    Recommender.fit_data = timed(lambda args: f"fit {type(args[0]).name}", Recommender.fit_data)
    AttributeRecommender.fit_tower = timed("fit attributes (apply the tower)", AttributeRecommender.fit_tower)
    two_stage.CandidateFeatures = timed("CandidateFeatures", ranking_features.CandidateFeatures)
    LambdaRanker.fit = digest_rows
    LambdaRanker.num_trees = lambda self: 0
    two_stage.TwoStage._rerank = stop
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    started = time.perf_counter()
    with listen(Listener()):
        try:
            model.fit(tables, cutoff=cutoff, interactions=configs.features.interactions,
                      fits=two_stage.GeneratorFits())
        except _Stop:
            pass
    seconds = time.perf_counter() - started
    meter.close()
    peaks = {row["stage"].split(" / ")[-1]: row["peak"] for row in meter.rows}
    print(f"\nfit up to reranking every customer: {seconds:.1f} s (peak resident {peak_rss_bytes() / 1e9:.2f} GB)")
    for name in ("training candidates", "reranker", "generators"):
        print(f"  stage {name}: {stages.get(name, 0.0):.1f} s, peak {peaks.get(name, 0) / 1e9:.2f} GB")
    print("\n| stage | step | seconds |\n|---|---|---:|")
    for (stage, name), value in sorted(parts.items(), key=lambda kv: (kv[0][0], -kv[1])):
        print(f"| {stage} | {name} | {value:.2f} |")
    print(f"\nreranker's training rows: sha256 {training.hexdigest()}")
    print(f"generators at the cutoff: sha256 {cutoff_digest.hexdigest()}")


def main() -> None:
    from bench_train import dataset_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    dataset_arguments(parser)
    args = parser.parse_args()
    run(args.customers, args.preset, args.seed, args.data_root)


if __name__ == "__main__":
    main()
