"""Serving settings: the training settings plus what the API process needs (read in entry points only)."""

from __future__ import annotations

from pathlib import Path

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from features.settings import CHURN, CLV, RECOMMENDER, UPLIFT, Settings


class ServingSettings(Settings):
    """Where the API finds keys, events and models, how it listens and what it allows."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    """Worker processes; `clientele serve --workers N` exports it so every worker sees the same value."""

    keys_path: Path | None = None
    """API keys (hashes only); default <data_dir>/keys.json."""

    events_path: Path | None = None
    """Append-only event journal, one JSONL file per UTC day; default <data_dir>/events."""

    cache_path: Path | None = None
    """Downloaded model versions and their memory-mappable arrays; default <data_dir>/serving/cache."""

    inventory_path: Path | None = None
    """Store stock refreshed between trainings (canonical inventory columns, Parquet or CSV; read again within a
    second of a change, see serving/stock.py); default <data_dir>/inventory.parquet, else <data_dir>/inventory.csv.
    Without the file, the served model's own inventory."""

    poll_interval_s: float = Field(30.0, gt=0)
    """How often the background check asks the registry for a new champion."""

    startup_load_s: float = Field(300.0, ge=0)
    """How long a starting worker retries loading its models before it accepts connections anyway (and answers
    /readyz 503 until they load): a worker takes no request before its models are loaded."""

    required_models: Annotated[list[str], NoDecode] = [RECOMMENDER, CHURN, CLV]
    """Kinds that must be loaded before /readyz says ready, comma-separated in the environment (a POS-only
    dataset has no recommender: CLIENTELE_REQUIRED_MODELS=churn,clv)."""

    rate_limit_per_s: float = Field(500.0, gt=0)
    """Requests per second per API key across all workers (a key's own `rate_limit` overrides it)."""

    rate_limit_burst_s: float = Field(2.0, gt=0)
    """Seconds of its own rate a key may send at once before the rate applies: a key's burst is
    max(1, rate x rate_limit_burst_s), so a key of 2 requests/s may send 4 at once, the default key 1000."""

    max_body_bytes: int = Field(256 * 1024, ge=1024)
    """Largest request body; a batch of 1000 ids of 64 characters fits in about 70 kB."""

    events_replay_days: int = Field(30, ge=0)
    """Days of the journal replayed into memory at start (events before the recommender's cutoff are ignored)."""

    events_per_customer: int = Field(50, ge=1)
    """Recent events kept in memory per customer."""

    events_max_customers: int = Field(2_000_000, ge=1)
    """Customers with recent events kept in memory (least recently active dropped first)."""

    consent_when_unknown: bool = True
    """Customers absent from the served data (new sign-ups) get event fold-in; the storefront sends events only
    for customers who agreed to profiling."""

    access_log: bool = False
    """One log line per request (route template, status, milliseconds, key name; never a customer id)."""

    fast_path: bool = True
    """Hand-written parameter parsing on the storefront routes (serving/api/fastpath.py); off: FastAPI's own."""

    log_level: str = "info"

    @field_validator("required_models", mode="before")
    @classmethod
    def _split_kinds(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [kind for kind in value if kind not in (RECOMMENDER, CHURN, CLV, UPLIFT)]  # type: ignore[union-attr]
        if unknown:
            raise ValueError(f"unknown model kind {unknown[0]!r} (choose from {RECOMMENDER}, {CHURN}, {CLV}, "
                             f"{UPLIFT})")
        return value

    @property
    def keys_file(self) -> Path:
        """JSON file of API keys (name, scopes, SHA-256 of the key)."""
        return self.keys_path or self.data_dir / "keys.json"

    @property
    def events_dir(self) -> Path:
        """Folder of the event journal."""
        return self.events_path or self.data_dir / "events"

    @property
    def inventory_files(self) -> list[Path]:
        """Where the store stock file is looked for, first found first (:attr:`inventory_path`, else the data
        folder's Parquet, then its CSV)."""
        if self.inventory_path is not None:
            return [self.inventory_path]
        return [self.data_dir / "inventory.parquet", self.data_dir / "inventory.csv"]

    @property
    def cache_dir(self) -> Path:
        """Folder of downloaded and compiled model versions, shared by the workers."""
        return self.cache_path or self.data_dir / "serving" / "cache"

    @property
    def reload_marker(self) -> Path:
        """Touched by `POST /v1/admin/reload` so every worker checks the registry within a second."""
        return self.data_dir / "serving" / "reload-requested"

    @property
    def metrics_dir(self) -> Path:
        """prometheus_client multiprocess folder used when the server runs several workers."""
        return self.data_dir / "serving" / "prometheus"


def get_serving_settings() -> ServingSettings:
    """Serving settings as the environment says now (entry points only)."""
    return ServingSettings()
