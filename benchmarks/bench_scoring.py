"""Per-customer scoring functions of the training job alone: churn scores, the uplift scorer, home stores.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scoring.py --customers 300000 --repeat 2

The churn model and the uplift scorer are fitted once on a smaller dataset (``--fit-customers``, default 30,000)
and cached beside it (``data/bench/<dataset>-scoring``), so that two versions of the code score the same customers
with the same models: what is timed is ``customer_scores_frame`` (pred_contrib, reasons, probabilities),
``UpliftScorer.score`` (customer features, predictions per offer, reasons) and ``training.export.home_stores``,
each ``--repeat`` times (wall and CPU seconds, the best of them), without the MLflow logging and the Parquet
writes whose time varies by a second or more between runs. Prints a digest of the outputs (equal digests: the same
scores, reasons and homes).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_train import dataset  # noqa: E402


def _prepared(data_dir: Path, preset: str):
    import pandas as pd

    from features.labels import data_end
    from features.pipeline import feature_frame
    from features.settings import Settings
    from training import train
    from training.config import TrainConfig
    from training.data import load_training_data
    from training.export import profiling_allowed

    tmp = tempfile.mkdtemp()
    settings = Settings(data_dir=Path(tmp), pseudonym_key="bench-train-" + "k" * 32)
    config = TrainConfig.load(data=data_dir, preset=preset)
    configs = train.ModelConfigs.from_train_config(config)
    tables = load_training_data(config, settings).tables
    cutoff = data_end(tables).normalize() + pd.Timedelta(days=1)
    features = profiling_allowed(feature_frame(tables, cutoff, None, configs.features))
    return config, configs, tables, cutoff, features


def _fitted(fit_dir: Path, preset: str, out: Path):
    """The churn model and the uplift scorer fitted on ``fit_dir``, cached in ``out``."""
    from features.presets import load_preset
    from models.churn.lightgbm import ChurnModel
    from training import train
    from training.campaigns import UpliftScorer

    if not (out / "uplift.pkl").exists():
        print(f"fitting the churn model and the uplift scorer on {fit_dir.name} once (not timed) ...", flush=True)
        config, configs, tables, cutoff, _ = _prepared(fit_dir, preset)
        horizon = int(load_preset(config.preset)["churn"]["horizon_days"])
        train.fit_churn(tables, cutoff, horizon, configs.churn, configs.features).model.save(out / "churn")
        UpliftScorer.fit(tables, configs.uplift, configs.features, config.preset, configs.seed).save(
            out / "uplift.pkl")
    return ChurnModel.load(out / "churn"), pickle.loads((out / "uplift.pkl").read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--fit-customers", type=int, default=30_000)
    parser.add_argument("--preset", default="beauty")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=ROOT / "data" / "bench")
    args = parser.parse_args()

    from models.churn.lightgbm import customer_scores_frame
    from training.export import home_stores

    fit_dir = dataset(args.fit_customers, args.preset, args.seed, args.data_root)
    churn, uplift = _fitted(fit_dir, args.preset, args.data_root / f"{fit_dir.name}-scoring")
    data_dir = dataset(args.customers, args.preset, args.seed, args.data_root)
    _, configs, tables, cutoff, features = _prepared(data_dir, args.preset)
    steps = {
        "churn scores": lambda: customer_scores_frame(churn, features, configs.churn.reasons.top),
        "uplift score": lambda: uplift.score(tables, cutoff, features["customer_id"]),
        "home stores": lambda: home_stores(tables["transactions"], cutoff),
    }
    digest = hashlib.sha256()
    for name, step in steps.items():
        wall, cpu = [], []
        for _ in range(args.repeat):
            w, c = time.perf_counter(), time.process_time()
            out = step()
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        print(f"{name:<14} {min(wall):7.2f} s wall  {min(cpu):7.2f} s cpu  "
              f"({', '.join(f'{x:.2f}' for x in wall)})", flush=True)
        for column in out.columns:
            digest.update(repr(out[column].tolist()).encode())
    print(f"{len(features):,} customers, digest of the outputs {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
