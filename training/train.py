"""`clientele train`: load -> validate -> features -> fit -> evaluate on the time holdout -> log to MLflow ->
register -> promote.

Every model is evaluated on a holdout at the end of the data (fitted on what came before it), then refitted on
all the data for serving. Registration and alias moves come last, after everything else succeeded, so a run
that fails anywhere leaves the registry exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.types.schema import ColSpec, Schema

from features.columns import Columns as C
from features.columns import Tables
from features.config import FeatureConfig
from features.exceptions import ConfigError
from features.labels import data_end
from features.memory import release_free_memory
from features.pipeline import feature_frame
from features.presets import load_preset
from features.progress import stage, steps
from models.churn.config import ChurnConfig, ScoringSettings
from models.churn.lightgbm import customer_scores_frame
from models.segments import CustomerSegmenter, SegmentConfig, segment_customers
from training.churn import clv_frame, fit_churn, fit_clv, summary_of
from training.config import TrainConfig, flatten
from features.identities import key_check
from training.data import HoldoutSample, ValidatedData, holdout_sample, load_training_data
from training.evaluate_churn import evaluate_churn, evaluation_cutoff, evaluation_report, write_plots
from training.export import export_churn, export_clv, export_recommender, export_uplift, profiling_allowed
from training.moments import find_training_moments
from training.pyfunc import code_paths, pip_requirements, recommender_param_schema
from training.register import (MODEL_KINDS, Candidate, Decision, code_version, log_json, register_and_promote,
                               setup_tracking)
from features.settings import CHURN, CLV, RECOMMENDER, UPLIFT, Settings
from models.uplift.config import UpliftConfig

Progress = Callable[[str], None]
MODEL_CODE = Path(__file__).resolve().parent / "pyfunc_models"


@dataclass
class ModelConfigs:
    """The hyperparameters of every model in a run, as logged (and replayable from the log)."""

    features: FeatureConfig
    churn: ChurnConfig
    recommender: dict[str, Any]
    segments: SegmentConfig
    seed: int
    uplift: UpliftConfig = field(default_factory=UpliftConfig)

    @classmethod
    def from_train_config(cls, config: TrainConfig) -> "ModelConfigs":
        from models.recommenders import registry
        from models.recommenders.config import load_config
        from training.evaluate_recommender import OWN

        churn = ChurnConfig.load(config.churn)
        churn = ChurnConfig.from_dict({**churn.model_dump(), "model": {**churn.model.model_dump(),
                                                                       "random_state": config.seed}})
        recommender = load_config(config.recommender)
        if recommender.get(OWN) is not None:
            registry()[OWN].from_config(recommender)  # checks every generator's and the reranker's settings
        return cls(features=FeatureConfig.load(config.features), churn=churn, recommender=recommender,
                   segments=SegmentConfig.load(config.segments), seed=config.seed,
                   uplift=UpliftConfig.load(config.uplift))

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features.model_dump(mode="json"), "churn": self.churn.model_dump(mode="json"),
                "recommender": self.recommender, "segments": self.segments.model_dump(mode="json"),
                "seed": self.seed, "uplift": self.uplift.model_dump(mode="json")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfigs":
        return cls(features=FeatureConfig.from_dict(data["features"]), churn=ChurnConfig.from_dict(data["churn"]),
                   recommender=data["recommender"], segments=SegmentConfig.from_dict(data["segments"]),
                   seed=int(data["seed"]), uplift=UpliftConfig.from_dict(data.get("uplift")))


@dataclass
class TrainResult:
    run_id: str
    metrics: dict[str, dict[str, Any]]
    decisions: list[Decision]
    fingerprint: dict[str, Any]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    holdout: dict[str, Any] = field(default_factory=dict)  # the customers the holdouts saw (HoldoutSample)


def metric_key(name: str) -> str:
    """MLflow metric names allow letters, digits and ``_-. /``: ``ndcg@10`` becomes ``ndcg_at_10``."""
    return name.replace("@", "_at_").replace("%", "pct")


def holdout_id(fingerprint: dict[str, Any], test_days: int, horizon_days: int,
               test_customers: int | None = None, sample: HoldoutSample | None = None) -> str:
    """Identifies the holdout: the same data, split, sample of customers and of test customers give the same
    id, so metrics are comparable."""
    raw = f"{fingerprint['sha256']}|recommender_test_days={test_days}|churn_horizon_days={horizon_days}"
    if test_customers is not None:
        raw += f"|recommender_test_customers={test_customers}"
    if sample is not None and sample.sampled:
        raw += f"|max_customers={sample.max_customers}|sample_seed={sample.seed}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def evaluate_clv(tables: dict[str, pd.DataFrame], horizon_days: int, config: ChurnConfig) -> dict[str, float]:
    """CLV on the churn holdout: BG/NBD fitted before T+1, expected purchase days in the horizon against the
    purchase days that happened, and expected spend per purchase against the spend that happened."""
    cutoff = evaluation_cutoff(tables, horizon_days)
    summary = summary_of(tables, cutoff, config)
    model = fit_clv(tables, cutoff, config, summary)
    ids = summary.index.to_numpy()
    predicted = clv_frame(model, tables, cutoff, ids, horizon_days, config, summary)
    tx = tables[Tables.transactions]
    window = (tx[C.timestamp] >= cutoff) & (tx[C.timestamp] < cutoff + pd.Timedelta(days=horizon_days))
    if C.is_return in tx.columns:
        window &= ~tx[C.is_return].to_numpy(dtype=bool)
    future = tx.loc[window, [C.customer_id, C.timestamp, C.amount]]
    days = future.assign(day=future[C.timestamp].dt.floor("D")).groupby(C.customer_id)["day"].nunique()
    spend = future.groupby(C.customer_id)[C.amount].sum()
    actual_days = days.reindex(ids).fillna(0).to_numpy(dtype=float)
    actual_spend = spend.reindex(ids).fillna(0).to_numpy(dtype=float)
    expected = predicted["expected_purchases_horizon"].to_numpy(dtype=float)
    expected_value = expected * predicted["expected_spend"].to_numpy(dtype=float)
    return {
        "purchases_mae": float(np.mean(np.abs(expected - actual_days))),
        "purchases_total_ratio": float(expected.sum() / max(actual_days.sum(), 1.0)),
        "spend_mae": float(np.mean(np.abs(expected_value - actual_spend))),
        "purchases_corr": float(np.corrcoef(expected, actual_days)[0, 1]) if actual_days.std() > 0 else 0.0,
    }


def evaluate_holdout(tables: dict[str, pd.DataFrame], configs: ModelConfigs, horizon_days: int, test_days: int,
                     compare_peers: bool, kinds: tuple[str, ...] = MODEL_KINDS, plots_dir: Path | None = None,
                     progress: Progress | None = None, test_customers: int | None = None,
                     fits: Any | None = None) -> tuple[dict[str, dict[str, Any]], list[Path], dict]:
    """Holdout metrics of each model kind (fitted on data before the holdout only), plus plots; the recommenders
    are scored on a random sample of at most ``test_customers`` test customers. The project's recommender leaves
    its generators at the holdout's start in ``fits`` (a :class:`GeneratorFits`) for the fit that follows."""
    metrics: dict[str, dict[str, Any]] = {}
    plots: list[Path] = []
    reports: dict[str, Any] = {}
    if RECOMMENDER in kinds and C.product_id in tables[Tables.transactions].columns:
        from training.evaluate_recommender import OWN, evaluate_recommenders

        say(progress, f"recommender: holdout = the last {test_days} days")
        with stage("recommender holdout"):
            results = evaluate_recommenders(tables, test_days, configs.recommender,
                                            models=None if compare_peers else [OWN], features=configs.features,
                                            test_customers=test_customers, fits=fits)
        metrics[RECOMMENDER] = {k: v for k, v in results[OWN].items() if isinstance(v, (int, float))}
        release_free_memory()
        reports[RECOMMENDER] = results
    if CHURN in kinds:
        say(progress, f"churn: out-of-time evaluation, {horizon_days}-day horizon")
        with stage("churn holdout"):
            evaluation = evaluate_churn(tables, horizon_days, configs.churn, configs.features)
        report = evaluation_report(evaluation)
        metrics[CHURN] = {k: v for k, v in report["clientele"].items() if v is not None}
        reports[CHURN] = report
        if plots_dir is not None:
            plots += write_plots(evaluation, plots_dir)
    if CLV in kinds:
        say(progress, "clv: expected purchases against the holdout")
        with stage("clv holdout"):
            metrics[CLV] = evaluate_clv(tables, horizon_days, configs.churn)
    if UPLIFT in kinds and Tables.campaigns in tables:
        with stage("uplift holdout"):
            uplift = evaluate_uplift_holdout(tables, configs, compare_peers, progress)
        if uplift is not None:
            metrics[UPLIFT], reports[UPLIFT] = uplift
    return metrics, plots, reports


