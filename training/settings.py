"""Runtime settings, read from the environment (prefix CLIENTELE_) in entry points only."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Clientele keeps its data and how it reaches its services."""

    model_config = SettingsConfigDict(env_prefix="CLIENTELE_", extra="ignore")

    data_dir: Path = Path("data")
    """Generated data, rejects files, the MLflow store and artefacts live under this folder."""

    def rejects_dir(self, dataset_name: str) -> Path:
        """Folder for one dataset's rejects files."""
        return self.data_dir / "rejects" / dataset_name


def get_settings() -> Settings:
    """Settings as the environment says now (called by entry points, never at import time)."""
    return Settings()
