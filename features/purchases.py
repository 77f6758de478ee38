"""Which transaction lines are purchases: the one place that reads the ``is_return`` flag.

Every model, label and feature that counts purchases leaves returns out through these two functions, so a missing
flag (a table built in code rather than loaded) means "not a return" everywhere alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.columns import Columns as C


def returned(tx: pd.DataFrame) -> np.ndarray:
    """Boolean mask of ``tx``'s return lines: ``is_return`` true (missing: not a return); all false without it."""
    if C.is_return not in tx.columns:
        return np.zeros(len(tx), dtype=bool)
    return tx[C.is_return].to_numpy(dtype=bool, na_value=False)


def without_returns(tx: pd.DataFrame) -> pd.DataFrame:
    """The lines of ``tx`` that are not returns (``tx`` itself when it has no ``is_return`` column)."""
    if C.is_return not in tx.columns:
        return tx
    return tx[~returned(tx)]