def evaluate_uplift_holdout(tables: dict[str, pd.DataFrame], configs: ModelConfigs, compare_peers: bool,
                            progress: Progress | None = None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The uplift model on the protocol of `clientele evaluate uplift` over the data's past campaigns (outcome:
    any purchase in the response window); None when they cannot teach an effect (no complete campaign, no
    control group, or no purchase in one of the groups)."""
    from features.exceptions import DataError
    from training.evaluate_uplift import PROJECT, evaluate_uplift
    from training.evaluate_uplift import evaluation_report as uplift_report
    from training.uplift_data import from_campaigns

    say(progress, "uplift: randomised splits of the past campaigns")
    try:
        table = from_campaigns(tables, configs.uplift, "campaigns", configs.features)
        evaluation = evaluate_uplift(table.features, table.treatment, table.outcomes["purchased"].to_numpy(),
                                     configs.uplift, "purchased", peers=compare_peers)
    except DataError:
        return None
    report = uplift_report(evaluation)
    return {k: v for k, v in report[PROJECT].items()}, report


def say(progress: Progress | None, message: str) -> None:
    if progress:
        progress(message)


@contextmanager
def _without_integer_hint() -> Iterator[None]:
    """MLflow hints that an integer column cannot hold missing values; ours are counts that are never missing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column",
                                category=UserWarning)
        yield


