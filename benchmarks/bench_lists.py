"""Memory of the precomputed lists from their reranking to the serving tables: the peak resident memory and time of
each step of the two-stage model's fit and export that holds every customer's lists, alone.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_rerank.py --customers 300000 --prepare   # once
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lists.py --customers 300000 --sample 30000

From the fitted state `bench_rerank.py --prepare` keeps (data/bench/rerank-<N>.pkl: the model with its reranker,
the generators at the cutoff, the candidate features), runs as the training job does: the reranked lists of every
customer (or of `--sample` of them, a seeded random share: the lists still have a row for every customer), their
reasons, the save of the model and the export of its serving tables (`training.export.export_recommender`). Each
step starts with the memory the step before freed given back to the OS (as the job does) and its peak counted
from there (`/proc/self/clear_refs`); it prints each step's seconds, peak and end resident memory, and a digest of
the saved list files and of the serving tables' Parquet bytes (the same digest: byte-identical outputs).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import hashlib
import inspect
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

GB = 1e9


def _reset_peak() -> None:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM starts again from the resident memory now


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()[:16]


def run(state: Path, sample: int | None, preset: str) -> None:
    from bench_train import peak_rss_bytes, rss_bytes

    from models.recommenders.two_stage import LISTS_DIR
    from models.tabular import prediction_threads
    from training.export import export_recommender

    with open(state, "rb") as f:
        model, gens, data, described, users, arrivals = pickle.load(f)
    if sample is not None and sample < len(users):
        users = np.sort(np.random.default_rng(0).choice(users, sample, replace=False))
    workers = getattr(model.params, "workers", None) or prediction_threads()
    rows = []

    def step(name: str, work) -> None:  # noqa: ANN001
        _reset_peak()
        start_rss, started = rss_bytes(), time.perf_counter()
        work()
        rows.append((name, time.perf_counter() - started, start_rss, peak_rss_bytes(), rss_bytes()))

    # The fit's own storage of the lists: files written block by block where the code has them.
    empty = getattr(model, "_spilled_lists", model._empty_lists)
    finish = getattr(sys.modules[type(model).__module__], "_finish", lambda lists: None)
    threads = {"workers": workers} if "workers" in inspect.signature(model._rerank).parameters else {}

    def rerank() -> None:
        lists = empty(data.n_users, arrivals)
        model._rerank(gens, data, described, users, arrivals, lists, users, **threads)
        finish(lists)
        model.serve_ = lists

    def reasons() -> None:
        model._precompute_reasons(gens, data, described, **threads)
        finish(model.serve_)
        p = model.params  # what the fit keeps after its reasons (TwoStage._fit_lists)
        model.generators_ = {name: gens[name] for name in dict.fromkeys([p.fold_in, p.similar])}
        for name in model._attribute_names():
            model.generators_[name] = gens[name].without_customers()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        step(f"reranked lists ({len(users):,} of {data.n_users:,} customers)", rerank)
        step("reasons", reasons)
        step("save", lambda: model.save(out / "model"))
        step("export", lambda: export_recommender(model, out / "serving", preset, "bench"))
        lists = _digest(sorted((out / "model" / LISTS_DIR).glob("*.npy")))
        tables = _digest(sorted((out / "serving").glob("*.parquet")))
    print("| step | seconds | resident at its start GB | peak GB | at its end GB |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, start_rss, peak, end in rows:
        print(f"| {name} | {seconds:.1f} | {start_rss / GB:.2f} | {peak / GB:.2f} | {end / GB:.2f} |")
    print(f"\nsaved lists sha256 {lists}, serving tables sha256 {tables}")


def main() -> None:
    from bench_train import dataset_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    dataset_arguments(parser)
    parser.add_argument("--sample", type=int, default=None, help="rerank a seeded random share of customers")
    args = parser.parse_args()
    run(args.data_root / f"rerank-{args.customers}.pkl", args.sample, args.preset)


if __name__ == "__main__":
    main()
