"""`clientele train` end to end on small synthetic data, with a real MLflow SQLite store and registry."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from features.presets import CONFIG_DIR
from training.config import TrainConfig
from features.settings import Settings
from training.train import run_training

KINDS = ("recommender", "churn", "clv", "uplift")  # uplift: learned from the synthetic data's past campaigns


def light_recommender_config(path: Path) -> Path:
    """The shipped recommender config with a lighter two-stage model, so a test run takes seconds."""
    config = yaml.safe_load((CONFIG_DIR / "recommender.yaml").read_text())
    gens = config["clientele"]["generators"]
    config["clientele"]["generators"] = {k: gens[k] for k in ("repeat", "bm25", "itemknn", "popularity") if k in gens}
    # New arrivals by their attributes, with a small attribute model.
    config["clientele"]["generators"]["attributes"] = {"model": "attributes", "candidates": 10,
                                                       "params": {"tower": {"dims": 16, "steps": 60}}}
    config["clientele"]["ranker"] = {**(config["clientele"].get("ranker") or {}), "n_estimators": 60,
                                     "early_stopping_rounds": 10}
    config["clientele"].update({"serve_depth": 20, "similar_depth": 10})
    path.write_text(yaml.safe_dump(config))
    return path


def write_config(folder: Path, name: str, churn: dict | None = None, recommender: dict | None = None,
                 clv_penalizer: float | None = None, seed: int = 0, linked_share: float = 0.0) -> Path:
    churn_cfg = yaml.safe_load((CONFIG_DIR / "churn.yaml").read_text()) or {}
    churn_cfg.setdefault("model", {}).update(churn or {})
    churn_cfg.setdefault("training", {}).update({"max_cutoffs": 6})
    if clv_penalizer is not None:
        churn_cfg.setdefault("clv", {})["penalizer"] = clv_penalizer
    (folder / f"{name}-churn.yaml").write_text(yaml.safe_dump(churn_cfg))
    rec = light_recommender_config(folder / f"{name}-recommender.yaml")
    if recommender:
        cfg = yaml.safe_load(rec.read_text())
        cfg["clientele"]["ranker"].update(recommender)
        rec.write_text(yaml.safe_dump(cfg))
    train = {"seed": seed, "synthetic": {"preset": "beauty", "customers": 800, "seed": 3, "out": str(folder / "demo"),
                                         "linked_share": linked_share},
             "churn": str(folder / f"{name}-churn.yaml"), "recommender": str(rec)}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(train))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    settings = Settings(data_dir=folder / "data", mlflow_tracking_uri=f"sqlite:///{folder}/mlflow.db")
    first = run_training(TrainConfig.load(write_config(folder, "base")), settings)
    return folder, settings, first


def versions(name: str) -> list:
    return MlflowClient().search_model_versions(f"name='{name}'")


def test_first_run_registers_every_champion_with_everything_logged(store):
    folder, settings, result = store
    client = MlflowClient()
    for kind in KINDS:
        name = settings.model_name(kind)
        champion = client.get_model_version_by_alias(name, "champion")
        assert str(champion.version) == "1"
        assert champion.tags["clientele.metric"] and float(champion.tags["clientele.metric_value"]) >= 0
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["clientele.data_sha256"] == result.fingerprint["sha256"]
    assert run.data.tags["clientele.code_version"] != ""
    assert run.data.params["train.seed"] == "0" and "churn.model.num_leaves" in run.data.params
    assert {"recommender.ndcg_at_10", "churn.roc_auc", "churn.brier", "clv.purchases_mae",
            "uplift.qini_auc", "uplift.uplift_at_30"} <= set(run.data.metrics)
    uplift = {d.kind: d for d in result.decisions}["uplift"]
    assert uplift.metric == "qini_auc" and uplift.value == pytest.approx(result.metrics["uplift"]["qini_auc"])
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"plots/churn_roc_pr.png", "plots/churn_calibration.png", "plots/churn_lift_gain.png",
            "plots/churn_shap_summary.png"} <= artifacts
    fingerprint = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/data/fingerprint.json")
    assert fingerprint["rows"]["transactions"] > 1000


def test_customer_ids_never_appear_in_params_tags_or_artifact_names(store):
    folder, settings, result = store
    import pandas as pd

    ids = set(pd.read_parquet(folder / "demo" / "customers.parquet")["customer_id"])
    client = MlflowClient()
    run = client.get_run(result.run_id)
    texts = list(run.data.params) + list(run.data.params.values()) + list(run.data.tags.values())

    def walk(path: str = "") -> list[str]:
        out = []
        for item in client.list_artifacts(result.run_id, path):
            out.append(item.path)
            if item.is_dir:
                out += walk(item.path)
        return out

    texts += walk()
    leaked = [t for t in texts if any(cid in str(t) for cid in ids)]
    assert not leaked


def _strings_in(path: Path) -> set[str]:
    """Every text value a file holds: table cells, arrays, and the printable runs of anything else."""
    import re

    import numpy as np
    import pandas as pd

    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        out = set()
        for col in frame.columns:
            for value in frame[col].dropna().tolist():
                out.update(map(str, value) if isinstance(value, (list, np.ndarray)) else [str(value)])
        return out
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=True) as arrays:
            return {str(v) for name in arrays.files for v in np.asarray(arrays[name]).ravel()
                    if arrays[name].dtype.kind in "OSU"}
    return {m.decode("latin-1") for m in re.findall(rb"[\x20-\x7e]{4,}", path.read_bytes())}


def test_mlflow_holds_pseudonyms_only_and_the_identity_map_names_them(store):
    """Every artefact of every registered version and the tracking database itself: no customer's own id,
    anywhere. The data folder's identity map (private) turns the served pseudonyms back into own ids."""
    import os
    import stat

    import pandas as pd

    from features.privacy import pseudonymise

    folder, settings, _ = store
    ids = set(pd.read_parquet(folder / "demo" / "customers.parquet")["customer_id"])
    found: dict[str, set[str]] = {}
    files = [p for p in settings.artifact_root.rglob("*") if p.is_file()]
    files.append(Path(settings.tracking_uri.removeprefix("sqlite:///")))
    assert any(p.name == "recommendations.parquet" for p in files) and any(p.suffix == ".npz" for p in files)
    for path in files:
        strings = _strings_in(path)
        hits = {cid for cid in ids if cid in strings or any(cid in s for s in strings if len(s) < 4096)}
        if hits:
            found[str(path)] = hits
    assert not found, found
    served = pd.read_parquet(next(settings.artifact_root.rglob("scores.parquet")))  # churn or CLV
    assert len(served) > 100 and not set(served["customer_id"]) & ids
    identities = settings.identities()
    assert stat.S_IMODE(os.stat(identities.path).st_mode) == 0o600
    sample = sorted(ids)[:5]
    own = identities.resolve([pseudonymise(c, settings.pseudonym_key) for c in sample])
    assert own.tolist() == sample
    assert set(identities.resolve(served["customer_id"]).tolist()) <= ids


