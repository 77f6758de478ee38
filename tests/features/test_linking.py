"""One customer across channels: linking ids of the same person, the merged tables, and erasure across links."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.identities import pseudonymise_tables
from features.io import load_dataset
from features.linking import apply_links, link_customers
from features.privacy import ErasureList, pseudonymise


def identities(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "id_type", "id_value"])


def test_ids_sharing_a_key_are_one_person_transitively_and_a_common_key_links_nobody():
    shop_phone = [(f"walk-in-{i}", "phone_sha256", "shop-counter") for i in range(25)]
    links = link_customers(identities([
        ("pos-7", "member_card", "M1"), ("web-3", "member_card", "M1"),  # card typed in online
        ("web-3", "email_sha256", "E1"), ("app-9", "email_sha256", "E1"),  # same e-mail in the app
        ("pos-8", "member_card", "M2"), *shop_phone, ("walk-in-0", "member_card", "M3"),
    ]), max_ids_per_key=20)
    assert links.canonical == {"app-9": "app-9", "pos-7": "app-9", "web-3": "app-9"}  # the smallest id
    assert links.linked({"web-3"}) == {"app-9", "pos-7", "web-3"} and links.linked({"pos-8"}) == {"pos-8"}
    assert links.details["shared_keys_ignored"] == 1 and links.details["persons_with_several_ids"] == 1
    assert links.shared_keys["ids"].tolist() == [25] and "shop-counter" not in links.shared_keys.to_string()
    audit = links.audit.set_index("customer_id")
    assert audit.loc["web-3", "linked_by"] == "email_sha256,member_card" and audit.loc["pos-7", "canonical_id"] \
        == "app-9"


def test_a_person_keeps_one_row_with_the_most_restrictive_consent():
    links = link_customers(identities([("a", "card", "1"), ("b", "card", "1"), ("c", "card", "2")]))
    tables = {
        "transactions": pd.DataFrame({"customer_id": ["a", "b", "c"], "amount": [1.0, 2.0, 3.0]}),
        "customers": pd.DataFrame({
            "customer_id": ["b", "a", "c"], "region": [None, "Shanghai", "Beijing"],
            "signup_date": pd.to_datetime(["2023-01-01", "2024-01-01", "2024-02-01"]),
            "consent_profiling": pd.array([False, True, True], dtype="boolean"),
            "consent_marketing": pd.array([True, pd.NA, True], dtype="boolean")}),
    }
    out = apply_links(tables, links)
    assert out["transactions"]["customer_id"].tolist() == ["a", "a", "c"]
    person = out["customers"].set_index("customer_id").loc["a"]
    assert person["region"] == "Shanghai" and person["signup_date"] == pd.Timestamp("2023-01-01")
    assert person["consent_profiling"] is False or not person["consent_profiling"]  # b refused: the person did
    assert bool(person["consent_marketing"]) and len(out["customers"]) == 2


def write(folder: Path, **tables: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def shop(folder: Path) -> Path:
    days = pd.to_datetime(["2024-01-01", "2024-01-05", "2024-02-01", "2024-02-03", "2024-03-01"])
    return write(folder,
                 transactions=pd.DataFrame({"customer_id": ["pos-1", "app-1", "pos-2", "web-2", "pos-3"],
                                            "timestamp": days, "amount": [10.0, 20.0, 5.0, 7.0, 9.0],
                                            "product_id": ["p1", "p2", "p1", "p3", "p2"]}),
                 events=pd.DataFrame({"customer_id": ["app-1", "web-2"], "product_id": ["p3", "p1"],
                                      "event_type": ["view", "view"], "timestamp": days[:2]}),
                 identities=pd.DataFrame({"customer_id": ["pos-1", "app-1", "pos-2", "web-2", "pos-3", "web-2"],
                                          "id_type": ["phone", "phone", "card", "card", "card", "oops"],
                                          "id_value": ["1", "1", "2", "2", "3", None]}))


def test_loading_merges_every_table_and_reports_and_audits_the_merges(tmp_path):
    dataset = load_dataset(shop(tmp_path / "shop"))
    assert sorted(dataset.tables["transactions"]["customer_id"].unique()) == ["app-1", "pos-2", "pos-3"]
    assert sorted(dataset.tables["events"]["customer_id"]) == ["app-1", "pos-2"]
    details = dataset.report()["tables"]["identities"]["details"]
    assert details["persons_with_several_ids"] == 2 and details["ids_merged_away"] == 2
    written = dataset.write_rejects(tmp_path / "rejects")
    audit = pd.read_csv(written["identities.merges"])
    assert set(audit["customer_id"]) == {"pos-1", "app-1", "pos-2", "web-2"}
    assert dataset.report()["tables"]["identities"]["rows_rejected"] == 1  # the key without a value
    # Training learns pseudonyms of persons; the identity map gets every linked id, so the API accepts each.
    tables, rows = pseudonymise_tables(dataset.tables, "k", dataset.links.canonical)
    assert "identities" not in tables  # raw keys (phone hashes, cards) are never trained on
    person = dict(zip(rows["customer_id"], rows["person"]))
    assert person["pos-1"] == person["app-1"] == pseudonymise("app-1", "k")
    assert person["web-2"] == pseudonymise("pos-2", "k")


def test_erasing_one_id_of_a_person_erases_every_id_linked_to_it(tmp_path):
    erasures = ErasureList(frozenset({pseudonymise("pos-1", "k")}), "k")  # the card of the app's person
    dataset = load_dataset(shop(tmp_path / "shop"), erasures=erasures)
    for name, table in dataset.tables.items():
        if "customer_id" in table.columns:
            assert not {"pos-1", "app-1"} & set(table["customer_id"]), name
    assert "pos-2" in set(dataset.tables["transactions"]["customer_id"])
    assert dataset.erased_customers == 2
    written = dataset.write_rejects(tmp_path / "rejects")
    text = "".join(Path(p).read_text() for p in written.values())
    assert "app-1" not in text and "pos-1" not in text


def _ids_by_table(tables, data_end):
    """A bucket's customer ids per table (a module-level function: Dask ships it to the workers)."""
    return {name: sorted(t["customer_id"]) for name, t in tables.items() if "customer_id" in t.columns}


