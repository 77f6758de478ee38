"""Runtime settings, read from the environment (prefix CLIENTELE_) in entry points only."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from features.privacy import ErasureList

# Names of the three registered models in the MLflow registry.
RECOMMENDER = "recommender"
CHURN = "churn"
CLV = "clv"
CHAMPION = "champion"
CHALLENGER = "challenger"


class Settings(BaseSettings):
    """Where Clientele keeps its data and how it reaches its services."""

    model_config = SettingsConfigDict(env_prefix="CLIENTELE_", extra="ignore")

    data_dir: Path = Path("data")
    """Generated data, rejects files, the MLflow store and artefacts, served events live under this folder."""

    mlflow_tracking_uri: str | None = None
    """MLflow tracking server or store; default: SQLite at <data_dir>/mlflow/mlflow.db (MLFLOW_TRACKING_URI
    is honoured too)."""

    model_prefix: str = "clientele"
    """Registered model names are <prefix>-recommender, <prefix>-churn and <prefix>-clv."""

    pseudonym_key: str = "clientele-development-key"
    """Secret key of the HMAC that pseudonymises customer ids in logs, MLflow and the erasure list.
    Set a real secret in production."""

    def rejects_dir(self, dataset_name: str) -> Path:
        """Folder for one dataset's rejects files."""
        return self.data_dir / "rejects" / dataset_name

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI in effect."""
        uri = self.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        return uri or f"sqlite:///{(self.data_dir / 'mlflow' / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        """Where a local tracking store keeps run artefacts."""
        return (self.data_dir / "mlflow" / "artifacts").resolve()

    def model_name(self, kind: str) -> str:
        """Registered model name of ``recommender``, ``churn`` or ``clv``."""
        return f"{self.model_prefix}-{kind}"

    @property
    def erasure_file(self) -> Path:
        """Pseudonymised ids of erased customers: served data drops them, training skips them."""
        return self.data_dir / "erasure" / "erased.txt"

    def erasures(self) -> ErasureList:
        """The erasure list as it is now: every load of customer data drops the customers on it."""
        return ErasureList.read(self.erasure_file, self.pseudonym_key)


def get_settings() -> Settings:
    """Settings as the environment says now (called by entry points, never at import time)."""
    return Settings()