def test_served_models_load_from_the_registry_and_predict(store, monkeypatch):
    folder, settings, result = store
    monkeypatch.setenv("CLIENTELE_DATA_DIR", str(settings.data_dir))  # the installation the model answers for
    import pandas as pd

    churn = mlflow.pyfunc.load_model(f"models:/{settings.model_name('churn')}@champion")
    from features.io import load_dataset
    from features.pipeline import feature_frame

    tables = load_dataset(folder / "demo").tables
    frame = feature_frame(tables, pd.Timestamp("2025-06-01"))
    probabilities = churn.predict(frame.drop(columns=["customer_id"]))["churn_probability"]
    assert len(probabilities) == len(frame) and probabilities.between(0, 1).all()
    rec = mlflow.pyfunc.load_model(f"models:/{settings.model_name('recommender')}@champion")
    out = rec.predict(pd.DataFrame({"customer_id": frame["customer_id"].head(3), "n": 5}))
    assert len(out) == 15 and set(out["customer_id"]) == set(frame["customer_id"].head(3))

    from features.campaigns import campaign_features

    uplift = mlflow.pyfunc.load_model(f"models:/{settings.model_name('uplift')}@champion")
    sends = pd.DataFrame({"customer_id": frame["customer_id"].head(20), "sent_at": pd.Timestamp("2025-06-01")})
    scored = uplift.predict(campaign_features(tables, sends))
    assert list(scored.columns) == ["uplift", "incremental_spend", "expected_incremental_value", "best_offer",
                                    "p_purchase_if_contacted", "p_purchase_if_not", "uplift_basis"]
    assert len(scored) == 20 and scored["uplift"].between(-1, 1).all()
    assert scored["p_purchase_if_not"].between(0, 1).all() and scored["p_purchase_if_contacted"].between(0, 1).all()
    # Its serving table carries every customer's marketing consent, for contact lists.
    served = pd.read_parquet(next(Path(mlflow.artifacts.download_artifacts(
        f"models:/{settings.model_name('uplift')}@champion")).rglob("scores.parquet")))
    consent = tables["customers"].set_index("customer_id")["consent_marketing"].fillna(False).astype(bool)
    own = settings.identities().resolve(served["customer_id"])  # the table holds pseudonyms
    assert served["consent_marketing"].tolist() == consent.reindex(own).tolist()


