"""Loaders and validation: canonical data needs no mapping, bad rows are rejected with a reason, fatal problems
raise one-line errors naming the file and column."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from features.exceptions import ConfigError, DataError
from features.io import load_dataset
from features.mapping import load_mapping


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def test_canonical_csv_needs_no_mapping_and_keeps_extra_columns(tmp_path):
    f = write_csv(tmp_path / "transactions.csv", """
customer_id,timestamp,amount,product_id,loyalty_card
00123,2024-01-01 10:00,9.5,A1,yes
00123,2024-01-03 11:00,4.0,A2,yes
77,2024-01-02,12.0,A1,no
""")
    ds = load_dataset(f)
    tx = ds.transactions
    assert tx["customer_id"].tolist() == ["00123", "00123", "77"]  # leading zeros survive
    assert "loyalty_card" in tx.columns
    assert tx["quantity"].tolist() == [1.0, 1.0, 1.0]  # default
    assert pd.api.types.is_datetime64_dtype(tx["timestamp"])
    assert ds.report()["rows_kept"] == 3 and ds.report()["rows_rejected"] == 0


def test_folder_with_one_file_per_table(tmp_path):
    pd.DataFrame({"customer_id": [1.0, 2.0], "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                  "amount": [1.0, 2.0], "product_id": ["p1", "p2"]}).to_parquet(tmp_path / "transactions.parquet")
    write_csv(tmp_path / "customers.csv", """
customer_id,region,consent_profiling
1,north,yes
2,south,0
2,south,0
""")
    write_csv(tmp_path / "products.csv", "product_id,category,price,in_stock\np1,rings,100,true\np2,rings,-5,false")
    ds = load_dataset(tmp_path)
    assert ds.transactions["customer_id"].tolist() == ["1", "2"]  # float ids lose their '.0'
    assert ds.get("customers")["consent_profiling"].tolist() == [True, False]
    assert ds.report()["tables"]["customers"]["rejected_by_reason"] == {"duplicate_customer_id": 1}
    assert ds.report()["tables"]["products"]["rejected_by_reason"] == {"negative_price": 1}
    assert ds.get("events") is None
    caps = ds.report()["capabilities"]
    assert caps["consent"] and caps["category_filters"] and not caps["event_features"]


def test_missing_required_column_names_file_and_column(tmp_path):
    f = write_csv(tmp_path / "transactions.csv", "client,timestamp,amount\nc1,2024-01-01,3")
    with pytest.raises(DataError) as err:
        load_dataset(f)
    message = str(err.value)
    assert "transactions.csv: column 'customer_id' is missing" in message
    assert "\n" not in message


def test_log_without_product_id_supports_churn_but_not_recommendations(tmp_path):
    f = write_csv(tmp_path / "pos.csv", "customer_id,timestamp,amount\nc1,2024-01-01,3\nc2,2024-01-05,8")
    report = load_dataset(f).report()
    assert report["capabilities"]["churn"] and report["capabilities"]["clv"] and report["capabilities"]["segments"]
    assert not report["capabilities"]["recommendations"]
    assert any("no product_id" in note for note in report["notes"])


def test_reject_reasons_and_accounting(tmp_path):
    f = write_csv(tmp_path / "transactions.csv", """
customer_id,timestamp,amount,product_id,quantity
c1,2024-01-01,10,p1,1
,2024-01-01,10,p1,1
c2,not a date,10,p1,1
c3,2024-01-02,ten,p1,1
c4,2024-01-02,10,,1
c1,2024-01-01,10,p1,1
c5,2024-01-03,-10,p1,-1
c6,1024-01-03,10,p1,1
c7,2024-01-04,5,p2,-2
""")
    ds = load_dataset(f)
    report = ds.report()
    assert report["rejected_by_reason"] == {
        "missing_customer_id": 1, "unparseable_timestamp": 1, "unparseable_amount": 1, "missing_product_id": 1,
        "duplicate_row": 1, "timestamp_out_of_range": 1, "negative_quantity": 1,
    }
    assert report["rows_read"] == 9 == report["rows_kept"] + report["rows_rejected"]
    # The negative amount is a return, kept as such.
    assert report["returns"] == {"rows": 1, "amount": -10.0}
    ret = ds.transactions[ds.transactions["is_return"]]
    assert ret["customer_id"].tolist() == ["c5"] and ret["quantity"].tolist() == [-1.0]
    rejects = pd.read_csv(ds.write_rejects(tmp_path / "rejects")["transactions"])
    # Row numbers are 1-based data rows of the source file; the source columns come along.
    assert dict(zip(rejects["row"], rejects["reason"])) == {
        2: "missing_customer_id", 3: "unparseable_timestamp", 4: "unparseable_amount", 5: "missing_product_id",
        6: "duplicate_row", 8: "timestamp_out_of_range", 9: "negative_quantity"}
    assert {"customer_id", "timestamp", "amount"} <= set(rejects.columns)


def test_no_usable_row_is_fatal(tmp_path):
    f = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\n,2024-01-01,1\nc1,never,2")
    with pytest.raises(DataError, match=r"t.csv: no usable row in transactions \(2 read"):
        load_dataset(f)


def test_unreadable_file_is_named(tmp_path):
    f = tmp_path / "transactions.parquet"
    f.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"transactions.parquet: cannot read transactions"):
        load_dataset(f)
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no transactions file"):
        (tmp_path / "empty").mkdir()
        load_dataset(tmp_path / "empty")


def test_events_and_feedback_checks(tmp_path):
    write_csv(tmp_path / "transactions.csv", "customer_id,timestamp,amount\nc1,2024-01-01,3")
    write_csv(tmp_path / "events.csv", """