def test_the_dask_engine_links_the_ids_of_one_person_as_the_pandas_engine_does(tmp_path):
    from features.dask_engine import run_bucketed

    folder = shop(tmp_path / "shop")
    run = run_bucketed(folder, None, _ids_by_table, {}, n_buckets=2, workers=1, rejects_dir=tmp_path / "rejects")
    dataset = load_dataset(folder)
    for table in ("transactions", "events"):
        got = sorted(c for bucket in run.results for c in bucket.get(table, []))
        assert got == sorted(dataset.tables[table]["customer_id"]), table
    assert run.reports["identities"].details == dataset.reports["identities"].details
    assert run.reports["identities"].rows_rejected == 1 and (tmp_path / "rejects" / "identities.rejects.all.csv").exists()


def test_the_generators_channel_ids_are_recovered_exactly_and_its_shop_phone_links_nobody(tmp_path):
    from features.synthetic import SHOP_PHONE, generate, with_channel_ids, write_tables

    original = generate("beauty", customers=600, seed=4)
    tables, truth = with_channel_ids(original, share=0.3, seed=4)
    assert len(truth) > 20 and (tables["identities"]["id_value"] == SHOP_PHONE).sum() > 20
    app = tables["transactions"]["customer_id"].isin(truth)
    assert app.any() and (tables["transactions"].loc[app, "channel"] == "app").all()
    write_tables(tables, tmp_path / "shop")
    dataset = load_dataset(tmp_path / "shop")
    expected = {**{a: min(a, c) for a, c in truth.items()}, **{c: min(a, c) for a, c in truth.items()}}
    assert dataset.links.canonical == expected and dataset.links.details["shared_keys_ignored"] == 1
    # Linked back, each person buys what they bought before the split.
    spend = dataset.tables["transactions"].groupby("customer_id")["amount"].sum()
    before = original["transactions"].groupby("customer_id")["amount"].sum()
    assert len(spend) == len(before) and sorted(spend.round(6)) == sorted(before.round(6))