def test_same_seed_same_metrics_and_a_tie_does_not_replace_the_champion(store):
    folder, settings, first = store
    second = run_training(TrainConfig.load(folder / "base.yaml"), settings)
    for kind in KINDS:
        for metric, value in first.metrics[kind].items():
            if metric != "fit_seconds":
                assert second.metrics[kind][metric] == pytest.approx(value, rel=1e-9, abs=1e-12), (kind, metric)
    client = MlflowClient()
    for decision in second.decisions:
        assert decision.alias == "challenger" and "does not beat" in decision.reason
        assert str(client.get_model_version_by_alias(decision.name, "champion").version) == "1"


def test_a_worse_config_leaves_the_champion_and_becomes_challenger(store):
    folder, settings, first = store
    worse = write_config(folder, "worse", churn={"n_estimators": 1, "num_leaves": 2},
                         recommender={"n_estimators": 1, "num_leaves": 2, "min_child_samples": 1000},
                         clv_penalizer=1e6)
    result = run_training(TrainConfig.load(worse), settings)
    client = MlflowClient()
    for decision in result.decisions:
        assert decision.alias == "challenger", decision
        assert str(client.get_model_version_by_alias(decision.name, "champion").version) == "1"
        assert str(client.get_model_version_by_alias(decision.name, "challenger").version) == decision.version
    by_kind = {d.kind: d for d in result.decisions}
    assert by_kind["churn"].value < first.metrics["churn"]["roc_auc"]
    assert by_kind["recommender"].value < first.metrics["recommender"]["ndcg@10"]
    assert by_kind["clv"].value > first.metrics["clv"]["purchases_mae"]  # lower is better


def test_a_crash_mid_run_leaves_the_registry_untouched(store, monkeypatch):
    folder, settings, _ = store
    before = {kind: sorted(str(v.version) for v in versions(settings.model_name(kind))) for kind in KINDS}
    champions = {kind: str(MlflowClient().get_model_version_by_alias(settings.model_name(kind), "champion").version)
                 for kind in KINDS}

    def broken(*args, **kwargs):
        raise RuntimeError("worker lost while fitting")

    # The final churn fit comes after the holdout evaluation has been logged to the run.
    monkeypatch.setattr("training.train.fit_churn", broken)
    with pytest.raises(RuntimeError, match="worker lost"):
        run_training(TrainConfig.load(folder / "base.yaml"), settings)
    after = {kind: sorted(str(v.version) for v in versions(settings.model_name(kind))) for kind in KINDS}
    assert after == before
    for kind in KINDS:
        champion = MlflowClient().get_model_version_by_alias(settings.model_name(kind), "champion")
        assert str(champion.version) == champions[kind]
    runs = mlflow.search_runs(experiment_names=["clientele"], order_by=["start_time DESC"], max_results=1)
    assert runs.iloc[0]["status"] == "FAILED"


