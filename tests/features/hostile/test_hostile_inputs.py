"""Hostile inputs, as an adversarial partner would send them: each file is generated here (no big files in git)
and ``clientele validate`` must answer with a report or one line and exit status 2, never a traceback, a hang or a
silently wrong date."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from features.io import load_dataset
from features.limits import MAX_ID_LENGTH


def validate(tmp_path: Path, data: Path, mapping: dict | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "training.cli", "validate", "--data", str(data), "--json",
            "--rejects", str(tmp_path / "rejects")]
    if mapping is not None:
        (tmp_path / "m.yaml").write_text(yaml.safe_dump(mapping))
        args += ["--mapping", str(tmp_path / "m.yaml")]
    # The timeout is the test: before the bounds, some of these files made validate run for hours.
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def csv(tmp_path: Path, header: str, rows: list[str], name: str = "transactions.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_day_first_dates_are_read_day_first(tmp_path):
    data = csv(tmp_path, "customer_id,timestamp,amount", [f"c{d},{d:02d}/03/2024,1" for d in range(1, 29)])
    result = validate(tmp_path, data)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["date_range"] == {"start": "2024-03-01 00:00:00", "end": "2024-03-28 00:00:00"}


def test_dotted_dates_are_read_day_first(tmp_path):
    data = csv(tmp_path, "customer_id,timestamp,amount", ["c1,07.02.2024,1", "c2,28.02.2024,1"])
    result = validate(tmp_path, data)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["date_range"]["start"] == "2024-02-07 00:00:00"


def test_ambiguous_dates_stop_with_one_line(tmp_path):
    data = csv(tmp_path, "customer_id,timestamp,amount", ["c1,01/03/2024,1", "c2,02/03/2024,1", "c3,12/05/2024,1"])
    line = one_line_error(validate(tmp_path, data))
    assert "transactions.csv: column 'timestamp'" in line and "'01/03/2024'" in line
    assert "transactions.timestamps.dayfirst" in line


def test_mapping_dayfirst_resolves_the_ambiguous_file(tmp_path):
    data = csv(tmp_path, "customer_id,timestamp,amount", ["c1,01/03/2024,1", "c2,12/05/2024,1"])
    result = validate(tmp_path, data, {"transactions": {"timestamps": {"dayfirst": True}}})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["date_range"] == {"start": "2024-03-01 00:00:00", "end": "2024-05-12 00:00:00"}


def test_mixed_date_formats_stop_with_one_line(tmp_path):
    data = csv(tmp_path, "customer_id,timestamp,amount", ["c1,2024-03-01,1", "c2,15/03/2024,1"])
    line = one_line_error(validate(tmp_path, data))
    assert "mixes date formats" in line and "'15/03/2024'" in line and "timestamps.format" in line


def test_semicolon_file_read_with_commas_gets_a_separator_hint(tmp_path):
    data = csv(tmp_path, "customer_id;timestamp;amount", ["c1;2024-01-01;3"])
    line = one_line_error(validate(tmp_path, data))
    assert "column 'customer_id' is missing" in line and "did you mean `read: {sep: ';'}`" in line


@pytest.mark.parametrize("expression, fragment", [
    ("amount_raw + 10 ** 10 ** 8", "exponent"),
    (" + ".join(["amount_raw"] * 20_000), "characters long"),
    ("+".join(["amount_raw"] * 150), "levels deep"),
    ("-" * 1_000 + "amount_raw", "levels deep"),
    ("where(amount_raw > 0, 'x' * 10 ** 9, 'y')", "longer than"),
])
def test_hostile_mapping_expressions_stop_with_one_line(tmp_path, expression, fragment):
    data = csv(tmp_path, "customer_id,timestamp,amount_raw", ["c1,2024-01-01,3"])
    mapping = {"transactions": {"rename": {"customer_id": "customer_id", "timestamp": "timestamp"},
                                "derive": {"amount": expression}}}
    line = one_line_error(validate(tmp_path, data, mapping))
    assert "m.yaml: transactions.derive.amount" in line and fragment in line
    assert len(line) < 400


def test_overlong_ids_are_rejected_rows_and_counted(tmp_path):
    huge = "x" * 5_000_000
    data = csv(tmp_path, "customer_id,timestamp,amount,product_id,order_id", [
        "c1,2024-01-01,3,p1,o1", f"{huge},2024-01-02,4,p1,o2", f"c2,2024-01-03,5,{'p' * (MAX_ID_LENGTH + 1)},o3",
        f"c3,2024-01-04,5,p1,{'o' * (MAX_ID_LENGTH + 1)}", f"c4,2024-01-05,5,{'p' * MAX_ID_LENGTH},o5"])
    result = validate(tmp_path, data)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # The 5 MB id makes its line longer than features.limits.line_limit: set aside before parsing.
    assert report["rejected_by_reason"] == {"id_too_long": 2, "line_too_long": 1} and report["rows_kept"] == 2
    rejects = pd.read_csv(tmp_path / "rejects" / "transactions.rejects.csv", dtype=str)
    assert rejects["row"].tolist() == ["2", "3", "4"]
    assert rejects["reason"].tolist() == ["line_too_long", "id_too_long", "id_too_long"]
    assert (tmp_path / "rejects" / "transactions.rejects.csv").stat().st_size < 5_000


def test_a_wide_file_validates(tmp_path):
    extra = [f"x{i}" for i in range(20_000)]
    data = csv(tmp_path, ",".join(["customer_id", "timestamp", "amount", *extra]),
               [",".join([f"c{r}", f"2024-01-0{r + 1}", "2", *(str(r + i % 5) for i in range(len(extra)))])
                for r in range(3)])
    result = validate(tmp_path, data)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["rows_kept"] == 3


def test_reading_a_wide_file_does_not_assign_column_by_column(tmp_path, monkeypatch):
    # Each column assignment into a wide frame costs time in its number of columns: one per column is quadratic.
    extra = [f"x{i}" for i in range(2_000)]
    data = csv(tmp_path, ",".join(["customer_id", "timestamp", "amount", *extra]),
               [",".join([f"c{r}", "2024-01-01", "2", *(str(i) for i in range(len(extra)))]) for r in range(2)])
    calls = []
    original = pd.DataFrame.__setitem__
    monkeypatch.setattr(pd.DataFrame, "__setitem__", lambda self, k, v: (calls.append(k), original(self, k, v)))
    ds = load_dataset(data)
    assert ds.transactions["x1999"].tolist() == [1999.0, 1999.0]  # numeric columns still become numbers
    assert len(calls) < 50, f"{len(calls)} column assignments"
