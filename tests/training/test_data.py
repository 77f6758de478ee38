"""The training data stage: erased customers never reach a model, and the fingerprint identifies the data."""

from pathlib import Path

import pandas as pd

from features.privacy import pseudonymise
from training.config import TrainConfig
from training.data import fingerprint, load_training_data
from features.settings import Settings
from tests.features.fixtures import tiny_tables


def write(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def test_erased_customers_are_dropped_from_every_table(tmp_path):
    data = write(tiny_tables(), tmp_path / "shop")
    settings = Settings(data_dir=tmp_path / "state", pseudonym_key="k")
    settings.erasure_file.parent.mkdir(parents=True)
    settings.erasure_file.write_text(pseudonymise("c1", "k") + "\n" + pseudonymise("nobody", "k") + "\n")
    loaded = load_training_data(TrainConfig(data=data), settings)
    raw = set(tiny_tables()["transactions"]["customer_id"])
    for name, table in loaded.tables.items():
        if "customer_id" in table.columns:
            assert pseudonymise("c1", "k") not in set(table["customer_id"]), name
            assert not raw & set(table["customer_id"]), f"{name} holds customers' own ids"
    assert pseudonymise("c2", "k") in set(loaded.tables["transactions"]["customer_id"])
    # The identity map names everyone trained on, and nobody erased.
    named = settings.identities().read()
    assert "c2" in set(named["customer_id"]) and "c1" not in set(named["customer_id"])
    assert loaded.fingerprint["erased_customers_dropped"] == 1
    # The pseudonym file holds no raw id.
    assert "c1" not in settings.erasure_file.read_text().split()


def test_fingerprint_changes_with_the_content_only():
    tables = tiny_tables()
    first = fingerprint(tables)
    assert fingerprint(tiny_tables()) == first
    changed = {**tables, "transactions": tables["transactions"].assign(amount=tables["transactions"]["amount"] + 1)}
    second = fingerprint(changed)
    assert second["sha256"] != first["sha256"] and second["rows"] == first["rows"]


def test_erased_customers_never_reach_a_rejects_file_and_are_counted(tmp_path):
    # An erased customer's rows are dropped before anything is kept or rejected: a bad row of theirs (here an
    # unreadable amount and a duplicate) must not be written raw into the rejects files.
    erased_id = "zoë@shop/7"
    data = tmp_path / "shop.csv"
    data.write_text("customer_id,timestamp,amount,product_id\n"
                    f"{erased_id},2024-01-02,10.0,p1\n"
                    f"{erased_id},2024-01-03,not-a-number,p2\n"
                    f"{erased_id},2024-01-02,10.0,p1\n"
                    "c2,2024-01-04,12.0,p1\n"
                    "c2,2024-01-05,oops,p2\n"
                    "c3,2024-01-06,7.5,p2\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "state", pseudonym_key="k")
    settings.erasure_file.parent.mkdir(parents=True)
    settings.erasure_file.write_text(pseudonymise(erased_id, "k") + "\n")
    loaded = load_training_data(TrainConfig(data=data), settings)
    assert pseudonymise(erased_id, "k") not in set(loaded.tables["transactions"]["customer_id"])
    assert pseudonymise("c2", "k") in set(loaded.tables["transactions"]["customer_id"])
    rejects = list(settings.rejects_dir("shop").glob("*.csv"))
    assert rejects
    written = "".join(p.read_text(encoding="utf-8") for p in rejects)
    assert "c2" in written and "oops" in written  # other customers' bad rows are still recorded
    assert "zoë" not in written and "not-a-number" not in written
    report = loaded.dataset.report()
    assert report["erased_rows"] == 3 and report["erased_customers"] == 1
    assert report["rows_read"] == 6 and report["rows_kept"] == 2 and report["rows_rejected"] == 1
    assert loaded.fingerprint["erased_customers_dropped"] == 1 and loaded.fingerprint["erased_rows_dropped"] == 3
