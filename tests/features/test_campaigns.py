"""The campaigns table: validation with rejects, outcomes read from transactions after the send, marketing consent."""

import numpy as np
import pandas as pd
import pytest

from features.campaigns import campaign_outcomes, campaigns_table
from features.columns import Columns as C
from features.exceptions import DataError
from features.io import load_dataset
from features.privacy import marketing_consent


@pytest.fixture
def store(tmp_path):
    pd.DataFrame({
        "customer_id": ["a", "a", "b", "b", "c", "d"],
        "timestamp": ["2024-01-01", "2024-03-05", "2024-01-02", "2024-03-20", "2024-01-03", "2024-03-02"],
        "amount": [10.0, 25.0, 5.0, 40.0, 7.0, -8.0],  # d's purchase in the window is a return
        "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
    }).to_csv(tmp_path / "transactions.csv", index=False)
    (tmp_path / "campaigns.csv").write_text(
        "customer_id,campaign_id,sent_at,group,offer,cost\n"
        "a,spring,2024-03-01,treatment,10_off,0.5\n"
        "b,spring,2024-03-01,Control,10_off,0.5\n"          # group is read case-insensitively
        "c,spring,2024-03-01,treatment,10_off,0.5\n"
        "d,spring,2024-03-01,treatment,10_off,0.5\n"
        "e,spring,2024-03-01,holdout,10_off,0.5\n"          # not a group
        "f,spring,2024-03-01,treatment,10_off,-1\n"         # a negative cost
        "g,spring,,treatment,10_off,0.5\n"                  # no send time
        "a,spring,2024-03-01,treatment,10_off,0.5\n")       # the same customer twice in one campaign
    return tmp_path


def test_campaigns_are_validated_with_rejects(store):
    dataset = load_dataset(store)
    report = dataset.reports["campaigns"]
    assert (report.rows_read, report.rows_kept) == (8, 4)
    assert report.rejected_by_reason == {"unknown_group": 1, "negative_cost": 1, "missing_sent_at": 1,
                                         "duplicate_campaign_id_customer_id": 1}
    assert set(dataset.rejects["campaigns"]["row"]) == {5, 6, 7, 8}
    assert dataset.tables["campaigns"][C.group].tolist() == ["treatment", "control", "treatment", "treatment"]
    assert dataset.report()["capabilities"]["campaigns"]


def test_outcomes_count_purchases_in_the_response_window_only(store):
    tables = load_dataset(store).tables
    rows = campaign_outcomes(tables, campaigns_table(tables, "spring"), window_days=14, retention_days=30)
    by = rows.set_index(C.customer_id)
    # a bought on day 4 of the window; b on day 19 (outside 14 days, inside the 30-day retention horizon);
    # c not at all; d only returned something.
    assert by.loc["a", ["purchased", "orders", "spend", "retained"]].tolist() == [1, 1, 25, 1]
    assert by.loc["b", ["purchased", "orders", "spend", "retained"]].tolist() == [0, 0, 0, 1]
    assert by.loc["c", ["purchased", "retained"]].tolist() == [0, 0]
    assert by.loc["d", ["purchased", "spend"]].tolist() == [0, 0]
    assert by["complete"].all()  # the data (to 2024-03-20) covers 14 days after 2024-03-01
    longer = campaign_outcomes(tables, campaigns_table(tables, "spring").assign(response_window_days=25.0))
    assert longer.set_index(C.customer_id).loc["b", "purchased"] == 1  # a row's own window wins
    assert not longer["complete"].any()  # ... and 25 days reach past the data's end


def test_unknown_campaign_and_missing_table_are_one_line_errors(store, tiny_transactions):
    tables = load_dataset(store).tables
    with pytest.raises(DataError, match="no campaign 'autumn' \\(campaigns: spring\\)"):
        campaigns_table(tables, "autumn")
    with pytest.raises(DataError, match="no campaigns table"):
        campaigns_table({"transactions": tiny_transactions})


def test_marketing_consent_needs_a_yes_on_record():
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"],
                              "consent_marketing": pd.array([True, False, None], dtype="boolean")})
    assert marketing_consent(pd.Series(["a", "b", "c", "zz"]), customers).tolist() == [True, False, False, False]
    assert not marketing_consent(pd.Series(["a"]), None).any()
    assert not marketing_consent(pd.Series(["a"]), customers.drop(columns="consent_marketing")).any()
