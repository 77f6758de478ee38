"""Timestamps: one format per column, read from the values or set in the mapping; never a per-value guess."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from features.exceptions import ConfigError, DataError
from features.io import load_dataset
from features.mapping import TimestampRule, load_mapping
from features.timestamps import SAMPLE_ROWS
from features.validation import coerce_timestamp


def tx_file(tmp_path: Path, stamps: list[str], name: str = "transactions.csv") -> Path:
    path = tmp_path / name
    rows = [f"c{i},{stamp},1" for i, stamp in enumerate(stamps)]
    path.write_text("customer_id,timestamp,amount\n" + "\n".join(rows) + "\n")
    return path


def mapping_file(tmp_path: Path, timestamps: dict) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"transactions": {"timestamps": timestamps}}))
    return path


def read(tmp_path: Path, stamps: list[str], timestamps: dict | None = None) -> list[pd.Timestamp]:
    mapping = mapping_file(tmp_path, timestamps) if timestamps else None
    return load_dataset(tx_file(tmp_path, stamps), mapping).transactions["timestamp"].tolist()


def test_day_first_file_reads_every_date_day_first(tmp_path):
    # The old per-value reading gave 2024-01-03 for the first value and 2024-03-13 for the second.
    stamps = [f"{d:02d}/03/2024" for d in range(1, 29)]
    assert read(tmp_path, stamps) == list(pd.date_range("2024-03-01", "2024-03-28"))


def test_month_first_file_reads_every_date_month_first(tmp_path):
    assert read(tmp_path, ["01/03/2024", "1/13/2024 10:30", "12/25/2024"]) == [
        pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-13 10:30"), pd.Timestamp("2024-12-25")]


def test_dotted_day_first_file(tmp_path):
    # 07.02.2024 was read as July 2nd.
    assert read(tmp_path, ["07.02.2024", "13.02.2024 08:00:00"]) == [
        pd.Timestamp("2024-02-07"), pd.Timestamp("2024-02-13 08:00")]


def test_iso_dates_with_and_without_time(tmp_path):
    assert read(tmp_path, ["2024-01-02", "2024-01-02 10:00", "2024-01-03T11:30:00"]) == [
        pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-02 10:00"), pd.Timestamp("2024-01-03 11:30")]


def test_iso_with_offsets_is_utc(tmp_path):
    assert read(tmp_path, ["2024-03-01T10:00:00+02:00", "2024-03-01T10:00:00Z", "2024-03-31 23:30-01:00"]) == [
        pd.Timestamp("2024-03-01 08:00"), pd.Timestamp("2024-03-01 10:00"), pd.Timestamp("2024-04-01 00:30")]


def test_named_months(tmp_path):
    assert read(tmp_path, ["3 Mar 2024", "14 March 2024 10:00"]) == [
        pd.Timestamp("2024-03-03"), pd.Timestamp("2024-03-14 10:00")]


def test_ambiguous_file_stops_with_one_line_naming_file_column_values_and_key(tmp_path):
    with pytest.raises(DataError) as err:
        read(tmp_path, ["01/03/2024", "02/03/2024", "12/05/2024"])
    message = str(err.value)
    assert "\n" not in message
    assert "transactions.csv: column 'timestamp'" in message
    assert "'01/03/2024'" in message and "'12/05/2024'" in message
    assert "transactions.timestamps.dayfirst" in message


def test_mixed_formats_stop_with_one_line(tmp_path):
    with pytest.raises(DataError) as err:
        read(tmp_path, ["2024-03-01", "2024-03-02", "15/03/2024"])
    message = str(err.value)
    assert "\n" not in message and "mixes date formats" in message
    assert "'2024-03-01'" in message and "'15/03/2024'" in message
    assert "transactions.timestamps.format" in message


def test_day_first_and_month_first_in_one_column_is_mixed(tmp_path):
    with pytest.raises(DataError, match="mixes date formats"):
        read(tmp_path, ["13/03/2024", "03/14/2024"])


@pytest.mark.parametrize("timestamps, expected", [
    ({"dayfirst": True}, ["2024-03-01", "2024-05-12"]),
    ({"dayfirst": False}, ["2024-01-03", "2024-12-05"]),
    ({"format": "%m/%d/%Y"}, ["2024-01-03", "2024-12-05"]),
])
def test_mapping_resolves_an_ambiguous_file(tmp_path, timestamps, expected):
    assert read(tmp_path, ["01/03/2024", "12/05/2024"], timestamps) == [pd.Timestamp(e) for e in expected]


def test_values_the_format_cannot_read_are_rejected_not_guessed(tmp_path):
    ds = load_dataset(tx_file(tmp_path, ["13/03/2024", "31/02/2024", "soon", "14/03/2024"]))
    assert ds.transactions["timestamp"].tolist() == [pd.Timestamp("2024-03-13"), pd.Timestamp("2024-03-14")]
    assert ds.report()["rejected_by_reason"] == {"unparseable_timestamp": 2}
    assert ds.rejects["transactions"]["row"].tolist() == [2, 3]


def test_the_deciding_day_may_lie_outside_the_sample():
    # Only the last value has a day above 12; the sample of a long column cannot see it, every distinct value can.
    stamps = [f"{1 + i % 12:02d}/{1 + i // 12 % 12:02d}/2024" for i in range(SAMPLE_ROWS + 5_000)] + ["25/12/2024"]
    out = coerce_timestamp(pd.Series(stamps, dtype="str"), TimestampRule())
    assert out.iloc[-1] == pd.Timestamp("2024-12-25") and out.iloc[1] == pd.Timestamp("2024-01-02")


def test_a_second_format_past_the_sample_is_still_found():
    stamps = ["13/03/2024"] * (SAMPLE_ROWS * 3) + ["2024-03-13"]
    with pytest.raises(DataError, match="mixes date formats"):
        coerce_timestamp(pd.Series(stamps, dtype="str"), TimestampRule(), "t.csv: column 'timestamp'")


@pytest.mark.parametrize("timestamps, fragment", [
    ({"dayfirst": "yes"}, "timestamps.dayfirst: expected true or false"),
    ({"format": "mixed"}, "timestamps.format: expected a strftime format"),
    ({"format": "%d/%m/%Y", "dayfirst": True}, "set format or dayfirst, not both"),
    ({"unit": "days"}, "timestamps.unit: expected one of"),
    ({"timezone": "Mars/Olympus"}, "timestamps.timezone: unknown time zone"),
])
def test_malformed_timestamps_section(tmp_path, timestamps, fragment):
    with pytest.raises(ConfigError) as err:
        load_mapping(mapping_file(tmp_path, timestamps))
    assert fragment in str(err.value) and "\n" not in str(err.value)
