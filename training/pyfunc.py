"""MLflow pyfunc wrappers: how the registry holds each model, with its serving artefacts beside it.

Each registered version carries two artefacts: ``model`` (the fitted model as its own ``save`` wrote it) and
``serving`` (the precomputed tables serving loads, see :mod:`training.export`). ``predict`` scores new rows with
the fitted model, so batch scoring and ad-hoc use go through the registry too.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import mlflow.pyfunc
import pandas as pd

# What a model environment needs; pinned to what trained it so a loaded model behaves the same.
_REQUIREMENTS = ("numpy", "pandas", "pyarrow", "scipy", "lightgbm", "implicit", "torch", "scikit-learn",
                 "pydantic", "pyyaml")


def pip_requirements() -> list[str]:
    """Exact versions of the packages the models need (MLflow's own inference imports every model; slow)."""
    out = []
    for name in _REQUIREMENTS:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return out


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a customer feature frame (features.pipeline.feature_frame). Output: ``churn_probability``."""

    def load_context(self, context: Any) -> None:
        from models.churn.lightgbm import ChurnModel

        self.model = ChurnModel.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return pd.DataFrame({"churn_probability": self.model.predict_proba(model_input)})


class ClvPyfunc(mlflow.pyfunc.PythonModel):
    """Input: a CLV summary (features.clv_summary.clv_summary: frequency, recency, T, monetary_value).
    Output: ``p_alive``, ``expected_purchases``, ``expected_spend``, ``clv``."""

    def load_context(self, context: Any) -> None:
        from models.clv.lifetime_value import LifetimeValueModel

        self.model = LifetimeValueModel.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        summary = model_input.copy()
        summary.attrs["time_unit_days"] = self.model.time_unit_days
        return self.model.predict(summary).reset_index(drop=True)


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """Input: ``customer_id`` (and optionally ``n``). Output: one row per recommended product with ``rank``,
    ``score``, ``reason`` and ``strategy``."""

    def load_context(self, context: Any) -> None:
        from models.recommenders.base import Recommender

        self.model = Recommender.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        n = int(model_input["n"].iloc[0]) if "n" in model_input.columns and len(model_input) else 10
        return self.model.recommend(model_input["customer_id"].astype("str").tolist(), n=n)