def _signature(model_input: pd.DataFrame, output: pd.DataFrame) -> Any:
    sample_in = model_input.head(50).reset_index(drop=True)
    sample_out = output.head(50).reset_index(drop=True)
    with _without_integer_hint():
        return infer_signature(sample_in, sample_out)


def _log_model(kind: str, **kwargs: Any) -> Any:
    """``mlflow.pyfunc.log_model`` of ``kind``'s model-from-code entry, with our packages inside the model, so
    it loads wherever its requirements are installed (its input example is inferred again)."""
    with tempfile.TemporaryDirectory() as tmp, _without_integer_hint():
        # MLmodel records where the entry file came from (loading uses the model's own copy): a path into
        # this checkout would read as if the model needed the checkout.
        entry = Path(tmp) / f"{kind}.py"
        shutil.copyfile(MODEL_CODE / f"{kind}.py", entry)
        return mlflow.pyfunc.log_model(name=kind, python_model=str(entry), code_paths=code_paths(), **kwargs)


def log_recommender(model: Any, folder: Path, preset: str, requirements: list[str], pseudonym_check: str) -> Any:
    """Save a fitted recommender, export its serving lists and log both as one pyfunc model to the active run:
    the model and the tables the API serves travel together, so the API answers what the model answers."""
    model.save(folder / "model")
    export_recommender(model, folder / "serving", preset, pseudonym_check)
    # A made-up customer: the example is stored with the model, real ids are not.
    example = pd.DataFrame({C.customer_id: ["example-customer"], "n": [3]})
    signature = _signature(example, model.recommend(list(example[C.customer_id]), n=3))
    signature.inputs = Schema([ColSpec("string", C.customer_id), ColSpec("long", "n", required=False)])
    signature.params = recommender_param_schema()
    return _log_model(RECOMMENDER, artifacts={"model": str(folder / "model"), "serving": str(folder / "serving")},
                      signature=signature,
                      input_example=example, pip_requirements=requirements)


