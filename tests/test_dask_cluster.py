"""The Dask engine on a real cluster: a `dask scheduler` and two `dask worker` processes on loopback, started in a
working directory of their own, and the `clientele` command run from the project folder with relative paths, as
the README shows. Results equal the pandas engine's; a worker killed mid-run changes nothing; what cannot work
stops with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from features.config import FeatureConfig
from features.exceptions import DataError
from features.io import load_dataset
from features.pipeline import feature_frame
from features.synthetic import generate
from tests.cluster import kills, killing, real_cluster
from tests.training.test_train import write_config

AS_OF = "2025-06-01"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with real_cluster(tmp_path_factory.mktemp("cluster"), workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project folder: the data in `shop/` (each table in two Parquet parts) and a light training config."""
    folder = tmp_path_factory.mktemp("project")
    tables = generate("beauty", customers=800, seed=3)
    for name, frame in tables.items():
        (folder / "shop" / name).mkdir(parents=True)
        half = len(frame) // 2
        frame.iloc[:half].to_parquet(folder / "shop" / name / "part-0.parquet")
        frame.iloc[half:].to_parquet(folder / "shop" / name / "part-1.parquet")
    write_config(folder, "light")
    return folder


def clientele(args: list[str], cwd: Path, timeout: float = 300, data_dir: str = "data") -> subprocess.CompletedProcess:
    """The command as a user runs it, its MLflow store the data folder's (whatever other tests set in this
    process's environment)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "CLIENTELE_MLFLOW_TRACKING_URI")}
    return subprocess.run([sys.executable, "-m", "training.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**env, "CLIENTELE_DATA_DIR": str(cwd / data_dir),
                                                "OPENBLAS_NUM_THREADS": "1"})


def registry(folder: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder}/mlflow/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)  # not the registry other tests set for this process


def on_pandas(folder: Path) -> pd.DataFrame:
    return feature_frame(load_dataset(folder).tables, pd.Timestamp(AS_OF), 90, FeatureConfig())


def one_line_error(result: subprocess.CompletedProcess, status: int) -> str:
    assert result.returncode == status, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


def test_features_from_a_relative_path_and_from_file_urls_equal_the_pandas_engine(cluster, project):
    result = clientele(["features", "--data", "shop", "--as-of", AS_OF, "--horizon", "90", "--engine", "dask",
                        "--scheduler", cluster.address, "--out", "features.parquet"], project)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = on_pandas(project / "shop")
    pd.testing.assert_frame_equal(pd.read_parquet(project / "features.parquet"), expected, check_exact=True)
    url = f"file://{project}/shop"
    result = clientele(["features", "--data", url, "--as-of", AS_OF, "--horizon", "90", "--engine", "dask",
                        "--scheduler", cluster.address, "--out", f"file://{project}/out/features.parquet"], project)
    assert result.returncode == 0, result.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(project / "out" / "features.parquet"), expected, check_exact=True)


def test_a_worker_killed_mid_features_changes_nothing(cluster, project, tmp_path):
    with killing(cluster.address, tmp_path / "kills", "run_bucket") as record:
        result = clientele(["features", "--data", "shop", "--as-of", AS_OF, "--horizon", "90", "--engine", "dask",
                            "--scheduler", cluster.address, "--out", "killed.parquet"], project)
    assert len(kills(record)) == 1  # the worker died holding validated parts and a bucket's task
    assert result.returncode == 0, result.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(project / "killed.parquet"), on_pandas(project / "shop"),
                                  check_exact=True)
    cluster.wait_for_workers(2)


def test_a_task_that_kills_every_worker_it_runs_on_stops_with_one_line(cluster, project, tmp_path):
    with killing(cluster.address, tmp_path / "kills", "run_bucket", times=20) as record:
        result = clientele(["features", "--data", "shop", "--as-of", AS_OF, "--horizon", "90", "--engine", "dask",
                            "--scheduler", cluster.address, "--out", "never.parquet"], project)
    line = one_line_error(result, 1)
    assert "every worker that ran a task (run_bucket) died" in line and "--memory-limit" in line
    assert "nothing was written" in line
    assert len(kills(record)) >= 2 and not (project / "never.parquet").exists()
    cluster.wait_for_workers(2)


def test_workers_that_cannot_read_the_data_stop_before_any_work(cluster):
    from features.dask_engine import run_bucketed

    # memory:// lives in one process: the client reads it, no worker can (as data on the client's own disk).
    with fsspec.open("memory://only-here/transactions.parquet", "wb") as f:
        pd.DataFrame({"customer_id": ["c1"], "timestamp": [pd.Timestamp("2024-01-01")], "amount": [1.0]}).to_parquet(f)
    with pytest.raises(DataError, match=r"^memory://only-here/transactions.parquet: the Dask worker "
                                        r"tcp://127\.0\.0\.1:\d+ cannot read it \(.*\); every worker must reach"):
        run_bucketed("memory://only-here", None, len, {}, scheduler=cluster.address)


@pytest.mark.parametrize("url,package", [("s3://clientele-test/shop", "s3fs"), ("gs://clientele-test/shop", "gcsfs"),
                                         ("abfs://clientele/shop", "adlfs")])
def test_a_missing_filesystem_package_is_one_line_naming_it(cluster, project, url, package):
    import importlib.util

    assert importlib.util.find_spec(package) is None, f"{package} is not a dependency of clientele"
    result = clientele(["features", "--data", url, "--as-of", AS_OF, "--engine", "dask", "--scheduler",
                        cluster.address, "--out", "x.parquet"], project)
    line = one_line_error(result, 2)
    assert line.startswith(f"error: {url}: ") and f"pip install {package}" in line


def test_bad_data_read_on_a_worker_is_one_line_naming_the_file(cluster, tmp_path):
    tx = generate("beauty", customers=50, seed=1)["transactions"]
    (tmp_path / "bad" / "transactions").mkdir(parents=True)
    tx.iloc[:100].to_parquet(tmp_path / "bad" / "transactions" / "part-0.parquet")
    tx.iloc[100:].drop(columns=["amount"]).to_parquet(tmp_path / "bad" / "transactions" / "part-1.parquet")
    result = clientele(["features", "--data", "bad", "--as-of", AS_OF, "--engine", "dask", "--scheduler",
                        cluster.address, "--out", "x.parquet"], tmp_path)
    assert "column 'amount' is missing" in one_line_error(result, 2)
    # A part whose footer reads but whose pages are garbage: only the worker that reads the rows finds out.
    (tmp_path / "torn" / "transactions").mkdir(parents=True)
    tx.to_parquet(tmp_path / "torn" / "transactions" / "part-0.parquet")
    torn = tmp_path / "torn" / "transactions" / "part-1.parquet"
    tx.to_parquet(torn)
    raw = bytearray(torn.read_bytes())
    raw[8:len(raw) // 2] = b"\xff" * (len(raw) // 2 - 8)
    torn.write_bytes(bytes(raw))
    result = clientele(["features", "--data", "torn", "--as-of", AS_OF, "--engine", "dask", "--scheduler",
                        cluster.address, "--out", "x.parquet"], tmp_path)
    line = one_line_error(result, 2)
    assert line.startswith(f"error: {torn}: cannot read transactions (")


def test_a_train_that_loses_every_worker_stops_with_one_line_and_registers_nothing(cluster, project, tmp_path):
    with killing(cluster.address, tmp_path / "kills", "run_bucket", times=20):
        result = clientele(["train", "--config", "light.yaml", "--data", "shop", "--engine", "dask", "--scheduler",
                            cluster.address], project, timeout=600, data_dir="failed-run")
    cluster.wait_for_workers(2)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "every worker that ran a task (run_bucket) died" in errors[0]
    client = registry(project / "failed-run")
    assert client.search_registered_models() == []
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["FAILED"]


@pytest.fixture(scope="module")
def trained(cluster, project, tmp_path_factory):
    """`clientele train --engine dask` from the project folder, a worker killed while it builds the churn model's
    training frames and another right after its share of LightGBM's distributed fit."""
    record = tmp_path_factory.mktemp("kills")
    with killing(cluster.address, record, "run_bucket"), killing(cluster.address, record, "train_part", state="memory"):
        result = clientele(["train", "--config", "light.yaml", "--data", "shop", "--engine", "dask", "--scheduler",
                            cluster.address], project, timeout=600)
    cluster.wait_for_workers(2)
    return result, kills(record)