def test_forced_promotion_and_listing(store):
    folder, settings, _ = store
    from training.register import list_models, promote

    name = settings.model_name("churn")
    latest = max(int(v.version) for v in versions(name))
    message = promote(name, str(latest), settings)
    assert f"v{latest} is champion" in message
    rows = [r for r in list_models(settings) if r["model"] == name]
    assert {r["version"] for r in rows if "champion" in r["aliases"]} == {str(latest)}
    assert {r["version"] for r in rows if "challenger" in r["aliases"]} == {"1"}
    promote(name, "1", settings)  # put it back for any later test
    json.dumps(rows)  # listing is plain data


def test_batch_scoring_exports_and_rescoring_agree_on_both_engines(store, tmp_path):
    """The champions' precomputed scores equal a rescoring of the same data, on pandas and on Dask."""
    import pandas as pd

    from features.dask_engine import run_bucketed
    from features.io import load_dataset
    from features.labels import data_end
    from training.score import (ScoringModels, bucket_scores, download_champions, name_customers,
                                precomputed_scores, score_customers)

    folder, settings, _ = store
    champions = download_champions(settings, tmp_path)
    exported, unnamed = name_customers(precomputed_scores(champions), settings.identities())
    exported = exported.set_index("customer_id").sort_index()
    assert unnamed == 0
    models = ScoringModels.from_champions(champions)
    tables = load_dataset(folder / "demo").tables
    rescored = score_customers(tables, data_end(tables).normalize() + pd.Timedelta(days=1),
                               models).set_index("customer_id").sort_index()
    assert exported.index.equals(rescored.index)
    for col in ("churn_probability", "clv", "p_alive", "value_at_risk"):
        pd.testing.assert_series_equal(exported[col], rescored[col], check_names=False)
    for col in ("risk_band", "rfm_segment", "lifecycle_stage", "value_tier", "churn_reasons"):
        assert (exported[col].map(_cell) == rescored[col].map(_cell)).all(), col
    # The workers get the loaded models, not paths into the client's download folder (on a real cluster they
    # cannot see it): gone, it changes nothing.
    import shutil

    shutil.rmtree(tmp_path)
    run = run_bucketed(folder / "demo", None, bucket_scores,
                       {"models": models}, n_buckets=3, workers=2)
    on_dask = pd.concat([r for r in run.results if len(r)]).set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(on_dask, rescored)