def run_training(config: TrainConfig, settings: Settings, progress: Progress | None = None) -> TrainResult:
    """Run the whole training job; see the module docstring."""
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> float:
        timings[name] = round(time.perf_counter() - t0, 2)
        return time.perf_counter()

    # Every setting is read and checked before any data is loaded or anything is written: a typo in a YAML
    # costs a second, not a training run.
    configs = ModelConfigs.from_train_config(config)
    preset = load_preset(config.preset)
    horizon = int(preset["churn"]["horizon_days"])
    experiment_id = setup_tracking(settings, config.mlflow.experiment)
    t = time.perf_counter()
    say(progress, "loading and validating the data")
    with stage("load"):
        data: ValidatedData = load_training_data(config, settings)
        # The one draw of the customers every holdout below sees (and a champion's replay on this holdout).
        sample = holdout_sample(data.tables, config.evaluation.max_customers, config.evaluation.sample_seed)
    test_days = config.evaluation.recommender_test_days
    holdout = holdout_id(data.fingerprint, test_days, horizon, config.evaluation.recommender_test_customers,
                         sample)
    if sample.sampled:
        say(progress, f"holdout: a sample of {sample.size:,} of the {sample.customers:,} customers "
                      f"(evaluation.max_customers)")
    t = step("load", t)

    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{config.preset}") as run:
        mlflow.log_params({**flatten(config, "train"), **flatten(configs.to_dict()),
                           **flatten(sample.describe(), "holdout")})
        mlflow.set_tags({"clientele.code_version": code_version(), "clientele.data_sha256": data.fingerprint["sha256"],
                         "clientele.holdout": holdout, "clientele.preset": config.preset,
                         "clientele.data_start": data.fingerprint["start"], "clientele.data_end": data.fingerprint["end"]})
        log_json(data.fingerprint, "data/fingerprint.json")
        log_json(_report_without_ids(data.dataset.report()), "data/validation_report.json")
        log_json(configs.to_dict(), "config/models.json")

        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            # The holdout's recommender generators at the holdout's start are those of the final fit's first
            # label window (the same rows before the same day): fitted once, kept between the two.
            from models.recommenders.two_stage import GeneratorFits

            fits = GeneratorFits()
            with stage("evaluate"):
                # A sampled holdout's generators learn from the sample: nothing the final fit could take.
                metrics, plots, reports = evaluate_holdout(
                    sample.apply(data.tables), configs, horizon, test_days, config.evaluation.compare_peers,
                    plots_dir=tmp_path / "plots", progress=progress,
                    test_customers=config.evaluation.recommender_test_customers,
                    fits=None if sample.sampled else fits)
            reports["sample"] = sample.describe()
            for kind, values in metrics.items():
                mlflow.log_metrics({f"{kind}.{metric_key(k)}": float(v) for k, v in values.items()
                                    if isinstance(v, (int, float)) and np.isfinite(v)})
            for path in plots:
                mlflow.log_artifact(str(path), "plots")
            log_json(reports, "evaluation/holdout.json")
            t = step("evaluate", t)

            candidates = _fit_and_log(data, configs, config, settings, preset, horizon, tmp_path, metrics, holdout,
                                      progress, timings, fits)
            t = time.perf_counter()
        rules = {k: getattr(config.promotion, k) for k in MODEL_KINDS}
        with stage("register"):
            champions = champion_values(candidates, rules, settings, data, horizon, test_days, config, progress,
                                        sample)
            say(progress, "registering and promoting")
            decisions = register_and_promote(candidates, rules, settings, run.info.run_id, champions)
        log_json([d.__dict__ for d in decisions], "registry/decisions.json")
        step("register", t)
    return TrainResult(run_id=run.info.run_id, metrics=metrics, decisions=decisions, fingerprint=data.fingerprint,
                       seconds=round(time.perf_counter() - started, 1), timings=timings, holdout=sample.describe())


