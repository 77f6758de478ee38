"""The `clientele` command as a user runs it: a real process, its exit status, stdout and stderr."""

import json
import stat
import subprocess
import sys

import pandas as pd
import pytest


def clientele(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "training.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_validate_json_report_and_rejects_file(tmp_path):
    data = tmp_path / "transactions.csv"
    data.write_text("customer_id,timestamp,amount\nc1,2024-01-01,3\n,2024-01-02,4\nc2,2024-01-03,-2\n")
    result = clientele("validate", "--data", data, "--json", "--rejects", tmp_path / "rej")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows_read"] == 3 and report["rows_kept"] == 2 and report["rows_rejected"] == 1
    assert report["rejected_by_reason"] == {"missing_customer_id": 1}
    assert report["returns"]["rows"] == 1
    assert (tmp_path / "rej" / "transactions.rejects.csv").read_text().splitlines()[1].startswith(
        "2,missing_customer_id")


def test_rejects_files_are_private(tmp_path):
    data = tmp_path / "transactions.csv"
    data.write_text("customer_id,timestamp,amount\nc1,2024-01-01,3\n,2024-01-02,4\n")
    result = clientele("validate", "--data", data, "--rejects", tmp_path / "rej" / "x")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "rej" / "x" / "transactions.rejects.csv").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "rej").stat().st_mode) == stat.S_IMODE((tmp_path / "rej" / "x").stat().st_mode) \
        == 0o700


def test_missing_customer_id_column_exits_2_with_one_line(tmp_path):
    data = tmp_path / "transactions.csv"
    data.write_text("client,timestamp,amount\nc1,2024-01-01,3\n")
    result = clientele("validate", "--data", data)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "transactions.csv" in lines[0] and "'customer_id'" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--data", "/nonexistent/t.csv"], "/nonexistent/t.csv: no such file or folder"),
    (["--data", "{tmp}/transactions.csv", "--mapping", "{tmp}/missing.yaml"], "missing.yaml: mapping file does not exist"),
])
def test_fatal_problems_exit_2(tmp_path, args, fragment):
    (tmp_path / "transactions.csv").write_text("customer_id,timestamp,amount\nc1,2024-01-01,3\n")
    result = clientele("validate", *[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and fragment in result.stderr


def test_human_report_lists_reasons(tmp_path):
    data = tmp_path / "transactions.csv"
    data.write_text("customer_id,timestamp,amount\nc1,2024-01-01,3\nc1,2024-01-01,3\n")
    result = clientele("validate", "--data", data, "--rejects", tmp_path / "rej")
    assert result.returncode == 0, result.stderr
    assert "duplicate_row: 1" in result.stdout and "rows kept" in result.stdout


@pytest.mark.realdata
def test_validate_online_retail_json_accounts_for_every_row(online_retail, online_retail_mapping, tmp_path):
    result = clientele("validate", "--data", online_retail, "--mapping", online_retail_mapping, "--json",
                       "--rejects", tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows_read"] == 541_909 == report["rows_kept"] + report["rows_rejected"]
    rejects = pd.read_csv(report["rejects_files"]["transactions"], dtype=str)
    assert len(rejects) == report["rows_rejected"]
    assert rejects["reason"].value_counts().to_dict() == report["rejected_by_reason"]
