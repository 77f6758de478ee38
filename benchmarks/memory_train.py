"""What holds memory in `clientele train`: resident memory at the end of every stage, what the allocator could
give back there, and the objects alive then.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/memory_train.py --customers 100000 [--trim] [--trace]

Runs the very training job ``benchmarks/bench_train.py`` times (same cached data, a fresh MLflow store), with a
listener on the pipeline's stages. At the end of each stage it records the resident memory, then (``--trim``)
asks glibc to return its free heap pages (``malloc_trim(0)``) and records it again: the difference is memory the
process had freed but not given back. It also counts the live objects of the kinds that hold per-customer data
(the tables, the recommender's training data, candidate features, generators kept between fits, the reranker,
the fitted recommender's lists) and sums the numpy / scipy arrays they reach (a memory-mapped array at its full
size, although only the pages read are resident). ``--trace`` also follows Python's
allocations with tracemalloc (numpy's included; LightGBM's and Arrow's native ones are not): the traced peak of
each stage and, at the stages named by ``--snapshot``, the lines holding the most. Tracing slows the run down many
times over (3,000 customers had not finished in 12 minutes on the shared 2-core machine): tiny data only. Prints a Markdown table and writes benchmarks/results/memory-<N>.json.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_train import StageMeter, dataset, peak_rss_bytes, rss_bytes  # noqa: E402

GB = 1e9


def _array_bytes(obj, seen: set[int], depth: int = 0) -> int:
    """numpy and scipy.sparse bytes reachable from ``obj`` through attributes, dicts, lists and tuples (each
    array counted once)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    if id(obj) in seen or depth > 6:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        base = obj.base if isinstance(obj.base, np.ndarray) else None
        if base is not None:
            return _array_bytes(base, seen, depth + 1)
        return obj.nbytes + (sum(sys.getsizeof(x) for x in obj.ravel()[:1000]) * obj.size // max(min(obj.size, 1000), 1)
                             if obj.dtype == object else 0)
    if sp.issparse(obj):
        return sum(_array_bytes(getattr(obj, k), seen, depth + 1) for k in ("data", "indices", "indptr", "row", "col")
                   if hasattr(obj, k))
    if isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
        return int(obj.memory_usage(deep=True).sum()) if isinstance(obj, pd.DataFrame) else int(
            obj.memory_usage(deep=True))
    if isinstance(obj, dict):
        return sum(_array_bytes(v, seen, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_array_bytes(v, seen, depth + 1) for v in obj[:10_000])
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return sum(_array_bytes(v, seen, depth + 1) for v in vars(obj).values())
    if hasattr(obj, "__slots__"):
        return sum(_array_bytes(getattr(obj, k, None), seen, depth + 1) for k in obj.__slots__)
    return 0


def live_objects() -> dict[str, tuple[int, float]]:
    """Kind -> (live instances, GB of arrays they reach) for the kinds that hold per-customer data."""
    import pandas as pd

    from models.ranking.features import CandidateFeatures
    from models.ranking.lambdarank import LambdaRanker
    from models.recommenders.data import TrainingData
    from models.recommenders.two_stage import GeneratorFits, TwoStage

    kinds = {"TwoStage (fitted recommender)": TwoStage, "TwoStage.serve_ (lists)": None,
             "GeneratorFits (kept generators)": GeneratorFits, "TrainingData": TrainingData,
             "CandidateFeatures": CandidateFeatures, "LambdaRanker": LambdaRanker,
             "DataFrame >= 10 MB (tables, frames)": pd.DataFrame}
    out: dict[str, tuple[int, float]] = {}
    objects = gc.get_objects()
    for label, cls in kinds.items():
        if cls is None:
            models = [o for o in objects if isinstance(o, TwoStage) and isinstance(getattr(o, "serve_", None), dict)]
            seen: set[int] = set()
            out[label] = (len(models), sum(_array_bytes(m.serve_, seen) for m in models) / GB)
            continue
        found = [o for o in objects if isinstance(o, cls)]
        seen = set()
        if cls is pd.DataFrame:
            sizes = [int(o.memory_usage(deep=True).sum()) for o in found]
            big = [s for s in sizes if s >= 10e6]
            out[label] = (len(big), sum(big) / GB)
        else:
            out[label] = (len(found), sum(_array_bytes(o, seen) for o in found) / GB)
    del objects
    return out


class MemoryProbe(StageMeter):
    """:class:`StageMeter` plus, at the end of each stage, the resident memory, what ``malloc_trim`` gave back
    and (top-level stages) the live objects."""

    def __init__(self, trim: bool, trace: bool, snapshots: set[str]):
        super().__init__()
        self.trim, self.trace, self.snapshots = trim, trace, snapshots
        self._libc = ctypes.CDLL("libc.so.6") if trim else None
        self.tops: dict[str, list[str]] = {}

    def started(self, path: tuple[str, ...]) -> None:
        super().started(path)
        if self.trace:
            tracemalloc.reset_peak()

    def ended(self, path: tuple[str, ...], seconds: float) -> None:
        super().ended(path, seconds)
        row = self.rows[-1] if self.rows[-1]["stage"] == " / ".join(path) else \
            next(r for r in reversed(self.rows) if r["stage"] == " / ".join(path))
        t0 = time.perf_counter()
        row["end"] = rss_bytes()
        if self.trace:
            current, peak = tracemalloc.get_traced_memory()
            row["traced_end"], row["traced_peak"] = current, peak
        if len(path) <= 2:
            row["objects"] = live_objects()
        if self.trim:
            gc.collect()
            self._libc.malloc_trim(0)
            row["trimmed"] = rss_bytes()
        if self.trace and path[-1] in self.snapshots:
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            lines = []
            for stat in snap.statistics("traceback")[:15]:
                frames = [f"{Path(f.filename).relative_to(ROOT) if f.filename.startswith(str(ROOT)) else Path(f.filename).name}:{f.lineno}"
                          for f in stat.traceback if "site-packages" not in f.filename][:3]
                lines.append(f"{stat.size / GB:.3f} GB  {' <- '.join(frames)}")
            self.tops[" / ".join(path)] = lines
        row["probe_seconds"] = round(time.perf_counter() - t0, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--preset", default="beauty")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-root", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) at the end of every stage")
    parser.add_argument("--trace", action="store_true", help="follow allocations with tracemalloc")
    parser.add_argument("--snapshot", action="append", default=[],
                        help="stage name whose end is snapshotted (with --trace; repeatable)")
    args = parser.parse_args()
    data = dataset(args.customers, args.preset, args.seed, args.data_root)

    from features.progress import listen
    from features.settings import Settings
    from training.config import TrainConfig
    from training.train import run_training

    if args.trace:
        tracemalloc.start(12)
    probe = MemoryProbe(args.trim, args.trace, set(args.snapshot))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), pseudonym_key="bench-train-" + "k" * 32)
        config = TrainConfig.load(data=data, preset=args.preset)
        started = time.perf_counter()
        with listen(probe):
            run_training(config, settings)
        seconds = time.perf_counter() - started
    probe.close()
    head = "| stage | seconds | peak GB | end GB |" + (" after trim GB |" if args.trim else "") + \
        (" traced peak GB |" if args.trace else "")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in probe.rows:
        label = "&nbsp;&nbsp;" * row["depth"] * 2 + row["stage"].split(" / ")[-1]
        cells = [label, f"{row['seconds']:.1f}", f"{row['peak'] / GB:.2f}", f"{row['end'] / GB:.2f}"]
        if args.trim:
            cells.append(f"{row['trimmed'] / GB:.2f}")
        if args.trace:
            cells.append(f"{row['traced_peak'] / GB:.2f}")
        print("| " + " | ".join(cells) + " |")
    print(f"\ntotal {seconds:.1f} s, peak {peak_rss_bytes() / GB:.2f} GB\n\nlive objects at the end of each stage "
          "(instances, GB of arrays they reach):")
    for row in probe.rows:
        if "objects" in row:
            print(f"- {row['stage']}: " + "; ".join(f"{k} {n} / {g:.2f}" for k, (n, g) in row["objects"].items() if n))
    for name, lines in probe.tops.items():
        print(f"\ntracemalloc at the end of {name}:")
        print("\n".join(lines))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"memory-{args.customers}.json").write_text(json.dumps(
        {"customers": args.customers, "seconds": round(seconds, 1), "peak_bytes": peak_rss_bytes(),
         "trim": args.trim, "trace": args.trace, "stages": probe.rows, "tracemalloc": probe.tops},
        indent=1, default=str))


if __name__ == "__main__":
    main()