def champion_values(candidates: list[Candidate], rules: dict[str, Any], settings: Settings, data: ValidatedData,
                    horizon: int, test_days: int, config: TrainConfig,
                    progress: Progress | None, sample: HoldoutSample | None = None) -> dict[str, float | None]:
    """Each current champion's promotion metric on this run's holdout.

    Recorded when the champion was measured on the same holdout (same data, split and sample of customers);
    otherwise its logged configuration is replayed here, fitted on this run's pre-holdout data (of the sampled
    customers) and measured on this holdout, so the comparison is always like for like.
    """
    from mlflow import MlflowClient

    from training.register import champion_run_id, current_champion, recorded_value

    client = MlflowClient()
    out: dict[str, float | None] = {}
    for cand in candidates:
        champion = current_champion(client, settings.model_name(cand.kind))
        if champion is None:
            continue
        value = recorded_value(champion, rules[cand.kind], cand.holdout)
        if value is None:
            run_id = champion_run_id(champion)
            try:
                logged = mlflow.artifacts.load_dict(f"runs:/{run_id}/config/models.json")
            except Exception:  # an older or foreign version without a replayable config
                out[cand.kind] = None
                continue
            say(progress, f"{cand.kind}: replaying champion v{champion.version} on this holdout")
            tables = sample.apply(data.tables) if sample is not None else data.tables
            replayed, _, _ = evaluate_holdout(tables, ModelConfigs.from_dict(logged), horizon, test_days, False,
                                              kinds=(cand.kind,),
                                              test_customers=config.evaluation.recommender_test_customers)
            value = replayed.get(cand.kind, {}).get(rules[cand.kind].metric)
            if value is not None:
                mlflow.log_metric(f"champion_replay.{cand.kind}.{metric_key(rules[cand.kind].metric)}", float(value))
        out[cand.kind] = value
    return out


def _report_without_ids(report: dict[str, Any]) -> dict[str, Any]:
    """The validation report holds counts only; the rejects files (with raw ids) stay on local disk."""
    return {k: v for k, v in report.items() if k != "rejects_files"}


