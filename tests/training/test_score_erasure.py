"""`clientele score --out` never exports an erased customer, though the champions were trained before the erasure
(issue 11, finding 3)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd

from features.i18n import message
from features.privacy import append_erasure, pseudonymise
from tests.serving.helpers import layout_tables, register, settings_for, write_layouts
from features.settings import CHAMPION, CHURN, RECOMMENDER

ERASED = "zoë@shop/7"


def _register_recommender(settings, tmp_path) -> None:
    """A real recommender champion (batch scoring recommends through the model), logged as training logs it,
    trained on a shop where customer C0005 is the one erased later."""
    import mlflow
    from mlflow import MlflowClient

    from features.identities import key_check, pseudonymise_tables
    from features.synthetic import generate
    from models.recommenders import Popularity
    from training.pyfunc import pip_requirements
    from training.train import log_recommender

    shop = generate("beauty", customers=60, seed=5)
    first = sorted(shop["transactions"]["customer_id"].unique())[:8]
    renames = {old: (ERASED if i == 5 else f"C{i:04d}") for i, old in enumerate(first)}
    for name, frame in shop.items():
        if "customer_id" in frame.columns:
            shop[name] = frame.assign(customer_id=frame["customer_id"].replace(renames))
    shop, pairs = pseudonymise_tables(shop, settings.pseudonym_key)  # as training does
    settings.identities().record(pairs)
    model = Popularity().fit(shop)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    experiment = client.get_experiment_by_name("clientele-serving-tests").experiment_id
    with mlflow.start_run(experiment_id=experiment):
        info = log_recommender(model, tmp_path / "recommender", "beauty", pip_requirements(),
                               key_check(settings.pseudonym_key))
    name = settings.model_name(RECOMMENDER)
    version = mlflow.register_model(info.model_uri, name).version
    client.set_registered_model_alias(name, CHAMPION, str(version))


def _champions(tmp_path):
    """Champions registered as training registers them, the churn reasons messages as training writes them."""
    settings = settings_for(tmp_path / "data")
    tables = layout_tables()
    churn = tables[CHURN]["scores"]
    churn["churn_reasons"] = [[message("churn.recency", days=30 + i), message("churn.channel")]
                              for i in range(len(churn))]
    for parts in tables.values():  # a customer id only the data contract accepts, erased below
        for name, frame in parts.items():
            if "customer_id" in frame.columns:
                parts[name] = frame.assign(customer_id=frame["customer_id"].replace({"C0005": ERASED}))
    for kind, folder in write_layouts(tmp_path / "layouts", {k: v for k, v in tables.items() if k != RECOMMENDER},
                                      installation=settings).items():
        named = tmp_path / "logged" / kind / "serving"  # where `clientele train` logs it: artifacts/serving
        named.parent.mkdir(parents=True)
        shutil.move(folder, named)
        register(settings, kind, named)
    _register_recommender(settings, tmp_path)
    return settings


def _score(settings, out, *args):
    return subprocess.run([sys.executable, "-m", "training.cli", "score", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CLIENTELE_DATA_DIR": str(settings.data_dir),
                               "CLIENTELE_MLFLOW_TRACKING_URI": settings.tracking_uri})


def test_score_leaves_out_customers_erased_after_the_champions_were_trained(tmp_path):
    settings = _champions(tmp_path)
    append_erasure(settings.erasure_file, pseudonymise(ERASED, settings.pseudonym_key))

    out = tmp_path / "out"
    result = _score(settings, out)
    assert result.returncode == 0, result.stderr
    for name in ("customer_scores", "recommendations"):
        exported = set(pd.read_parquet(out / f"{name}.parquet")["customer_id"])
        assert ERASED not in exported and "C0006" in exported, name
        assert "zoë" not in (out / f"{name}.csv").read_text(encoding="utf-8"), name
    assert len(pd.read_parquet(out / "customer_scores.parquet")) == 39
    assert "39 customers scored" in result.stderr


def test_score_words_reasons_and_labels_in_the_asked_language_with_codes_beside(tmp_path):
    settings = _champions(tmp_path)
    out = tmp_path / "zh"
    result = _score(settings, out, "--lang", "zh-CN")
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(out / "customer_scores.csv")
    assert scores["churn_reasons"].str.match(r"^已\d+天未购买; 只通过一个渠道购物$").all()
    assert (scores["churn_reason_codes"] == "churn.recency;churn.channel").all()
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}
    assert set(scores["risk_band_label"]) <= {"低", "中", "高"}
    recs = pd.read_parquet(out / "recommendations.parquet")
    assert len(recs) and recs["reason_code"].str.startswith("rec.").all()
    assert not recs["reason"].str.contains("\x1e", regex=False).any() and not recs["reason"].str.isascii().all()

    refused = _score(settings, tmp_path / "xx", "--lang", "fr")
    assert refused.returncode == 2 and "--lang" in refused.stderr and "Traceback" not in refused.stderr
