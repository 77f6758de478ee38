"""The training job's per-customer stages outside the two-stage reranking, each timed alone on cached data.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_linear_stages.py --customers 300000

Runs, in the training job's order and through the functions it calls (``training/train.py``): load, the churn
fit, the features, churn scores and export, the recommender's generators at the cutoff (each generator's fit
timed, then the reranker's candidate features), the recommender's export, CLV and segments (with moments), and
uplift -- into a fresh MLflow store. The fitted two-stage model the export and the moments read is fitted once
per dataset and cached beside the data (``data/bench/<dataset>-model``), since reranking every customer is not
one of these stages. Prints seconds per stage and writes benchmarks/results/linear-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_train import dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--preset", default="beauty")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default="", help="comma-separated stages to time (default: all)")
    args = parser.parse_args()

    import mlflow
    import pandas as pd

    from features.columns import Columns as C
    from features.columns import Tables
    from features.identities import key_check
    from features.labels import data_end
    from features.pipeline import feature_frame
    from features.presets import load_preset
    from features.settings import Settings
    from models.churn.config import ScoringSettings
    from models.churn.lightgbm import customer_scores_frame
    from models.recommenders.base import Recommender
    from models.recommenders.data import TrainingData
    from models.recommenders.two_stage import TwoStage
    from models.ranking.features import CandidateFeatures
    from training.config import TrainConfig
    from training.data import load_training_data
    from training.export import export_churn, profiling_allowed
    from training.pyfunc import pip_requirements
    from training.register import setup_tracking
    from training import train

    only = set(filter(None, args.only.split(",")))
    data_dir = dataset(args.customers, args.preset, args.seed, ROOT / "data" / "bench")
    seconds: dict[str, float] = {}
    # what the later stages read: churn's scores (clv and segments), the features (uplift too)
    needed = {"load"}
    if only & {"churn scores and export", "clv and segments"}:
        needed |= {"churn fit", "features", "churn scores and export"}
    if "uplift" in only:
        needed.add("features")

    def timed(name: str, fn, *a, **kw):
        if only and name not in only and name not in needed:
            return None
        t = time.perf_counter()
        out = fn(*a, **kw)
        seconds[name] = round(time.perf_counter() - t, 2)
        print(f"{name:<32} {seconds[name]:8.2f} s", flush=True)
        return out

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        settings = Settings(data_dir=tmp_path / "data", pseudonym_key="bench-train-" + "k" * 32)
        config = TrainConfig.load(data=data_dir, preset=args.preset)
        configs = train.ModelConfigs.from_train_config(config)
        preset = load_preset(config.preset)
        horizon = int(preset["churn"]["horizon_days"])
        experiment = setup_tracking(settings, "bench-linear")
        data = timed("load", load_training_data, config, settings)
        tables = data.tables
        cutoff = data_end(tables).normalize() + pd.Timedelta(days=1)
        check = key_check(settings.pseudonym_key)
        requirements = pip_requirements()

        model_dir = data_dir.parent / f"{data_dir.name}-model"
        needs_model = not only or bool(only & {"export recommender", "clv and segments"})
        if needs_model and not (model_dir / "model").exists():
            print("fitting the two-stage model once for this dataset (not timed) ...", flush=True)
            model = TwoStage.from_config(configs.recommender, preset=config.preset, feature_config=configs.features,
                                         random_state=configs.seed)
            model.fit(tables, cutoff=cutoff, interactions=configs.features.interactions)
            model.save(model_dir / "model")
        recommender = Recommender.load(model_dir / "model") if needs_model else None

        with mlflow.start_run(experiment_id=experiment):
            fit = timed("churn fit", train.fit_churn, tables, cutoff, horizon, configs.churn, configs.features)
            features = timed("features", lambda: profiling_allowed(
                feature_frame(tables, cutoff, None, configs.features)))

            def churn_scores_and_export():
                scores = customer_scores_frame(fit.model, features, configs.churn.reasons.top)
                churn_dir = tmp_path / "churn"
                fit.model.save(churn_dir / "model")
                ScoringSettings.of(configs.churn, configs.features, horizon).save(churn_dir)
                export_churn(scores, churn_dir / "serving", cutoff, horizon, configs.churn.risk_bands.medium,
                             configs.churn.risk_bands.high, check)
                train._log_model("churn", artifacts={"model": str(churn_dir / "model"),
                                                     "serving": str(churn_dir / "serving")},
                                 signature=train._signature(features.drop(columns=[C.customer_id]),
                                                            scores[["churn_probability"]]),
                                 pip_requirements=requirements)
                return scores

            scores = timed("churn scores and export", churn_scores_and_export)

            def generators():
                model = TwoStage.from_config(configs.recommender, preset=config.preset,
                                             feature_config=configs.features, random_state=configs.seed)
                t = time.perf_counter()
                before = tables_before(tables, cutoff)
                training = TrainingData.build(before, cutoff, configs.features.interactions)
                seconds["generators: training data"] = round(time.perf_counter() - t, 2)
                registry = Recommender._registry
                fitted = set()
                for name, spec in model.params.generators.items():
                    if spec.model == "attributes":
                        continue  # trained once per fit before the earliest label window, not at the cutoff
                    params = {**spec.params, "random_state": configs.seed}
                    same_fit = _fit_key(spec.model, registry[spec.model](**params).get_params())
                    if same_fit in fitted:
                        continue  # differs in scoring only: shares the fit (TwoStage._fit_generators)
                    fitted.add(same_fit)
                    t = time.perf_counter()
                    registry[spec.model](**params).fit_data(
                        training, configs.features.interactions)
                    seconds[f"generators: {name}"] = round(time.perf_counter() - t, 2)
                    print(f"  {name:<30} {seconds[f'generators: {name}']:8.2f} s", flush=True)
                t = time.perf_counter()
                CandidateFeatures(training, before, model.params.features, _vocabularies(before),
                                  model.params.window_days)
                seconds["generators: candidate features"] = round(time.perf_counter() - t, 2)

            from models.recommenders.data import tables_before
            from models.recommenders.two_stage import _fit_key, _vocabularies

            timed("generators", generators)
            timed("export recommender", lambda: train.log_recommender(recommender, tmp_path / "recommender",
                                                                      config.preset, requirements, check))
            # clv and segments, then uplift: the very steps of train._fit_and_log after the recommender
            timed("clv and segments", _clv_and_segments, train, tables, cutoff, horizon, configs, features, scores,
                  recommender, tmp_path, check, requirements)
            timed("uplift", _uplift, train, tables, configs, config, features, cutoff, tmp_path, check,
                  requirements)

    print(json.dumps(seconds, indent=1))
    out = ROOT / "benchmarks" / "results" / f"linear-{args.customers}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(seconds, indent=1))


def _clv_and_segments(train, tables, cutoff, horizon, configs, features, scores, recommender, tmp_path, check,
                      requirements):
    import json as _json

    from features.columns import Columns as C
    from features.columns import Tables
    from models.churn.config import ScoringSettings
    from models.segments import CustomerSegmenter, segment_customers
    from training.churn import clv_frame, fit_clv, summary_of
    from training.export import export_clv
    from training.moments import find_training_moments

    t = time.perf_counter()
    summary = summary_of(tables, cutoff, configs.churn)
    clv_model = fit_clv(tables, cutoff, configs.churn, summary)
    values = clv_frame(clv_model, tables, cutoff, features[C.customer_id], horizon, configs.churn, summary)
    twelve = clv_frame(clv_model, tables, cutoff, features[C.customer_id], 365, configs.churn, summary)
    values["expected_purchases_12m"] = twelve["expected_purchases_horizon"].to_numpy()
    print(f"  clv fit and frames {time.perf_counter() - t:8.2f} s", flush=True)
    t = time.perf_counter()
    segmenter = CustomerSegmenter(horizon_days=horizon, config=configs.segments).fit(
        features, values.set_index(C.customer_id)["clv"])
    segments = segment_customers(features, scores.set_index(C.customer_id)["churn_probability"],
                                 values.set_index(C.customer_id)["clv"], segmenter)
    print(f"  segments {time.perf_counter() - t:8.2f} s", flush=True)
    clv_dir = tmp_path / "clv"
    clv_dir.mkdir(parents=True, exist_ok=True)
    clv_model.save(clv_dir / "model.json")
    (clv_dir / "segments.json").write_text(_json.dumps(segmenter.to_dict()))
    ScoringSettings.of(configs.churn, configs.features, horizon).save(clv_dir)
    t = time.perf_counter()
    moments = find_training_moments(tables, cutoff, configs.segments.moments, features, segmenter, segments, values,
                                    recommender)
    print(f"  moments {time.perf_counter() - t:8.2f} s", flush=True)
    t = time.perf_counter()
    export_clv(values, segments, features, clv_dir / "serving", cutoff, check, moments=moments,
               transactions=tables[Tables.transactions])
    print(f"  export {time.perf_counter() - t:8.2f} s", flush=True)
    t = time.perf_counter()
    train._log_model("clv", artifacts={"model": str(clv_dir / "model.json"), "serving": str(clv_dir / "serving")},
                     signature=train._signature(summary.reset_index(drop=True),
                                                values[["p_alive", "expected_spend", "clv"]]),
                     pip_requirements=requirements)
    print(f"  summary and log {time.perf_counter() - t:8.2f} s", flush=True)


def _uplift(train, tables, configs, config, features, cutoff, tmp_path, check, requirements):
    metrics = {"uplift": {config.promotion.uplift.metric: 0.0}}
    train._fit_and_log_uplift(tables, configs, config, features, cutoff, tmp_path / "uplift", check, metrics,
                              "bench", requirements)


if __name__ == "__main__":
    main()
