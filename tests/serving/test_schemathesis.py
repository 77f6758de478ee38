"""Schemathesis against the app's own OpenAPI document: no 5xx, responses, status codes and headers as documented,
each operation a test of its own.

The app is handed to schemathesis unstarted: schemathesis runs its lifespan itself (once per process), which is
why it is not a TestClient app. The schema comes from the document of an app that never starts, because the
fixture-based loader does not run on pytest 9, and the app behind it is set by a fixture.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving.helpers import create_keys, share_installation



class LateApp:
    """An ASGI app whose target is set by a fixture (the registry it needs exists only then)."""

    target = None

    async def __call__(self, scope, receive, send):
        await self.target(scope, receive, send)


APP = LateApp()
schema = schemathesis.openapi.from_dict(
    create_app(ServingSettings(data_dir=Path(tempfile.gettempdir()) / "clientele-openapi-only")).openapi())
schema.app = APP


@pytest.fixture(scope="module")
def admin_key(registry, tmp_path_factory) -> str:
    data = tmp_path_factory.mktemp("fuzzed")
    share_installation(registry.root, data)
    settings = ServingSettings(data_dir=data, cache_path=registry.root / "cache",
                               mlflow_tracking_uri=registry.settings.tracking_uri, poll_interval_s=3600,
                               rate_limit_per_s=1e9)
    keys = create_keys(settings)
    app = create_app(settings)
    app.state.services.store.check()  # loaded before the first case arrives
    APP.target = app
    return keys["admin"]


# One test per operation, each with its own node id (`[GET /v1/models]`): every operation is reported, and
# pytest-xdist sees distinct tests where schemathesis' own parametrisation gave thirteen of the same name.
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_api_conforms_to_its_schema(operation, admin_key):
    # Schema-valid input can still be refused: cursors are opaque (any string fits the schema, few are cursors),
    # and price bands and event times have rules a schema cannot state (min <= max, not in the future).
    # A query string carries text only: `segment=false` is a fine segment name, though the generator meant a
    # boolean where an array belongs; bodies (typed JSON) keep the check.
    excluded = [positive_data_acceptance] + ([negative_data_rejection] if operation.method.upper() == "GET" else [])

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def conforms(case):
        case.call_and_validate(headers={"X-API-Key": admin_key}, excluded_checks=excluded)

    conforms()


def test_every_operation_is_its_own_test():
    labels = [op.label for op in OPERATIONS]
    assert len(labels) == len(set(labels)) >= 10
    assert "GET /v1/customers/{customer_id}/recommendations" in labels
