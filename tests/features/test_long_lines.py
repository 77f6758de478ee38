"""Overlong CSV lines (issue 11, finding 7): set aside before pandas reads the file, in bounded memory."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from features import csvlines
from features.exceptions import DataError
from features.io import load_dataset
from features.limits import MAX_LINE_BYTES

ROOT = Path(__file__).resolve().parents[2]
HEADER = "customer_id,timestamp,amount\n"


def naive(text: bytes, limit: int) -> list[tuple[int, int, int]]:
    """(data row, start, end) of every line longer than ``limit``, the obvious way."""
    out, row, pos = [], 0, 0
    lines = text.split(b"\n")
    for i, line in enumerate(lines):
        end = pos + len(line) + (1 if i < len(lines) - 1 else 0)
        if i > 0 and line not in (b"", b"\r"):
            row += 1
            if len(line) > limit:
                out.append((row, pos, end))
        pos = end
    return out


@pytest.mark.parametrize("seed", range(40))
def test_scan_finds_the_same_lines_as_splitting_whatever_the_chunk_boundaries(seed, tmp_path, monkeypatch):
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(csvlines, "_CHUNK", int(rng.integers(1, 40)))
    monkeypatch.setattr(csvlines, "line_limit", lambda columns: 12)
    lines = [b"a,b,c"]
    for _ in range(int(rng.integers(0, 30))):
        kind = rng.integers(0, 4)
        lines.append(b"" if kind == 0 else b"\r" if kind == 1 else b"x" * int(rng.integers(1, 40)))
    text = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
    path = tmp_path / "t.csv"
    path.write_bytes(text)
    found = csvlines.scan(path)
    assert [(line.row, line.start, line.end) for line in found] == naive(text, 12)
    assert all(text[line.start:line.end].startswith(line.excerpt[:5]) for line in found)
    with csvlines.without(path, found) as stream:
        kept = stream.read()
    assert kept == b"".join(text[a:b] for a, b in zip([0] + [line.end for line in found],
                                                      [line.start for line in found] + [len(text)]))


def write_with_long_id(path: Path, id_bytes: int) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt") as out:
        out.write(HEADER)
        out.write("c1,2024-01-01,3\n")
        out.write("\n")  # blank: pandas gives it no row number
        out.write("X" * id_bytes + ",2024-01-02,4\n")
        out.write(",2024-01-03,5\n")  # row 3: missing id
        out.write("c2,2024-01-04,6\n")


@pytest.mark.parametrize("name", ["transactions.csv", "transactions.csv.gz"])
def test_an_overlong_line_is_rejected_with_an_excerpt_and_rows_keep_their_numbers(tmp_path, name):
    path = tmp_path / name
    write_with_long_id(path, 2 * MAX_LINE_BYTES)
    dataset = load_dataset(path)
    report = dataset.reports["transactions"]
    assert (report.rows_read, report.rows_kept, report.rows_rejected) == (4, 2, 2)
    assert report.rejected_by_reason == {"line_too_long": 1, "missing_customer_id": 1}
    rejects = dataset.rejects["transactions"]
    assert rejects[["row", "reason"]].values.tolist() == [[2, "line_too_long"], [3, "missing_customer_id"]]
    assert rejects["customer_id"].iloc[0].startswith("XXXX") and "2,097,166 bytes" in rejects["customer_id"].iloc[0]
    assert dataset.transactions["customer_id"].tolist() == ["c1", "c2"]
    written = Path(dataset.write_rejects(tmp_path / "rej")["transactions"])
    assert written.stat().st_size < 2_000


def test_a_header_past_the_bound_stops_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(csvlines, "MAX_HEADER_BYTES", 100)
    path = tmp_path / "transactions.csv"
    path.write_text(",".join(f"column_{i}" for i in range(50)) + "\nc1,2024-01-01,3\n")
    with pytest.raises(DataError, match="header line is longer than 100 bytes"):
        load_dataset(path)


# VmHWM, not ru_maxrss: the latter keeps the forking pytest process's size across exec.
PEAK = """
import re, sys
from serving.cli import main
sys.argv = ["clientele", *sys.argv[1:]]
try:
    main()
finally:
    status = open("/proc/self/status").read()
    print("peak_kb", re.search(r"VmHWM:\\s+(\\d+)", status).group(1), file=sys.stderr)
"""


def test_validate_holds_a_64_mb_id_in_bounded_memory(tmp_path):
    path = tmp_path / "transactions.csv"
    write_with_long_id(path, 64 << 20)
    result = subprocess.run([sys.executable, "-c", PEAK, "validate", "--data", str(path), "--json", "--rejects",
                             str(tmp_path / "rej")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rejected_by_reason"]["line_too_long"] == 1
    peak_mb = int(result.stderr.split("peak_kb")[-1].split()[0]) / 1024
    # The interpreter with pandas and pyarrow is ~170 MB; reading the line as a cell cost 7-8 times its size.
    assert peak_mb < 300, f"peak {peak_mb:.0f} MB"
    assert (tmp_path / "rej" / "transactions.rejects.csv").stat().st_size < 2_000


def test_an_overlong_line_of_an_erased_customer_leaves_no_excerpt(tmp_path):
    from features.privacy import ErasureList, pseudonymise

    path = tmp_path / "transactions.csv"
    with path.open("w") as out:
        out.write(HEADER)
        out.write("c1,2024-01-02,5\n")
        out.write("gone@shop," + "2024-01-03," + "9" * (2 * MAX_LINE_BYTES) + "\n")  # the amount is the long part
        out.write("c2,2024-01-04,6\n")
    erasures = ErasureList(frozenset({pseudonymise("gone@shop", "k")}), "k")
    rejects = load_dataset(path, erasures=erasures).rejects["transactions"]
    assert rejects["reason"].tolist() == ["line_too_long"]
    assert "gone@shop" not in rejects["customer_id"].iloc[0] and "withheld" in rejects["customer_id"].iloc[0]
    # Without the erasure, the excerpt is there to help whoever fixes the file.
    assert load_dataset(path).rejects["transactions"]["customer_id"].iloc[0].startswith("gone@shop,")