def test_train_on_the_cluster_completes_through_lost_workers_and_registers_once(trained, project):
    result, killed = trained
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(k.split()[1].split("-")[0] for k in killed) == ["_run_bucket", "_train_part"]
    for kind in ("recommender", "churn", "clv"):
        versions = registry(project / "data").search_model_versions(f"name='clientele-{kind}'")
        assert [str(v.version) for v in versions] == ["1"], kind


def test_score_on_the_cluster_equals_pandas_and_the_in_process_churn_fit(trained, cluster, project, tmp_path):
    from scipy.stats import spearmanr

    from features.labels import data_end
    from models.churn.config import ChurnConfig
    from training.churn import fit_churn

    assert trained[0].returncode == 0
    with killing(cluster.address, tmp_path / "kills", "run_bucket") as record:
        on_dask = clientele(["score", "--data", "shop", "--engine", "dask", "--scheduler", cluster.address,
                             "--out", "scores-dask"], project)
    assert on_dask.returncode == 0, on_dask.stderr[-3000:]
    assert len(kills(record)) == 1
    cluster.wait_for_workers(2)
    here = clientele(["score", "--data", "shop", "--out", "scores-pandas"], project)
    assert here.returncode == 0, here.stderr[-3000:]
    dask_scores = pd.read_parquet(project / "scores-dask" / "customer_scores.parquet")
    pandas_scores = pd.read_parquet(project / "scores-pandas" / "customer_scores.parquet")
    pd.testing.assert_frame_equal(dask_scores, pandas_scores, check_exact=True)
    # Every customer's recommendations, written per batch on the workers (the model sent to each once).
    pd.testing.assert_frame_equal(pd.read_parquet(project / "scores-dask" / "recommendations.parquet"),
                                  pd.read_parquet(project / "scores-pandas" / "recommendations.parquet"),
                                  check_exact=True)
    # The champion's churn model came from LightGBM's Dask fit: it ranks customers as the in-process fit does.
    tables = load_dataset(project / "shop").tables
    cutoff = data_end(tables).normalize() + pd.Timedelta(days=1)
    local = fit_churn(tables, cutoff, 90, ChurnConfig.load(project / "light-churn.yaml"))
    features = feature_frame(tables, cutoff, None, FeatureConfig())
    mine = pd.Series(local.model.predict_proba(features), index=features["customer_id"])
    theirs = dask_scores.set_index("customer_id")["churn_probability"]
    assert spearmanr(mine.reindex(theirs.index), theirs).statistic > 0.95


def test_buckets_are_sized_to_the_workers_memory_limit(cluster):
    from dask.distributed import Client

    from features.dask_engine import BUCKET_SHARE_OF_WORKER_MEMORY, Part, bucket_count

    with Client(cluster.address) as client:
        limit = min(w["memory_limit"] for w in client.scheduler_info()["workers"].values())
        assert limit == 2 * 10**9  # the cluster's `dask worker --memory-limit 2GB`, one thread each
        small = [Part("transactions", "f", (0,), 0, "f", nbytes=10**6)]
        assert bucket_count(client, small) == 4  # twice the workers
        per_bucket = BUCKET_SHARE_OF_WORKER_MEMORY * limit
        big = [Part("transactions", "f", (i,), 0, "f", nbytes=int(per_bucket)) for i in range(9)]
        assert bucket_count(client, big + small) == 10  # no bucket above its share of a worker's memory
