"""The training data stage: erased customers never reach a model, and the fingerprint identifies the data."""

from pathlib import Path

import pandas as pd

from features.privacy import pseudonymise
from training.config import TrainConfig
from training.data import fingerprint, load_training_data
from training.settings import Settings
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
    for name, table in loaded.tables.items():
        if "customer_id" in table.columns:
            assert "c1" not in set(table["customer_id"]), name
    assert "c2" in set(loaded.tables["transactions"]["customer_id"])
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