def test_batch_recommendations_are_the_registered_models_answers(store, tmp_path, monkeypatch):
    """`clientele score` recommends through the model's policy, as the registered model and the API do: no raw
    precomputed list, no out-of-stock product, non-personal lists for customers who refused profiling."""
    import pandas as pd

    from features.i18n import localise_frame
    from training.score import champion_recommendations, download_champions, name_customers

    folder, settings, _ = store
    monkeypatch.setenv("CLIENTELE_DATA_DIR", str(settings.data_dir))  # the installation the model answers for
    champions = download_champions(settings, tmp_path)
    recs, unnamed = name_customers(champion_recommendations(champions, n=5, batch=300), settings.identities())
    assert unnamed == 0
    model = champions.recommender()
    assert recs["customer_id"].nunique() == len(model.customers_) and recs.groupby("customer_id").size().max() == 5
    stock = dict(zip(model.catalog_.products.external_ids, model.catalog_.in_stock))
    assert all(stock[p] for p in recs["product_id"])
    customers = pd.read_parquet(folder / "demo" / "customers.parquet")
    refused = set(customers.loc[customers["consent_profiling"] == False, "customer_id"])  # noqa: E712
    assert set(recs.loc[recs["customer_id"].isin(refused), "strategy"]) == {"non_personal"}
    sample = list(recs["customer_id"].drop_duplicates()[::40])
    loaded = mlflow.pyfunc.load_model(f"models:/{settings.model_name('recommender')}@champion")
    predicted = loaded.predict(pd.DataFrame({"customer_id": sample, "n": [5] * len(sample)}))
    mine = localise_frame(recs[recs["customer_id"].isin(sample)]).set_index(["customer_id", "rank"]).sort_index()
    theirs = predicted.set_index(["customer_id", "rank"]).sort_index()
    pd.testing.assert_frame_equal(mine[["product_id", "score", "reason", "strategy"]],
                                  theirs[["product_id", "score", "reason", "strategy"]], check_dtype=False)

    # A store campaign's options reach the registered model as params and are decided by the same policy.
    from models.recommenders.filters import Filters

    shelf = pd.read_parquet(folder / "demo" / "inventory.parquet")
    store_id = str(shelf["store_id"].value_counts().index[0])
    filters = Filters(channel="store", store_id=store_id, availability="order_online")
    options = {"channel": "store", "store_id": store_id, "availability": "order_online", "lang": "zh-CN"}
    asked = sample[:6]
    mine = name_customers(champion_recommendations(champions, n=5, filters=filters), settings.identities())[0]
    mine = localise_frame(mine[mine["customer_id"].isin(asked)], "zh-CN").set_index(["customer_id", "rank"])
    theirs = loaded.predict(pd.DataFrame({"customer_id": asked, "n": [5] * len(asked)}), params=options)
    theirs = theirs.set_index(["customer_id", "rank"])
    pd.testing.assert_frame_equal(mine.sort_index()[["product_id", "score", "reason", "strategy"]],
                                  theirs.sort_index()[["product_id", "score", "reason", "strategy"]], check_dtype=False)
    default = predicted.set_index(["customer_id", "rank"]).loc[asked].sort_index()
    assert not default["product_id"].equals(theirs.sort_index()["product_id"]), "the options changed nothing"
    with pytest.raises(Exception, match="availability"):
        loaded.predict(pd.DataFrame({"customer_id": asked[:1]}), params={"store_id": store_id, "availability": "x"})


def test_customers_without_profiling_consent_get_no_scores(store, tmp_path):
    import pandas as pd

    from training.score import download_champions, name_customers, precomputed_scores

    folder, settings, _ = store
    customers = pd.read_parquet(folder / "demo" / "customers.parquet")
    refused = set(customers.loc[customers["consent_profiling"] == False, "customer_id"])  # noqa: E712
    assert refused, "the synthetic data should hold customers who refused profiling"
    scores, _ = name_customers(precomputed_scores(download_champions(settings, tmp_path)), settings.identities())
    assert len(scores) > 100 and not refused & set(scores["customer_id"])


