"""The FastAPI application: ``create_app(settings)``, and the factory uvicorn workers call."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Receive, Scope, Send

from features.privacy import private_files
from serving.api import errors
from serving.api.deps import Services
from serving.api.fastpath import FastLane
from serving.api.middleware import ServingMiddleware
from serving.api.routes import (campaigns, customers, events, health, models, moments, products,
                                recommendations, scores)
from serving.auth import KeyStore
from serving.erasure import Erasures
from serving.events import EventJournal
from serving.metrics import Metrics, mark_worker_dead
from serving.ratelimit import RateLimiter
from serving.settings import ServingSettings, get_serving_settings
from serving.stock import StockFile
from serving.store import ModelStore

log = logging.getLogger("clientele.serving")

DESCRIPTION = """Recommendations for the storefront, customer scores for the CRM, real-time events.

Every `/v1` call needs an API key in the `X-API-Key` header whose scopes allow it: `recommendations:read`
(storefront), `scores:read` (CRM), `events:write` (event intake), `admin` (everything, reloads and erasure).
Create one with `clientele keys create --name NAME --scopes a,b`.
"""


def create_app(settings: ServingSettings, *, start_background: bool = True) -> FastAPI:
    """The API for ``settings``; a worker loads its models before it serves, then checks in the background."""
    metrics = Metrics()
    erasures = Erasures(settings.erasure_file, settings.pseudonym_key, settings.identities())
    journal = EventJournal(settings.events_dir, erasures.pseudonyms, per_customer=settings.events_per_customer,
                           max_customers=settings.events_max_customers, replay_days=settings.events_replay_days)
    store = ModelStore(settings, erasures, metrics)
    keys = KeyStore(settings.keys_file)
    stock = StockFile(settings.inventory_files)
    services = Services(settings=settings, store=store, keys=keys, limiter=RateLimiter(settings.workers, settings.rate_limit_burst_s),
                        journal=journal, erasures=erasures, metrics=metrics, stock=stock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        journal.open()
        if not len(keys):
            log.warning("no API keys in %s: every /v1 call gets 401 until `clientele keys create` adds one",
                        settings.keys_file)
        store.on_tick(metrics.flush)
        stock.refresh()  # before the first request: a worker serves the current stock from the start
        store.on_tick(stock.refresh)
        log.info("worker %d up; %d events replayed; loading models from %s", os.getpid(), journal.replayed,
                 re.sub(r"//[^/@]*@", "//", settings.tracking_uri))  # no credentials in logs
        if start_background:
            # Before the first connection: uvicorn accepts only after startup (see load_before_serving).
            await asyncio.to_thread(store.load_before_serving, settings.startup_load_s)
            store.start()
        try:
            yield
        finally:
            store.stop()
            metrics.flush()
            journal.close()
            mark_worker_dead()

    # /docs and /redoc load Swagger UI and ReDoc from the installed fastapi-offline package, not from a CDN.
    app = FastAPIOffline(title="Clientele", version="1", description=DESCRIPTION, lifespan=lifespan,
                         static_url="/docs-assets")
    app.state.services = services
    modules = (recommendations, products, scores, customers, campaigns, events, models, health, moments)
    for module in modules:
        app.include_router(module.router)
    errors.install(app)
    app.add_middleware(FastLane, routes=[r for m in modules for r in m.router.routes if isinstance(r, APIRoute)])
    app.add_middleware(ServingMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes,
                       log_requests=settings.access_log)
    return app


def configure_logging(level: str) -> None:
    """Log lines with time, level, process: set up in entry points only."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class LoggedErrorsStayLogged:
    """Keeps uvicorn from logging a request's exception a second time.

    Starlette answers 500 through :func:`serving.api.errors.unhandled_error`, which logs the traceback with the
    customer id pseudonymised, and then re-raises for the server to log -- with the raw id in the traceback.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            if scope["type"] != "http":
                raise


def app_from_env() -> ASGIApp:
    """Factory for uvicorn (``serving.app:app_from_env``): settings from the environment, logging set up."""
    private_files()  # also when uvicorn is started directly, not through `clientele serve`
    settings = get_serving_settings()
    configure_logging(settings.log_level)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return LoggedErrorsStayLogged(create_app(settings))
