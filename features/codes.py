"""Factor codes of id columns, worked out once per column.

Factorising a 10M-row text column takes seconds, and the loader's cross-table checks, the customer population
and the feature groups all need the same customer and product codes. Text columns are
Arrow-backed and Arrow arrays never change in place (an assignment to a column swaps in a new array), so the codes
of a column can be remembered for as long as its array lives, and are forgotten with it.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import pandas as pd

_remembered: dict[int, tuple[weakref.ref, np.ndarray, pd.Index]] = {}
_lock = threading.Lock()


def factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(values)``: codes (-1 for missing) and the distinct values in order of appearance.

    The codes are read-only and shared between callers; copy them before changing them.
    """
    array = getattr(values.array, "_pa_array", None)
    if array is None:  # numpy-backed (object, numbers): nothing guarantees the values stay as they are
        codes, uniques = pd.factorize(values)
        return codes, pd.Index(uniques)
    key = id(array)
    with _lock:
        hit = _remembered.get(key)
    if hit is not None and hit[0]() is array:
        return hit[1], hit[2]
    codes, uniques = pd.factorize(values)
    codes = codes.astype(np.int32) if len(uniques) < np.iinfo(np.int32).max else codes
    codes.flags.writeable = False
    uniques = pd.Index(uniques)
    with _lock:
        _remembered[key] = (weakref.ref(array, lambda _, key=key: _forget(key)), codes, uniques)
    return codes, uniques


def _forget(key: int) -> None:
    with _lock:
        _remembered.pop(key, None)
