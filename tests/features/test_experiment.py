"""Customer-level experiment tables mapped by YAML: rows validated with rejects, mistakes as one-line errors."""

import textwrap

import pytest

from features.exceptions import ConfigError, DataError
from features.experiment import load_experiment

MAPPING = """
name: test
experiment:
  derive:
    treatment: "segment != 'No E-Mail'"
  rename:
    customer_id: id
  outcomes: [visit, spend]
  features: [recency, channel]
"""


def _files(tmp_path, mapping=MAPPING, rows=None):
    data = tmp_path / "experiment.csv"
    data.write_text("id,segment,recency,channel,visit,spend\n" + "\n".join(rows or [
        "h1,Womens E-Mail,3,Web,1,10.5",
        "h2,No E-Mail,5,Phone,0,0",
        "h3,Mens E-Mail,1,Web,,0",          # no visit outcome
        "h4,No E-Mail,2,Web,0,lots",        # spend unreadable
        ",No E-Mail,2,Web,0,0",             # no id
        "h1,No E-Mail,2,Web,0,0",           # the same customer again
    ]) + "\n")
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(mapping))
    return data, path


def test_rows_are_mapped_and_validated(tmp_path):
    experiment = load_experiment(*_files(tmp_path))
    assert experiment.frame["customer_id"].tolist() == ["h1", "h2"]
    assert experiment.treatment().tolist() == [1.0, 0.0]
    assert experiment.frame["spend"].tolist() == [10.5, 0.0]
    assert experiment.frame[experiment.features].columns.tolist() == ["recency", "channel"]
    assert experiment.report.rejected_by_reason == {"missing_customer_id": 1, "missing_visit": 1,
                                                    "unparseable_spend": 1, "duplicate_customer_id": 1}
    assert experiment.rejects["row"].tolist() == [3, 4, 5, 6]


@pytest.mark.parametrize("mapping, message", [
    ("name: x\ntransactions: {}\n", "no experiment section"),
    (MAPPING.replace("features: [recency, channel]", "features: [recency, visit]"), "both an outcome and a feature"),
    (MAPPING.replace("outcomes: [visit, spend]", "outcomes: visit"), "outcomes: expected a non-empty list"),
    (MAPPING.replace("  outcomes:", "  sheet: 2\n  outcomes:"), "unknown key 'sheet'"),
])
def test_mapping_mistakes_are_config_errors(tmp_path, mapping, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(*_files(tmp_path, mapping))


def test_missing_columns_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="column 'loyalty' is missing \\(named in mapping.yaml: experiment.features"):
        load_experiment(*_files(tmp_path, MAPPING.replace("features: [recency, channel]",
                                                          "features: [recency, loyalty]")))
    with pytest.raises(DataError, match="column 'conversion' is missing"):
        load_experiment(*_files(tmp_path, MAPPING.replace("[visit, spend]", "[visit, conversion]")))
