"""Holdout benchmark: the training job's `evaluate` stage alone on a synthetic beauty retailer, time and peak memory
per stage, and its metrics, with every customer or a bounded sample of them.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_holdout.py --customers 300000
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_holdout.py --customers 100000 --max-customers 50000

The data is `bench_train.py`'s (cached in data/bench/), loaded and pseudonymised as `clientele train` loads it
(:func:`training.data.load_training_data`); the sample is the training job's (:func:`training.data.holdout_sample`,
``--max-customers``: default train.yaml's ``evaluation.max_customers``, 0: every customer), and the holdouts are
:func:`training.train.evaluate_holdout`, the very function the job calls. Prints the stage table and the holdout
metrics, and writes benchmarks/results/holdout-<N>-<bound>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench_train import ROOT, StageMeter, dataset, peak_rss_bytes, table


def run(data: Path, preset: str, max_customers: int | None, seed: int) -> tuple[dict, StageMeter]:
    from features.presets import load_preset
    from features.progress import listen, stage
    from features.settings import Settings
    from models.recommenders.two_stage import GeneratorFits
    from training.config import TrainConfig
    from training.data import holdout_sample, load_training_data
    from training.train import ModelConfigs, evaluate_holdout

    meter = StageMeter()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), pseudonym_key="bench-train-" + "k" * 32)
        config = TrainConfig.load(data=data, preset=preset)
        configs = ModelConfigs.from_train_config(config)
        horizon = int(load_preset(config.preset)["churn"]["horizon_days"])
        validated = load_training_data(config, settings)
        started, cpu = time.perf_counter(), time.process_time()
        with listen(meter):
            with stage("holdout sample"):
                sample = holdout_sample(validated.tables, max_customers, seed)
            with stage("evaluate"):
                metrics, _, _ = evaluate_holdout(
                    sample.apply(validated.tables), configs, horizon, config.evaluation.recommender_test_days,
                    False, test_customers=config.evaluation.recommender_test_customers,
                    fits=None if sample.sampled else GeneratorFits())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    meter.close()
    # CPU seconds (every thread of the process), which other jobs on a shared machine skew far less than the wall.
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "peak_bytes": peak_rss_bytes(),
            "sample": sample.describe(),
            "metrics": metrics}, meter


def main() -> None:
    from training.config import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--max-customers", type=int, default=None,
                        help="the holdout's bound (default: train.yaml's evaluation.max_customers; 0: none)")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--preset", default="beauty")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    parser.add_argument("--data-root", type=Path, default=ROOT / "data" / "bench")
    args = parser.parse_args()
    bound = TrainConfig.load().evaluation.max_customers if args.max_customers is None else args.max_customers or None
    data = dataset(args.customers, args.preset, args.seed, args.data_root)
    summary, meter = run(data, args.preset, bound, args.sample_seed)
    command = (f"OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_holdout.py --customers {args.customers}"
               f" --max-customers {bound or 0} --sample-seed {args.sample_seed}")
    print(table(meter, summary, command))
    print(f"\nCPU seconds: {summary['cpu_seconds']:.1f}; holdout customers: "
          f"{summary['sample']['sampled_customers']:,} of {summary['sample']['customers']:,}")
    for kind, values in summary["metrics"].items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float) and k != "fit_seconds")
        print(f"holdout {kind}: {shown}; customers {values.get('customers', '-')}")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    out = {"customers": args.customers, "max_customers": bound, "preset": args.preset, "seed": args.seed, **summary,
           "stages": meter.rows}
    (results / f"holdout-{args.customers}-{bound or 0}.json").write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