customer_id,product_id,event_type,timestamp
c1,p1,VIEW,2024-01-01
c1,p1,add_to_cart,2024-01-01
c1,p2,teleport,2024-01-01
""")
    write_csv(tmp_path / "feedback.csv", "customer_id,timestamp,score,complaint\nc1,2024-01-02,2,yes\nc1,2024-01-03,5,maybe")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(yaml.safe_dump({"events": {"values": {"event_type": {"add_to_cart": "cart"}}}}))
    ds = load_dataset(tmp_path, mapping)
    assert ds.get("events")["event_type"].tolist() == ["view", "cart"]
    assert ds.report()["tables"]["events"]["rejected_by_reason"] == {"unknown_event_type": 1}
    assert ds.report()["tables"]["feedback"]["rejected_by_reason"] == {"unparseable_complaint": 1}


def test_inventory_is_validated_mapped_and_counted(tmp_path):
    """Store stock: bad rows rejected with their reason (and kept in the rejects file), a mapping renames a
    shop system's columns, the report says the data supports store stock."""
    write_csv(tmp_path / "transactions.csv", "customer_id,timestamp,amount,product_id\nc1,2024-01-01,3,p1")
    write_csv(tmp_path / "inventory.csv", """
sku,shop,on_hand
p1,S1,4
p2,S1,-2
p1,S1,5
,S2,1
p3,,1
p3,S2,many
p4,S2,0
""")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(yaml.safe_dump({"inventory": {"rename": {"product_id": "sku", "store_id": "shop",
                                                                "quantity": "on_hand"}}}))
    ds = load_dataset(tmp_path, mapping)
    inventory = ds.get("inventory")
    assert inventory[["product_id", "store_id"]].values.tolist() == [["p1", "S1"], ["p4", "S2"]]
    assert inventory["quantity"].tolist() == [4.0, 0.0]
    report = ds.report()["tables"]["inventory"]
    assert report["rows_read"] == 7 and report["rows_kept"] == 2
    assert report["rejected_by_reason"] == {"negative_quantity": 1, "duplicate_product_id_store_id": 1,
                                            "missing_product_id": 1, "missing_store_id": 1,
                                            "unparseable_quantity": 1}
    assert ds.report()["capabilities"]["store_stock"]
    written = ds.write_rejects(tmp_path / "rejects")
    rejects = pd.read_csv(written["inventory"])
    assert sorted(rejects["row"]) == [2, 3, 4, 5, 6]


def test_inventory_without_its_store_column_is_one_line(tmp_path):
    write_csv(tmp_path / "transactions.csv", "customer_id,timestamp,amount\nc1,2024-01-01,3")
    write_csv(tmp_path / "inventory.csv", "product_id,in_stock\np1,true")
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path)
    assert "inventory.csv: column 'store_id' is missing" in str(err.value) and "\n" not in str(err.value)


def test_mapping_renames_derives_filters_and_returns(tmp_path):
    write_csv(tmp_path / "export.csv", """
Invoice;Client;When;Qty;Price;Code
1001;17850;01/02/2024 10:15;2;1,5;A
C1002;17850;03/02/2024 09:00;-1;1,5;A
1003;17851;04/02/2024 12:00;1;0;POST
1004;17852;05/02/2024 12:00;x;2;B
""")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(yaml.safe_dump({"transactions": {
        "read": {"sep": ";", "decimal": ","},
        "rename": {"customer_id": "Client", "order_id": "Invoice", "timestamp": "When", "product_id": "Code"},
        "derive": {"amount": "Qty * Price", "quantity": "Qty"},
        "constants": {"channel": "store"},
        "numeric": ["Qty"],
        "timestamps": {"format": "%d/%m/%Y %H:%M"},
        "filters": {"postage": "Code != 'POST'"},
        "returns": "Invoice.str.startswith('C')",
    }}))
    ds = load_dataset(tmp_path / "export.csv", mapping)
    tx = ds.transactions
    assert ds.report()["rejected_by_reason"] == {"postage": 1, "unparseable_Qty": 1}
    assert tx["amount"].tolist() == [3.0, -1.5]
    assert tx["is_return"].tolist() == [False, True]
    assert tx["timestamp"].tolist() == [pd.Timestamp("2024-02-01 10:15"), pd.Timestamp("2024-02-03 09:00")]
    assert tx["channel"].tolist() == ["store", "store"]
    assert set(tx.columns) >= {"customer_id", "order_id", "amount", "quantity", "is_return"}
    assert "Qty" not in tx.columns  # a mapped table keeps only what the mapping names


