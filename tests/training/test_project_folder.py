"""`clientele` as a user runs it from their own project folder, outside the checkout: the packaged default
configs, the project's configs/ overriding them, settings that travel with the models, and bad configs that
fail before any data is read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from features.presets import CONFIG_DIR

CLIENTELE = Path(sys.executable).parent / "clientele"
CHECKOUT = Path(__file__).resolve().parents[2]


def clientele(*args, cwd: Path, data_dir: Path | None = None) -> subprocess.CompletedProcess:
    """The console script in a clean environment: no tracking URI or data dir from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIENTELE_", "MLFLOW_"))}
    env["OPENBLAS_NUM_THREADS"] = "1"
    if data_dir is not None:
        env["CLIENTELE_DATA_DIR"] = str(data_dir)
    return subprocess.run([str(CLIENTELE), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def light_recommender() -> dict:
    """The shipped recommender config with four generators and a short reranker, so the run takes seconds."""
    config = yaml.safe_load((CONFIG_DIR / "recommender.yaml").read_text())
    generators = config["clientele"]["generators"]
    config["clientele"]["generators"] = {k: generators[k] for k in ("repeat", "bm25", "itemknn", "popularity")}
    config["clientele"]["ranker"] = {"n_estimators": 30, "early_stopping_rounds": 5}
    return config


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder outside the checkout, trained with `clientele train --data shop`; its configs/ holds
    only the recommender and churn settings it changes (the rest are the packaged defaults)."""
    folder = tmp_path_factory.mktemp("project")
    assert CHECKOUT not in folder.parents
    generated = clientele("generate", "--customers", 300, "--seed", 1, "--out", "shop", cwd=folder)
    assert generated.returncode == 0, generated.stderr
    (folder / "configs").mkdir()
    (folder / "configs" / "recommender.yaml").write_text(yaml.safe_dump(light_recommender()))
    (folder / "configs" / "churn.yaml").write_text(yaml.safe_dump({"training": {"max_cutoffs": 4}}))
    trained = clientele("train", "--data", "shop", cwd=folder)
    return folder, trained


def test_train_runs_from_a_project_folder_with_packaged_defaults_and_project_overrides(project):
    folder, trained = project
    assert trained.returncode == 0, trained.stderr[-2000:]
    # Both URIs: another test in this worker may have set a global registry URI.
    uri = f"sqlite:///{folder / 'data' / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("clientele-churn", "champion")
    params = client.get_run(champion.run_id).data.params
    assert params["recommender.clientele.ranker.n_estimators"] == "30"  # the project's configs/recommender.yaml
    assert params["churn.training.max_cutoffs"] == "4"  # the project's configs/churn.yaml
    assert params["churn.model.n_estimators"] == "400"  # a default the project did not override
    assert params["features.customer.windows_days"] == "30,90,180,365"  # the packaged features.yaml
    assert params["train.features"] == str(CONFIG_DIR / "features.yaml")


def test_scores_are_the_same_after_the_projects_configs_change(project, tmp_path):
    """`clientele score --data` rebuilds features with the champions' own settings, not today's configs."""
    folder, trained = project
    assert trained.returncode == 0, trained.stderr[-2000:]
    before = clientele("score", "--data", folder / "shop", "--out", tmp_path / "before", cwd=folder)
    assert before.returncode == 0, before.stderr[-2000:]
    changed = tmp_path / "changed"
    (changed / "configs").mkdir(parents=True)
    (changed / "configs" / "features.yaml").write_text(yaml.safe_dump(
        {"customer": {"windows_days": [30, 60], "complaint_windows_days": [30]}}))
    (changed / "configs" / "churn.yaml").write_text(yaml.safe_dump(
        {"reasons": {"top": 1}, "risk_bands": {"medium": 0.01, "high": 0.02}}))
    after = clientele("score", "--data", folder / "shop", "--out", tmp_path / "after", cwd=changed,
                      data_dir=folder / "data")
    assert after.returncode == 0, after.stderr[-2000:]
    first = pd.read_parquet(tmp_path / "before" / "customer_scores.parquet")
    second = pd.read_parquet(tmp_path / "after" / "customer_scores.parquet")
    assert len(first) > 100
    pd.testing.assert_frame_equal(first, second)


def test_scoring_data_without_a_table_the_model_was_trained_on_exits_2_naming_the_column(project, tmp_path):
    folder, trained = project
    assert trained.returncode == 0, trained.stderr[-2000:]
    shutil.copytree(folder / "shop", tmp_path / "shop")
    (tmp_path / "shop" / "events.parquet").unlink()
    result = clientele("score", "--data", tmp_path / "shop", "--out", tmp_path / "out", cwd=folder)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "feature column '" in lines[0] and "cannot be built from the data given" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("file, content, option, fragment", [
    ("configs/churn.yaml", {"model": {"n_estimatorz": 5}}, None, "churn.yaml: model.n_estimatorz: Extra inputs"),
    ("configs/features.yaml", {"customer": {"windows_days": "weekly"}}, None, "features.yaml: customer.windows_days"),
    ("configs/recommender.yaml", {**light_recommender(), "clientele": {"ranker": {"n_estimators": "many"}}}, None,
     "ranker.n_estimators"),
    ("configs/recommender.yaml", {**light_recommender(), "clientele": {**light_recommender()["clientele"],
                                                                       "similar": "als"}}, None,
     "similar 'als' is not a generator"),
    ("mine.yaml", {"seed": "zero"}, "--config", "mine.yaml: seed: Input should be a valid integer"),
])
def test_a_bad_config_fails_in_one_line_before_any_data_is_read(tmp_path, file, content, option, fragment):
    (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / file).write_text(yaml.safe_dump(content))
    args = ["train", "--data", "no-such-shop"] + ([option, file] if option else [])
    result = clientele(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "no-such-shop" not in lines[0]  # the data was never touched ...
    assert not (tmp_path / "data").exists()  # ... and nothing was written
