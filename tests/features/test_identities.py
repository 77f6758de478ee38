"""The two id spaces: pseudonymised tables for training, and the identity map exports resolve through."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd

from features.identities import IdentityMap, key_check, pseudonymise_tables
from features.privacy import pseudonymise, pseudonymise_many


def test_tables_get_the_same_pseudonyms_as_the_erasure_list_and_the_api():
    tables = {
        "transactions": pd.DataFrame({"customer_id": pd.Series(["a", "b", "a", None], dtype="str"),
                                      "amount": [1.0, 2.0, 3.0, 4.0]}),
        "customers": pd.DataFrame({"customer_id": pd.Series(["b", "客户/42"], dtype="str")}),
        "products": pd.DataFrame({"product_id": ["p1"], "customer_id": ["not a customer column"]}),
    }
    out, pairs = pseudonymise_tables(tables, "k")
    tx = out["transactions"]["customer_id"]
    assert tx.tolist()[:3] == [pseudonymise("a", "k"), pseudonymise("b", "k"), pseudonymise("a", "k")]
    assert pd.isna(tx.iloc[3]) and str(tx.dtype) == "str"
    assert out["customers"]["customer_id"].tolist() == [pseudonymise("b", "k"), pseudonymise("客户/42", "k")]
    assert out["products"] is tables["products"]
    assert dict(zip(pairs["pseudonym"], pairs["customer_id"])) == {
        pseudonymise(c, "k"): c for c in ("a", "b", "客户/42")}
    assert pseudonymise_many(["a", "b"], "other").tolist() == [pseudonymise("a", "other"), pseudonymise("b", "other")]
    assert tables["transactions"]["customer_id"].iloc[0] == "a"  # the caller's tables are left as they were


def test_the_map_grows_by_run_forgets_the_erased_and_is_private(tmp_path):
    identities = IdentityMap(tmp_path / "identities.parquet")
    assert identities.resolve(["x"]).tolist() == [None]
    first = pd.DataFrame({"pseudonym": ["p1", "p2"], "customer_id": ["a", "b"]})
    assert identities.record(first) == 2
    assert stat.S_IMODE(os.stat(identities.path).st_mode) == 0o600
    # A later run meets a new customer and one erased since: older customers stay (an older version holds them).
    second = pd.DataFrame({"pseudonym": ["p3", "p2"], "customer_id": ["c", "b"]})
    assert identities.record(second, erased={"p1"}) == 2
    assert identities.resolve(np.array(["p3", "p1", "p2", "nobody"], dtype=object)).tolist() == ["c", None, "b", None]
    assert identities.forget(["p2", "nobody"]) == 1
    assert identities.read()["customer_id"].tolist() == ["c"]
    assert not list(tmp_path.glob(".identities*"))  # nothing half-written left behind


def test_the_key_fingerprint_tells_keys_apart_and_names_no_customer():
    assert key_check("k") == key_check("k") != key_check("other")
    assert len(key_check("k")) == 24
