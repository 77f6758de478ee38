"""The model store: polls the registry, builds a new snapshot off the request path and swaps one reference.

Requests read ``store.snapshot`` once and use only that object, so a response never mixes versions, and a swap
is a single attribute assignment: no lock on the request path, no request ever sees a half-built snapshot, and
the old snapshot lives until the last request holding it finishes. A failed build leaves the old one serving.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from features.identities import key_check
from features.privacy import KEY_FILE
from training.layout import PSEUDONYM_CHECK, ArtifactError
from serving.compiled import RecommenderPart, ScoresPart, load_part
from serving.erasure import Erasures
from serving.metrics import Metrics
from serving.registry import RegisteredVersion, Registry
from serving.settings import ServingSettings
from serving.snapshot import ModelInfo, Snapshot, assemble
from features.settings import CHURN, CLV, RECOMMENDER, UPLIFT

log = logging.getLogger(__name__)

KINDS = (RECOMMENDER, CHURN, CLV, UPLIFT)  # uplift is optional: served when a champion exists
TICK_S = 1.0  # how often the background thread looks at the reload marker
RETRY_S = 5.0  # first-load retry interval while the registry is unreachable or empty


class ModelStore:
    """Holds the current :class:`Snapshot` and keeps it in step with the registry's champions."""

    def __init__(self, settings: ServingSettings, erasures: Erasures, metrics: Metrics,
                 registry: Registry | None = None):
        self.settings = settings
        self.erasures = erasures
        self.metrics = metrics
        self.registry = registry or Registry(settings)
        self.snapshot: Snapshot | None = None
        self.last_check_at: str | None = None
        self.last_error: str | None = None
        self.loaded = threading.Event()
        self._parts: dict[tuple[str, str], RecommenderPart | ScoresPart] = {}
        self._check_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ticks: list[Callable[[], Any]] = []
        self._marker_stamp = self._marker()

    # -------------------------------------------------------------------------------------------- readiness

    @property
    def missing(self) -> list[str]:
        """Required kinds not loaded yet."""
        loaded = self.snapshot.models if self.snapshot is not None else {}
        return [k for k in self.settings.required_models if k not in loaded]

    @property
    def ready(self) -> bool:
        return self.snapshot is not None and not self.missing

    # ------------------------------------------------------------------------------------------------ checks

    def check(self) -> dict[str, Any]:
        """Ask the registry for the champions; build and swap a snapshot if any changed."""
        with self._check_lock:
            started = time.perf_counter()
            self.last_check_at = _now()
            try:
                champions = {kind: self.registry.champion(kind) for kind in KINDS}
                current = self.snapshot.models if self.snapshot is not None else {}
                wanted: dict[str, RegisteredVersion] = {}
                for kind, found in champions.items():
                    if found is not None:
                        wanted[kind] = found
                    elif kind in current:
                        # An alias removed by hand is not a reason to stop serving: keep what is loaded.
                        log.warning("%s has no champion any more; still serving version %s",
                                    self.settings.model_name(kind), current[kind].version)
                if {k: v.version for k, v in wanted.items()} == {k: i.version for k, i in current.items()} \
                        and self.snapshot is not None:
                    self.metrics.reloads.labels("unchanged").inc()
                    self.last_error = None
                    return {"changed": False, "models": self.describe()}
                self._swap(wanted, current)
            except Exception as exc:  # noqa: BLE001 - keep serving the old snapshot, say why in /v1/models
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.metrics.reloads.labels("failed").inc()
                log.error("model check failed, still serving %s: %s",
                          self.snapshot.version_key if self.snapshot else "nothing", self.last_error)
                raise
            self.metrics.build_seconds.observe(time.perf_counter() - started)
            self.metrics.reloads.labels("swapped").inc()
            self.last_error = None
            return {"changed": True, "models": self.describe()}

    def _check_pseudonyms(self, version: RegisteredVersion, manifest: dict[str, Any]) -> None:
        """Refuse a version whose customer pseudonyms were made with another key than this server's: it would
        know none of its customers and answer each as a stranger."""
        if manifest.get(PSEUDONYM_CHECK) != key_check(self.settings.pseudonym_key):
            raise ArtifactError(f"{version.name} version {version.version} was trained with another pseudonym key "
                                f"than this server's ({self.settings.data_dir / KEY_FILE}): serve from the data "
                                f"folder training used, or set CLIENTELE_PSEUDONYM_KEY to its key")

    def _swap(self, wanted: dict[str, RegisteredVersion], current: dict[str, ModelInfo]) -> None:
        parts: dict[str, RecommenderPart | ScoresPart] = {}
        models: dict[str, ModelInfo] = {}
        for kind, version in wanted.items():
            key = (kind, version.version)
            part = self._parts.get(key)
            if part is None:
                part = load_part(kind, self.registry.compiled(version))
                self._check_pseudonyms(version, part.manifest)
                _prefault(part)
            parts[kind] = part
            kept = current.get(kind)
            models[kind] = kept if kept is not None and kept.version == version.version else ModelInfo(
                kind=kind, name=version.name, version=version.version, run_id=version.run_id, loaded_at=_now(),
                manifest=part.manifest)
        for kind, info in current.items():  # kinds whose champion vanished stay as they were
            if kind not in models:
                models[kind] = info
                parts[kind] = self._parts[(kind, info.version)]
        snapshot = assemble(models, parts, set(self.erasures.pseudonyms), self.settings.identities(),
                            self.settings.consent_when_unknown)
        self.snapshot = snapshot  # the swap: one reference, read once per request
        self._parts = {(k, models[k].version): p for k, p in parts.items()}
        # A million ids in dicts and lists make every full garbage collection a pause of tens of milliseconds
        # on the request path; frozen, the collector skips them (reference counting still frees them).
        gc.collect()
        gc.freeze()
        self.loaded.set()
        for kind, info in models.items():
            if info.version.isdigit():
                self.metrics.model_version.labels(kind).set(int(info.version))
        log.info("serving %s", snapshot.version_key)
        for kind, info in models.items():
            try:
                self.registry.prune(info.name, {info.version})
            except OSError as exc:
                log.warning("could not prune the cache of %s: %s", info.name, exc)

    def describe(self) -> list[dict[str, Any]]:
        """The loaded versions, for /v1/models."""
        snap = self.snapshot
        if snap is None:
            return []
        return [{"kind": i.kind, "name": i.name, "version": i.version, "label": i.label, "run_id": i.run_id,
                 "loaded_at": i.loaded_at, "cutoff": i.manifest.get("cutoff"),
                 "created_at": i.manifest.get("created_at")} for i in snap.models.values()]

    def load_before_serving(self, wait_s: float) -> None:
        """Load the champions before this worker accepts its first connection (the app's startup calls this).

        Workers share one listening socket and uvicorn starts accepting on it only after startup, so while this
        worker loads, the others answer; had it accepted first, it would answer 503 "not loaded" right after
        another worker's /readyz said 200 (issue 11). Failures (registry unreachable, a download breaking) are
        retried for up to ``wait_s``, then the worker starts anyway and answers /readyz 503 itself. A registry
        without the required champions returns at once: every worker then says 503 alike.
        """
        deadline = time.monotonic() + wait_s
        while not self._stop.is_set():
            try:
                self.check()
                return
            except Exception:  # noqa: BLE001 - logged by check; the background thread keeps trying
                if time.monotonic() + RETRY_S > deadline:
                    return
            self._stop.wait(RETRY_S)

    # -------------------------------------------------------------------------------------- background thread

    def on_tick(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` about once a second in the background thread (metrics flush)."""
        self._ticks.append(callback)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="clientele-model-store", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def request_reload_everywhere(self) -> None:
        """Make every worker check the registry within a second (they watch the marker's timestamp)."""
        marker = self.settings.reload_marker
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{time.time()}\n")

    def _marker(self) -> int | None:
        try:
            return self.settings.reload_marker.stat().st_mtime_ns
        except OSError:
            return None

    def _run(self) -> None:
        next_check = 0.0
        while not self._stop.is_set():
            for tick in self._ticks:
                try:
                    tick()
                except Exception as exc:  # noqa: BLE001 - a failed tick must not stop model checks
                    log.error("background task failed: %s", exc)
            stamp = self._marker()
            now = time.monotonic()
            if stamp != self._marker_stamp or now >= next_check:
                self._marker_stamp = stamp
                try:
                    self.check()
                    ok = self.ready
                except Exception:  # noqa: BLE001 - logged by check
                    ok = False
                wait = self.settings.poll_interval_s if ok else min(RETRY_S, self.settings.poll_interval_s)
                next_check = time.monotonic() + wait
            self._stop.wait(TICK_S)


def _prefault(part: RecommenderPart | ScoresPart) -> None:
    """Touch every page of a part's memory-mapped arrays here, off the request path, so the first requests
    after a swap do not each wait on page faults (the pages are shared with the other workers)."""
    if isinstance(part, RecommenderPart):
        arrays = list(part.a.values())
    else:
        tables = [part.scores] + [t for t in (part.profiles, part.moments) if t is not None]
        arrays = [a for t in tables for c in t.columns.values() for a in (c.values, c.valid, c.offsets)
                  if a is not None]
    for array in arrays:
        if array.size and array.flags.c_contiguous:
            int(array.reshape(-1).view(np.uint8)[::4096].sum())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