def _fit_and_log(data: ValidatedData, configs: ModelConfigs, config: TrainConfig, settings: Settings,
                 preset: dict[str, Any],
                 horizon: int, tmp: Path, metrics: dict[str, dict[str, Any]], holdout: str,
                 progress: Progress | None, timings: dict[str, float],
                 fits: Any | None = None) -> list[Candidate]:
    """Refit every model on all the data, export serving artefacts and log each model to the run (the
    recommender takes the generators ``fits`` holds for its data)."""
    tables = data.tables
    cutoff = data_end(tables).normalize() + pd.Timedelta(days=1)
    candidates = []
    requirements = pip_requirements()
    check = key_check(settings.pseudonym_key)  # the tables hold pseudonyms made with this key (training.data)

    t = time.perf_counter()
    say(progress, f"churn: fitting for use from {cutoff.date()}")
    marker = steps()

    def step(name: str) -> None:
        release_free_memory()  # what the stage before freed goes back to the OS before the next one's peak
        marker(name)

    step("churn")
    if config.engine == "dask":
        from features.dask_engine import dask_client
        from features.privacy import read_erasures
        from training.churn import fit_churn_on_dask

        with dask_client(config.scheduler) as client:
            fit = fit_churn_on_dask(data.source, config.mapping, horizon, configs.churn, client, configs.features,
                                    cutoff=cutoff, erased=frozenset(read_erasures(settings.erasure_file)),
                                    pseudonym_key=settings.pseudonym_key, fit_attempts=config.dask.fit_attempts,
                                    time_out_minutes=config.dask.lightgbm_time_out_minutes)
    else:
        fit = fit_churn(tables, cutoff, horizon, configs.churn, configs.features)
    step("features")
    features = feature_frame(tables, cutoff, None, configs.features)
    # Customers who refused profiling get no personal scores at all: not computed, not stored, not served.
    features = profiling_allowed(features)
    step("churn scores and export")
    scores = customer_scores_frame(fit.model, features, configs.churn.reasons.top)
    churn_dir = tmp / "churn"
    fit.model.save(churn_dir / "model")
    # What scoring needs besides the fitted models travels with each of them: features, horizon, reasons.
    scoring = ScoringSettings.of(configs.churn, configs.features, horizon)
    scoring.save(churn_dir)
    export_churn(scores, churn_dir / "serving", cutoff, horizon, configs.churn.risk_bands.medium,
                 configs.churn.risk_bands.high, check)
    info = _log_model(CHURN,
                      artifacts={"model": str(churn_dir / "model"), "serving": str(churn_dir / "serving"),
                                 "scoring": str(churn_dir / ScoringSettings.FILE)},
                      signature=_signature(features.drop(columns=[C.customer_id]),
                                           scores[["churn_probability"]]),
                      input_example=features.drop(columns=[C.customer_id]).head(3),
                      pip_requirements=requirements)
    candidates.append(_candidate(CHURN, info.model_uri, config.promotion.churn.metric, metrics, holdout))
    timings["fit_churn"] = round(time.perf_counter() - t, 2)

    recommender = None
    if C.product_id in tables[Tables.transactions].columns:
        from models.recommenders import registry
        from training.evaluate_recommender import OWN

        t = time.perf_counter()
        say(progress, "recommender: fitting on all the data")
        step("recommender")
        # The preset decides the default of exclude_bought; the model carries it to every path that serves it.
        model = registry()[OWN].from_config(configs.recommender, preset=config.preset,
                                            feature_config=configs.features, random_state=configs.seed)
        if config.engine == "dask":
            from features.dask_engine import dask_client

            # The generators and the reranker learn here (whole matrices); every customer's list on the cluster.
            with dask_client(config.scheduler) as client:
                model.fit(tables, cutoff=cutoff, interactions=configs.features.interactions, client=client,
                          fits=fits)
        else:
            model.fit(tables, cutoff=cutoff, interactions=configs.features.interactions, fits=fits)
        if fits is not None:
            fits.clear()  # nothing fits after this one
        recommender = model
        timings["fit_recommender"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        say(progress, "recommender: precomputing recommendations and similar products")
        step("export recommender")
        info = log_recommender(model, tmp / "recommender", config.preset, requirements, check)
        candidates.insert(0, _candidate(RECOMMENDER, info.model_uri, config.promotion.recommender.metric, metrics,
                                        holdout))
        timings["export_recommender"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    say(progress, "clv and segments: fitting")
    step("clv and segments")
    summary = summary_of(tables, cutoff, configs.churn)
    clv_model = fit_clv(tables, cutoff, configs.churn, summary)
    values = clv_frame(clv_model, tables, cutoff, features[C.customer_id], horizon, configs.churn, summary)
    twelve_months = clv_frame(clv_model, tables, cutoff, features[C.customer_id], 365, configs.churn, summary)
    values["expected_purchases_12m"] = twelve_months["expected_purchases_horizon"].to_numpy()
    segmenter = CustomerSegmenter(horizon_days=horizon, config=configs.segments).fit(
        features, values.set_index(C.customer_id)["clv"])
    segments = segment_customers(features, scores.set_index(C.customer_id)["churn_probability"],
                                 values.set_index(C.customer_id)["clv"], segmenter)
    clv_dir = tmp / "clv"
    clv_dir.mkdir(parents=True, exist_ok=True)
    clv_model.save(clv_dir / "model.json")
    (clv_dir / "segments.json").write_text(json.dumps(segmenter.to_dict()))
    scoring.save(clv_dir)
    # Moments to reach out travel with the customer-value model, suggestions from the recommender just fitted.
    found_at = time.perf_counter()
    moments = find_training_moments(tables, cutoff, configs.segments.moments, features, segmenter, segments, values,
                                    recommender)
    timings["moments"] = round(time.perf_counter() - found_at, 2)
    export_clv(values, segments, features, clv_dir / "serving", cutoff, check, moments=moments,
               transactions=tables[Tables.transactions])
    info = _log_model(CLV,
                      artifacts={"model": str(clv_dir / "model.json"),
                                 "segments": str(clv_dir / "segments.json"),
                                 "scoring": str(clv_dir / ScoringSettings.FILE),
                                 "serving": str(clv_dir / "serving")},
                      signature=_signature(summary.reset_index(drop=True),
                                           values[["p_alive", "expected_spend", "clv"]]),
                      input_example=summary.reset_index(drop=True).head(3),
                      pip_requirements=requirements)
    candidates.append(_candidate(CLV, info.model_uri, config.promotion.clv.metric, metrics, holdout))
    timings["fit_clv_segments"] = round(time.perf_counter() - t, 2)

    if UPLIFT in metrics:
        step("uplift")
        t = time.perf_counter()
        say(progress, "uplift: fitting on every past campaign")
        candidates.append(_fit_and_log_uplift(tables, configs, config, features, cutoff, tmp / "uplift", check,
                                              metrics, holdout, requirements))
        timings["fit_uplift"] = round(time.perf_counter() - t, 2)
    marker.close()
    return candidates


def _fit_and_log_uplift(tables: dict[str, pd.DataFrame], configs: ModelConfigs, config: TrainConfig,
                        features: pd.DataFrame, cutoff: pd.Timestamp, folder: Path, pseudonym_check: str,
                        metrics: dict[str, dict[str, Any]], holdout: str, requirements: list[str]) -> Candidate:
    """Fit the uplift scorer on all past campaigns, score every customer who may be profiled as of ``cutoff``
    (with their marketing consent, for contact lists) and log both as one pyfunc model."""
    from features.campaigns import campaign_features
    from features.privacy import marketing_consent
    from training.campaigns import UpliftScorer, campaign_reports

    scorer = UpliftScorer.fit(tables, configs.uplift, configs.features, config.preset, configs.seed)
    scorer.save(folder / "model.pkl")
    scores = scorer.score(tables, cutoff, features[C.customer_id])
    scores[C.consent_marketing] = marketing_consent(scores[C.customer_id], tables.get(Tables.customers))
    # The reports `clientele campaign report` prints, measured on this data, travel with the model for the API.
    export_uplift(scores, folder / "serving", cutoff, pseudonym_check,
                  campaigns=campaign_reports(tables, configs.uplift, config.preset),
                  uplift_basis=scorer.basis(), uplift_note=scorer.note())
    sample = campaign_features(tables, pd.DataFrame({C.customer_id: features[C.customer_id].head(50),
                                                     C.sent_at: cutoff}), configs.features)
    info = _log_model(UPLIFT, artifacts={"model": str(folder / "model.pkl"), "serving": str(folder / "serving")},
                      signature=_signature(sample, scorer.predict(sample)), input_example=sample.head(3),
                      pip_requirements=requirements)
    return _candidate(UPLIFT, info.model_uri, config.promotion.uplift.metric, metrics, holdout)


def _candidate(kind: str, model_uri: str, metric: str, metrics: dict[str, dict[str, Any]], holdout: str) -> Candidate:
    value = metrics.get(kind, {}).get(metric)
    if value is None:
        raise ConfigError(f"promotion.{kind}.metric: '{metric}' is not measured (measured: "
                          f"{', '.join(metrics.get(kind, {}))})")
    return Candidate(kind=kind, model_uri=model_uri, metric=metric, value=float(value), holdout=holdout)