@pytest.mark.parametrize("spec, fragment", [
    ({"transactions": {"renam": {}}}, "m.yaml: transactions: unknown key 'renam'"),
    ({"orders": {}}, "m.yaml: unknown table 'orders'"),
    ({"transactions": {"duplicates": "sometimes"}}, "duplicates: must be 'reject' or 'keep'"),
    ({"transactions": {"derive": {"amount": "Qty *"}}}, "transactions.derive.amount: cannot parse"),
])
def test_malformed_mapping_is_one_line(tmp_path, spec, fragment):
    mapping = tmp_path / "m.yaml"
    mapping.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError) as err:
        load_mapping(mapping)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_mapping_naming_a_missing_source_column(tmp_path):
    f = write_csv(tmp_path / "t.csv", "a,b,c\n1,2024-01-01,3")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(yaml.safe_dump({"transactions": {"rename": {"customer_id": "CustomerID", "timestamp": "b"},
                                                         "derive": {"amount": "c"}}}))
    with pytest.raises(ConfigError, match=r"transactions.rename.customer_id: unknown column 'CustomerID'"):
        load_dataset(f, mapping)


ROW_KINDS = ["good", "missing_customer_id", "unparseable_timestamp", "unparseable_amount", "negative_quantity"]


@settings(max_examples=40, deadline=None)
@given(kinds=st.lists(st.sampled_from(ROW_KINDS), min_size=1, max_size=40))
def test_every_row_is_kept_or_rejected_for_the_right_reason(tmp_path_factory, kinds):
    rows = []
    for i, kind in enumerate(kinds):
        row = {"customer_id": f"c{i}", "timestamp": f"2024-01-{1 + i % 28:02d}", "amount": str(1 + i),
               "quantity": "1"}
        if kind == "missing_customer_id":
            row["customer_id"] = ""
        elif kind == "unparseable_timestamp":
            row["timestamp"] = "31/31/2024"
        elif kind == "unparseable_amount":
            row["amount"] = "12,5.3"
        elif kind == "negative_quantity":
            row["quantity"] = "-2"
        rows.append(row)
    path = tmp_path_factory.mktemp("prop") / "transactions.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    if all(k != "good" for k in kinds):
        with pytest.raises(DataError, match="no usable row"):
            load_dataset(path)
        return
    ds = load_dataset(path)
    report = ds.report()
    expected = {k: kinds.count(k) for k in ROW_KINDS[1:] if kinds.count(k)}
    assert report["rejected_by_reason"] == expected
    assert report["rows_kept"] + report["rows_rejected"] == report["rows_read"] == len(kinds)
    assert ds.transactions["customer_id"].tolist() == [f"c{i}" for i, k in enumerate(kinds) if k == "good"]
    assert sorted(ds.rejects["transactions"]["row"]) == [i + 1 for i, k in enumerate(kinds) if k != "good"]


@pytest.mark.realdata
def test_online_retail_accounts_for_every_row(online_retail, online_retail_mapping):
    ds = load_dataset(online_retail, online_retail_mapping)
    report = ds.report()
    assert report["rows_read"] == 541_909
    assert report["rows_kept"] + report["rows_rejected"] == 541_909
    assert sum(report["rejected_by_reason"].values()) == report["rows_rejected"]
    assert len(ds.rejects["transactions"]) == report["rows_rejected"]
    # 135,080 rows have no customer; some of them are rejected first by a mapping filter.
    missing = report["rejected_by_reason"]["missing_customer_id"]
    assert 130_000 < missing <= 135_080
    assert report["returns"]["rows"] > 5_000 and report["returns"]["amount"] < 0
    tx = ds.transactions
    assert not tx["product_id"].isin(["POST", "M", "BANK CHARGES", "DOT"]).any()
    assert tx["customer_id"].str.fullmatch(r"\d{5}").all()
    assert (tx.loc[~tx["is_return"], "amount"] > 0).all()
