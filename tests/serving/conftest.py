"""Serving fixtures: a real MLflow registry with the three models, and apps built on it per test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving.helpers import (create_keys, layout_tables, register, settings_for, share_installation,
                                   write_layouts)

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class Registry:
    """A data folder whose MLflow registry holds version 1 of the three models (champions)."""

    def __init__(self, root: Path):
        self.root = root
        self.settings = settings_for(root)
        self.tables = layout_tables()
        self.versions = {kind: register(self.settings, kind, folder)
                         for kind, folder in write_layouts(root / "layouts-v1", self.tables,
                                                           installation=self.settings).items()}


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry(tmp_path_factory.mktemp("registry"))


class Served:
    """An app on the shared registry with its own data folder (keys, events, erasures), started and loaded."""

    def __init__(self, client: TestClient, settings: ServingSettings, keys: dict[str, str]):
        self.client = client
        self.settings = settings
        self.keys = keys
        self.services = client.app.state.services  # type: ignore[attr-defined]

    def get(self, url: str, key: str | None = "admin", **kwargs):
        headers = {"X-API-Key": self.keys[key]} if key else {}
        return self.client.get(url, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, url: str, json=None, key: str | None = "admin", **kwargs):
        headers = {"X-API-Key": self.keys[key]} if key else {}
        return self.client.post(url, json=json, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)

    def delete(self, url: str, key: str | None = "admin", **kwargs):
        headers = {"X-API-Key": self.keys[key]} if key else {}
        return self.client.delete(url, headers=headers, **kwargs)


def start_served(settings: ServingSettings, keys: dict[str, str], clients: list[TestClient]) -> Served:
    """An app for ``settings`` started and loaded (its client added to ``clients``, which the caller closes)."""
    client = TestClient(create_app(settings))
    client.__enter__()
    clients.append(client)
    served = Served(client, settings, keys)
    assert served.services.store.loaded.wait(60), served.services.store.last_error
    return served


@pytest.fixture
def make_served(registry: Registry, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    clients: list[TestClient] = []

    def make(name: str = "app", rate_limit: float | None = None, **overrides) -> Served:
        share_installation(registry.root, tmp_path / name)
        settings = ServingSettings(data_dir=tmp_path / name, mlflow_tracking_uri=registry.settings.tracking_uri,
                                   cache_path=registry.root / "cache", poll_interval_s=3600, **overrides)
        return start_served(settings, create_keys(settings, rate_limit=rate_limit), clients)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def served(make_served: Callable[..., Served]) -> Served:
    return make_served()
