"""Turning feature frames into model matrices the same way at training and scoring time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.columns import Columns as C
from features.exceptions import DataError

# Columns of a feature frame that are keys or labels, never model inputs.
NON_FEATURES = frozenset({C.customer_id, "cutoff", "churned", "future_orders", "future_spend"})


@dataclass
class FrameEncoder:
    """Remembers the feature columns and category vocabularies seen at fit time.

    Numbers and booleans become float64 (missing stays NaN); text columns become pandas categoricals with the
    vocabulary of the training data (unseen values are missing), which LightGBM splits on natively.
    """

    columns: list[str] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame, exclude: frozenset[str] = NON_FEATURES) -> "FrameEncoder":
        self.columns = [c for c in frame.columns if c not in exclude]
        self.categories = {}
        for col in self.columns:
            series = frame[col]
            if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
                self.categories[col] = sorted(series.dropna().astype("str").unique().tolist())
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model matrix, columns in training order.

        Raises
        ------
        DataError
            A column the model was trained on is not in ``frame`` (e.g. scoring data without a table the
            training data had): filling it with missing values would score every customer on made-up inputs.
        """
        missing = [col for col in self.columns if col not in frame.columns]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise DataError(f"feature column '{missing[0]}'{more} the model was trained on cannot be built from "
                            f"the data given: is a table or column missing?")
        out: dict[str, Any] = {}
        for col in self.columns:
            values = frame[col]
            if col in self.categories:
                out[col] = pd.Categorical(values.astype("str").where(values.notna()), categories=self.categories[col])
            else:
                out[col] = pd.to_numeric(values.astype("float64") if pd.api.types.is_bool_dtype(values)
                                         else values, errors="coerce").astype("float64")
        return pd.DataFrame(out, index=frame.index)

    @property
    def categorical(self) -> list[str]:
        return list(self.categories)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "categories": self.categories}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FrameEncoder":
        return cls(columns=list(data["columns"]), categories={k: list(v) for k, v in data["categories"].items()})


def prediction_threads() -> int:
    """Threads for LightGBM predictions: every core. Each row is scored on its own, so the scores are the same
    whatever the thread count (training keeps its configured threads: there, they can change the model)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
