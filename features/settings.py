"""Runtime settings, read from the environment (prefix CLIENTELE_) in entry points only; training and serving both
import them from here, with the names of the registered models."""

from __future__ import annotations

import os
from pathlib import Path

from typing import Any

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.identities import IDENTITY_FILE, IdentityMap
from features.privacy import ErasureList, pseudonym_key

# Names of the three registered models in the MLflow registry.
RECOMMENDER = "recommender"
CHURN = "churn"
CLV = "clv"
UPLIFT = "uplift"
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

    configured_pseudonym_key: str | None = Field(None, validation_alias="clientele_pseudonym_key", repr=False)
    """CLIENTELE_PSEUDONYM_KEY (or ``Settings(pseudonym_key=...)``): the HMAC key, when set explicitly. Unset, each
    installation uses a random key kept in <data_dir>/pseudonym.key (see :attr:`pseudonym_key`)."""

    demo: bool = False
    """CLIENTELE_DEMO=1 (set by `make demo`): the only place the public development pseudonym key is accepted."""

    _pseudonym_key: str | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _key_by_its_name(cls, data: Any) -> Any:
        # ``Settings(pseudonym_key=...)`` reads naturally; the field's alias keeps the bare environment variable
        # PSEUDONYM_KEY from being read as well.
        if isinstance(data, dict) and "pseudonym_key" in data:
            data = dict(data)
            data["clientele_pseudonym_key"] = data.pop("pseudonym_key")
        return data

    @property
    def pseudonym_key(self) -> str:
        """Secret key of the HMAC that pseudonymises customer ids in logs, MLflow and the erasure list.

        Training, serving and the CLI share the data folder and so the key: the configured one, else
        <data_dir>/pseudonym.key, generated (mode 600) on first use. Raises ConfigError for the public
        development key outside the demo.
        """
        if self._pseudonym_key is None:
            self._pseudonym_key = pseudonym_key(self.data_dir, self.configured_pseudonym_key, self.demo,
                                                self.erasure_file)
        return self._pseudonym_key

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
        """Registered model name of ``recommender``, ``churn``, ``clv`` or ``uplift``."""
        return f"{self.model_prefix}-{kind}"

    @property
    def erasure_file(self) -> Path:
        """Pseudonymised ids of erased customers: served data drops them, training skips them."""
        return self.data_dir / "erasure" / "erased.txt"

    def erasures(self) -> ErasureList:
        """The erasure list as it is now: every load of customer data drops the customers on it."""
        return ErasureList.read(self.erasure_file, self.pseudonym_key)

    @property
    def identity_file(self) -> Path:
        """Pseudonym -> the customer's own id, for exports (see :mod:`features.identities`); never in MLflow."""
        return self.data_dir / IDENTITY_FILE

    def identities(self) -> IdentityMap:
        """The data folder's identity map."""
        return IdentityMap(self.identity_file)


def get_settings() -> Settings:
    """Settings as the environment says now (called by entry points, never at import time)."""
    return Settings()