def test_rescoring_uses_the_settings_the_champions_were_trained_with(store, tmp_path, monkeypatch):
    """A project's configs/ changed after training (feature windows, reasons, risk bands) changes nothing the
    champions score: their settings travel with them."""
    import pandas as pd

    from features.config import FeatureConfig
    from features.io import load_dataset
    from features.labels import data_end
    from models.churn.config import ChurnConfig
    from training.score import ScoringModels, download_champions, name_customers, precomputed_scores, score_customers

    folder, settings, _ = store
    champions = download_champions(settings, tmp_path / "champions")
    exported = name_customers(precomputed_scores(champions), settings.identities())[0].set_index(
        "customer_id").sort_index()
    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / "configs" / "features.yaml").write_text(yaml.safe_dump(
        {"customer": {"windows_days": [30, 60], "event_windows_days": [7]},
         "interactions": {"half_life_days": 10}}))
    (project / "configs" / "churn.yaml").write_text(yaml.safe_dump(
        {"reasons": {"top": 1}, "risk_bands": {"medium": 0.01, "high": 0.02}}))
    monkeypatch.chdir(project)
    assert FeatureConfig.load().customer.windows_days == (30, 60)  # today's configs do say otherwise
    assert ChurnConfig.load().reasons.top == 1
    models = ScoringModels.from_champions(champions)
    assert models.churn.features == FeatureConfig() and models.churn.reasons.top == 3
    tables = load_dataset(folder / "demo").tables
    rescored = score_customers(tables, data_end(tables).normalize() + pd.Timedelta(days=1),
                               models).set_index("customer_id").sort_index()
    assert exported.index.equals(rescored.index)
    pd.testing.assert_series_equal(exported["churn_probability"], rescored["churn_probability"], check_names=False)
    for col in ("risk_band", "churn_reasons", "rfm_segment", "lifecycle_stage"):
        assert (exported[col].map(_cell) == rescored[col].map(_cell)).all(), col
    assert rescored["churn_reasons"].map(len).max() == 3


def test_batch_scores_carry_marketing_consent_and_uplift(store, tmp_path):
    """`clientele score` rows say whether each customer may be contacted (never true without a yes on record) and
    carry the uplift champion's expected incremental value and best offer."""
    import pandas as pd

    from training.score import download_champions, name_customers, precomputed_scores

    folder, settings, _ = store
    scores, _ = name_customers(precomputed_scores(download_champions(settings, tmp_path)), settings.identities())
    customers = pd.read_parquet(folder / "demo" / "customers.parquet").set_index("customer_id")
    agreed = customers["consent_marketing"].reindex(scores["customer_id"]).fillna(False).astype(bool).to_numpy()
    contactable = scores["consent_marketing"].fillna(False).astype(bool).to_numpy()
    assert contactable.any() and not (contactable & ~agreed).any()
    assert scores["expected_incremental_value"].notna().any() and scores["best_offer"].notna().any()


def _cell(value):
    """A cell compared as text: lists of reasons (arrays when read back from Parquet) joined."""
    return value if isinstance(value, str) or value is None else "; ".join(map(str, value))


def test_a_store_past_the_holdout_bound_is_evaluated_on_one_recorded_sample(store):
    """Every holdout sees the one sample of customers, which MLflow and the report record; the champion (the same
    settings, measured on every customer) is replayed on that very sample: the same figure as this run's."""
    folder, settings, first = store
    config = yaml.safe_load((folder / "base.yaml").read_text())
    config["evaluation"] = {"max_customers": 500}
    path = folder / "sampled.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_training(TrainConfig.load(path), settings)
    assert not first.holdout["sampled"] and first.holdout["sampled_customers"] == first.holdout["customers"]
    assert result.holdout["sampled"] and result.holdout["sampled_customers"] == 500
    assert result.holdout["customers"] == first.holdout["customers"] > 500
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.data.params["holdout.sampled_customers"] == "500"
    assert run.data.params["train.evaluation.max_customers"] == "500"
    report = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/evaluation/holdout.json")
    assert report["sample"] == json.loads(json.dumps(result.holdout))
    assert run.data.tags["clientele.holdout"] != client.get_run(first.run_id).data.tags["clientele.holdout"]
    rec, every = result.metrics["recommender"], first.metrics["recommender"]
    assert rec["test_customers"] < every["test_customers"]
    for kind in ("recommender", "churn", "clv"):
        metric = {d.kind: d.metric for d in result.decisions}[kind]
        replayed = run.data.metrics[f"champion_replay.{kind}.{metric.replace('@', '_at_')}"]
        assert replayed == pytest.approx(result.metrics[kind][metric], rel=1e-9), kind
