"""Reranking every customer and their reasons, alone: milliseconds per customer of the two steps of the
two-stage model's fit that run once per customer (`TwoStage._rerank`, `TwoStage._precompute_reasons`).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_rerank.py --customers 100000 --prepare
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_rerank.py --customers 100000

`--prepare` fits the two-stage model on the cached synthetic beauty data of `bench_train.py` (the training job's
configuration, at the end of the data) up to the point where it reranks every customer, and keeps that fitted
state (the model with its reranker, the generators at the cutoff, the candidate features) in
data/bench/rerank-<N>.pkl. A run without it loads that state and times the reranked lists of every customer (or
of `--sample` customers, a seeded random share) and their reasons, and prints a digest of the lists; `--save FILE`
writes the lists (an .npz), and `--compare FILE` says whether they are bit-identical to lists saved before.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


class _Captured(Exception):
    pass


def prepare(customers: int, preset: str, seed: int, root: Path, out: Path) -> None:
    from bench_train import dataset

    from features.settings import Settings
    from models.recommenders import registry
    from models.recommenders.two_stage import TwoStage
    from training.config import TrainConfig
    from training.data import load_training_data
    from training.evaluate_recommender import OWN
    from training.train import ModelConfigs

    data_dir = dataset(customers, preset, seed, root)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), pseudonym_key="bench-rerank-" + "k" * 32)
        config = TrainConfig.load(data=data_dir, preset=preset)
        configs = ModelConfigs.from_train_config(config)
        tables = load_training_data(config, settings).tables
    model = registry()[OWN].from_config(configs.recommender, preset=config.preset,
                                        feature_config=configs.features, random_state=configs.seed)

    def capture(self, gens, data, described, users, arrivals, *args, **kwargs):  # noqa: ANN001
        # Customer data: readable by its owner only.
        with open(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            pickle.dump((self, gens, data, described, users, arrivals), f, protocol=pickle.HIGHEST_PROTOCOL)
        raise _Captured

    TwoStage._rerank = capture
    try:
        model.fit(tables, interactions=configs.features.interactions)
    except _Captured:
        print(f"fitted state of {customers:,} customers in {out}")


def run(state: Path, sample: int | None, save: Path | None, compare: Path | None, workers: int | None) -> None:
    from models.tabular import prediction_threads

    with open(state, "rb") as f:
        model, gens, data, described, users, arrivals = pickle.load(f)
    if sample is not None and sample < len(users):
        users = np.sort(np.random.default_rng(0).choice(users, sample, replace=False))
    lists = model._empty_lists(data.n_users, arrivals)
    started = time.perf_counter()
    # As the fit reranks: on the model's ``workers`` threads (one per core by default).
    threads = {"workers": workers or getattr(model.params, "workers", None) or prediction_threads()} \
        if "workers" in inspect.signature(model._rerank).parameters else {}
    model._rerank(gens, data, described, users, arrivals, lists, users, **threads)
    rerank = time.perf_counter() - started
    model.serve_ = lists
    started = time.perf_counter()
    model._precompute_reasons(gens, data, described,
                              **(threads if "workers" in inspect.signature(model._precompute_reasons).parameters
                                 else {}))
    reasons = time.perf_counter() - started
    print(f"{threads or 'one thread'}, {len(users):,} of {data.n_users:,} customers: reranked lists {rerank:.1f} s "
          f"({1000 * rerank / len(users):.3f} ms per customer), reasons {reasons:.1f} s "
          f"({1000 * reasons / data.n_users:.3f} ms per customer, every row)")
    flat = {f"{kind}.{field}": values for kind, fields in lists.items() for field, values in fields.items()}
    digest = hashlib.sha256()
    for key in sorted(flat):
        digest.update(key.encode() + np.ascontiguousarray(flat[key]).tobytes())
    print(f"lists and reasons: sha256 {digest.hexdigest()}")
    if save is not None:
        np.savez(save, **flat)
    if compare is not None:
        before = np.load(compare)
        differ = [k for k in before.files if k not in flat or not np.array_equal(before[k], flat[k],
                                                                                 equal_nan=True)]
        differ += [k for k in flat if k not in before.files]
        print("bit-identical" if not differ else f"DIFFERENT: {differ}")


def main() -> None:
    from bench_train import dataset_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    dataset_arguments(parser)
    parser.add_argument("--prepare", action="store_true", help="fit and keep the state to rerank from")
    parser.add_argument("--sample", type=int, default=None, help="rerank a seeded random share of customers")
    parser.add_argument("--save", type=Path, default=None, help="write the lists to this .npz")
    parser.add_argument("--compare", type=Path, default=None, help="compare the lists with this .npz")
    parser.add_argument("--workers", type=int, default=None, help="reranking threads (default: the model's)")
    args = parser.parse_args()
    state = args.data_root / f"rerank-{args.customers}.pkl"
    if args.prepare:
        prepare(args.customers, args.preset, args.seed, args.data_root, state)
    else:
        run(state, args.sample, args.save, args.compare, args.workers)


if __name__ == "__main__":
    main()
