"""`clientele score --out` never exports an erased customer, though the champions were trained before the erasure
(issue 11, finding 3)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd

from features.privacy import append_erasure, pseudonymise
from tests.serving.helpers import layout_tables, register, settings_for, write_layouts

ERASED = "zoë@shop/7"


def test_score_leaves_out_customers_erased_after_the_champions_were_trained(tmp_path):
    settings = settings_for(tmp_path / "data")
    tables = layout_tables()
    for parts in tables.values():  # a customer id only the data contract accepts, erased below
        for name, frame in parts.items():
            if "customer_id" in frame.columns:
                parts[name] = frame.assign(customer_id=frame["customer_id"].replace({"C0005": ERASED}))
    for kind, folder in write_layouts(tmp_path / "layouts", tables).items():
        named = tmp_path / "logged" / kind / "serving"  # where `clientele train` logs it: artifacts/serving
        named.parent.mkdir(parents=True)
        shutil.move(folder, named)
        register(settings, kind, named)
    append_erasure(settings.erasure_file, pseudonymise(ERASED, settings.pseudonym_key))

    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "training.cli", "score", "--out", str(out)], capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "CLIENTELE_DATA_DIR": str(settings.data_dir),
                                 "CLIENTELE_MLFLOW_TRACKING_URI": settings.tracking_uri})
    assert result.returncode == 0, result.stderr
    for name in ("customer_scores", "recommendations"):
        exported = set(pd.read_parquet(out / f"{name}.parquet")["customer_id"])
        assert ERASED not in exported and "C0006" in exported, name
        assert "zoë" not in (out / f"{name}.csv").read_text(encoding="utf-8"), name
    assert len(pd.read_parquet(out / "customer_scores.parquet")) == 39
    assert "39 customers scored" in result.stderr
