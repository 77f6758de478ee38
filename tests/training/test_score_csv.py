"""`clientele score` CSV output (training/score.py write_outputs): ids and reasons never run as formulas."""

from __future__ import annotations

import csv

import pandas as pd

from training.score import write_outputs


def test_score_csv_neutralises_formula_ids_and_keeps_numbers(tmp_path):
    # Issue 11: customer ids starting with = + - @ were written raw into the CSV of `clientele score`.
    ids = ["=HYPERLINK(\"http://x\")", "+1", "-cmd", "@SUM(A1)", "\tC5", "C0006"]
    frame = pd.DataFrame({"customer_id": ids, "churn_probability": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                          "risk_band": ["low"] * 6, "churn_reasons": ["-no purchase for 90 days"] + ["ok"] * 5,
                          "value_at_risk": [-0.0, 1.5, 2.0, 3.0, 4.0, 5.0]})
    paths = write_outputs({"customer_scores": frame}, tmp_path)
    with open(tmp_path / "customer_scores.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://x\")", "+1", "'-cmd", "'@SUM(A1)",
                                        "'\tC5", "C0006"]
    assert rows[1][3] == "'-no purchase for 90 days" and rows[1][1] == "0.1" and rows[1][4] == "-0.0"
    # Parquet keeps the data as it is: only the spreadsheet format is neutralised.
    assert pd.read_parquet(paths[0])["customer_id"].tolist() == ids
