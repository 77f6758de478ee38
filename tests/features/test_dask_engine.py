"""The Dask engine gives exactly the pandas engine's output, over Parquet split into several parts."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from features.config import FeatureConfig
from features.dask_engine import features_on_dask
from features.io import load_dataset
from features.pipeline import feature_frame
from tests.features.fixtures import CUTOFF, tiny_tables


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c.scheduler_address


def write_parts(tables, folder, dirty=False):
    """Each table as a folder of Parquet parts with tiny row groups, so rows span many tasks."""
    for name, frame in tables.items():
        if dirty and name == "transactions":
            bad = frame.iloc[:2].copy()
            bad["customer_id"] = None
            frame = pd.concat([frame.iloc[:3], bad, frame.iloc[3:], frame.iloc[:1]], ignore_index=True)
        part_dir = folder / name
        part_dir.mkdir(parents=True)
        half = len(frame) // 2
        frame.iloc[:half].to_parquet(part_dir / "part-0.parquet", row_group_size=2)
        frame.iloc[half:].to_parquet(part_dir / "part-1.parquet", row_group_size=3)


@pytest.mark.parametrize("horizon", [30, None])
def test_engines_give_identical_features_and_labels(tmp_path, cluster, horizon):
    write_parts(tiny_tables(), tmp_path / "data", dirty=True)
    dataset = load_dataset(tmp_path / "data")
    expected = feature_frame(dataset.tables, CUTOFF, horizon)
    got, reports = features_on_dask(tmp_path / "data", None, CUTOFF, horizon, FeatureConfig(), scheduler=cluster,
                                    rejects_dir=tmp_path / "rejects", n_buckets=3)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert ("churned" in got.columns) == (horizon is not None)
    tx = reports["transactions"]
    # The last row repeats the first, in another part: duplicates meet in their customer's bucket.
    assert tx.rows_read == 13 and tx.rejected_by_reason == {"missing_customer_id": 2, "duplicate_row": 1}
    pandas_tx = dataset.reports["transactions"]
    for key in ("rows_read", "rows_kept", "rows_rejected", "rejected_by_reason"):
        assert getattr(tx, key) == getattr(pandas_tx, key)
    for key in ("duplicates", "returns"):
        assert tx.details[key] == pandas_tx.details[key]
    # Reject row numbers count from the start of the whole table, across parts and row groups.
    rejects = pd.concat(pd.read_csv(p) for p in sorted((tmp_path / "rejects").glob("transactions*.csv")))
    assert sorted(rejects["row"]) == [4, 5, 13]


def test_engines_agree_on_a_bigger_random_log(tmp_path, cluster):
    rng = __import__("numpy").random.default_rng(3)
    n = 5000
    tx = pd.DataFrame({
        "customer_id": [f"c{i}" for i in rng.integers(0, 400, n)],
        "product_id": [f"p{i}" for i in rng.zipf(1.5, n) % 300],
        "timestamp": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 500 * 24 * 60, n), unit="min"),
        "amount": rng.gamma(2.0, 20.0, n).round(2),
        "channel": rng.choice(["store", "online", "app"], n),
    })
    (tmp_path / "d").mkdir()
    write_parts({"transactions": tx}, tmp_path / "d")
    cutoff = pd.Timestamp("2024-01-15")
    expected = feature_frame(load_dataset(tmp_path / "d").tables, cutoff, 90)
    got, _ = features_on_dask(tmp_path / "d", None, cutoff, 90, FeatureConfig(), scheduler=cluster, n_buckets=4)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_features_command_writes_parquet(tmp_path):
    write_parts(tiny_tables(), tmp_path / "data")
    out = tmp_path / "features.parquet"
    result = subprocess.run([sys.executable, "-m", "training.cli", "features", "--data", str(tmp_path / "data"),
                             "--as-of", "2024-04-01", "--horizon", "30", "--out", str(out)],
                            capture_output=True, text=True, env={**__import__("os").environ,
                                                                 "CLIENTELE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(out)
    assert frame["customer_id"].tolist() == ["c1", "c2", "c4"] and frame["churned"].tolist() == [0, 0, 1]


def _dates(tables, data_end):
    return tables["transactions"][["customer_id", "timestamp"]]


def write_date_parts(folder, first, second):
    """Transactions in two Parquet parts whose text dates are ``first`` and ``second``."""
    folder.mkdir(parents=True)
    for i, dates in enumerate((first, second)):
        pd.DataFrame({"customer_id": [f"c{i}{j}" for j in range(len(dates))], "timestamp": dates,
                      "amount": 1.0}).to_parquet(folder / f"part-{i}.parquet")


def test_every_part_reads_its_dates_with_the_format_decided_for_the_whole_column(tmp_path, cluster):
    from features.dask_engine import run_bucketed

    # The first part proves day-first (20/03); the second alone reads as well day-first as month-first.
    write_date_parts(tmp_path / "data" / "transactions", ["01/03/2024", "20/03/2024"], ["02/04/2024", "05/04/2024"])
    run = run_bucketed(tmp_path / "data", None, _dates, {}, scheduler=cluster, n_buckets=2)
    got = pd.concat(run.results).sort_values("customer_id").reset_index(drop=True)
    assert got["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-01", "2024-03-20", "2024-04-02",
                                                                 "2024-04-05"]


def test_parts_that_each_prove_another_order_stop_as_a_mixed_column(tmp_path, cluster):
    from features.dask_engine import run_bucketed
    from features.exceptions import DataError

    # On its own each part is clear, and each would be read its own way: 01/03 a January date in one, March in
    # the other.
    write_date_parts(tmp_path / "data" / "transactions", ["01/03/2024", "20/03/2024"], ["01/03/2024", "03/20/2024"])
    with pytest.raises(DataError, match="mixes date formats.*timestamps.format"):
        run_bucketed(tmp_path / "data", None, _dates, {}, scheduler=cluster, n_buckets=2)


def test_an_identities_table_links_one_person_on_both_engines_alike(tmp_path, cluster):
    """Ids of one person are linked on the client by the pandas engine's function, then bucketed by person: the
    features, the identities report and erasures through a linked id are the pandas engine's."""
    from features.privacy import ErasureList, pseudonymise

    tables = tiny_tables()
    # c4 is c1's app id (a shared phone hash), c5 shares c2's member card, c3 stands alone.
    tables["identities"] = pd.DataFrame({
        "customer_id": ["c1", "c4", "c2", "c5", "c3"],
        "id_type": ["phone_sha256", "phone_sha256", "member_card", "member_card", "email_sha256"],
        "id_value": ["h1", "h1", "m7", "m7", "e3"],
    })
    write_parts(tables, tmp_path / "data")
    dataset = load_dataset(tmp_path / "data")
    assert dataset.links.canonical == {"c1": "c1", "c4": "c1", "c2": "c2", "c5": "c2"}
    expected = feature_frame(dataset.tables, CUTOFF, 30)
    got, reports = features_on_dask(tmp_path / "data", None, CUTOFF, 30, FeatureConfig(), scheduler=cluster,
                                    n_buckets=3)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert "c4" not in set(got["customer_id"]) and "c1" in set(got["customer_id"])
    assert reports["identities"].details == dataset.reports["identities"].details
    assert reports["identities"].details["ids_merged_away"] == 2

    # Erasing the app id erases the person: none of c1's rows reach the features on either engine.
    erasures = ErasureList(frozenset({pseudonymise("c4", "k")}), "k")
    gone_pandas = feature_frame(load_dataset(tmp_path / "data", erasures=erasures).tables, CUTOFF, 30)
    gone_dask, _ = features_on_dask(tmp_path / "data", None, CUTOFF, 30, FeatureConfig(), scheduler=cluster,
                                    n_buckets=3, erasures=erasures)
    pd.testing.assert_frame_equal(gone_dask, gone_pandas, check_exact=True)
    assert "c1" not in set(gone_dask["customer_id"]) and "c2" in set(gone_dask["customer_id"])
