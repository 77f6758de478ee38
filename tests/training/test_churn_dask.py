"""The churn model trained through LightGBM's Dask API matches the in-process fit."""

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.pipeline import feature_frame
from features.synthetic import generate, write_tables
from models.churn.config import ChurnConfig
from training.churn import fit_churn, fit_churn_on_dask


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def test_distributed_fit_uses_the_same_cutoffs_and_scores_as_well(tmp_path, client):
    tables = generate("beauty", customers=1500, seed=5)
    write_tables(tables, tmp_path / "shop")
    config = ChurnConfig.from_dict({"training": {"max_cutoffs": 5, "step_days": 30}, "model": {"n_estimators": 120}})
    cutoff = pd.Timestamp("2025-09-01")
    local = fit_churn(tables, cutoff, 90, config)
    distributed = fit_churn_on_dask(tmp_path / "shop", None, 90, config, client, cutoff=cutoff)
    assert distributed.cutoffs == local.cutoffs and distributed.calibration_cutoff == local.calibration_cutoff
    assert distributed.train_rows == local.train_rows and distributed.calibration_rows == local.calibration_rows
    assert distributed.model.encoder_.categories == local.model.encoder_.categories
    test = feature_frame(tables, cutoff, 90, with_label=True)
    auc_local = roc_auc_score(test["churned"], local.model.predict_proba(test))
    auc_dask = roc_auc_score(test["churned"], distributed.model.predict_proba(test))
    assert auc_dask > 0.8 and abs(auc_dask - auc_local) < 0.02
    assert distributed.model.calibrator_.fitted_method_ == "temperature"
    reasons = distributed.model.reasons(test.head(20))
    assert any(reasons) and all(r["features"] for row in reasons for r in row)
