"""Prometheus metrics: request latency per route template, model versions, reloads, events.

Request timings are counted into per-worker buckets on the request path (a bisect and two additions) and
added to the Prometheus histogram about once a second and before every scrape: in multiprocess mode each
``observe`` takes a lock and writes memory-mapped values, 12 us a request, a tenth of the whole budget.

With one worker the samples stay in memory and ``/metrics`` reports this process's registry. With several
workers (``clientele serve --workers N``) prometheus_client runs in multiprocess mode: the serve command points
``PROMETHEUS_MULTIPROC_DIR`` at an emptied folder before the workers start (and before prometheus_client is
imported), each worker writes its samples there, and ``/metrics`` on any worker reports the sum over workers (latency, counters) and one
series per worker for the loaded model versions (``pid`` label), which shows a worker that has not swapped.
"""

from __future__ import annotations

import bisect
import os
import threading

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, values)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def multiprocess_dir() -> str | None:
    """The folder the workers share, when this process's metrics live there.

    prometheus_client chooses in-memory or memory-mapped values once, when it is imported: a folder named in
    the environment only later holds nothing of this process, and reading it gave an empty /metrics (issue 11).
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    return path if path and getattr(values.ValueClass, "_multiprocess", False) else None


class Metrics:
    """The service's metrics, registered in their own registry (several apps can live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram("clientele_request_duration_seconds", "Request latency by route template.",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Counter("clientele_requests_total", "Requests by route template and status.",
                                ["method", "route", "status"], registry=r)
        self.model_version = Gauge("clientele_model_version", "Registry version of each loaded model.", ["kind"],
                                   registry=r, multiprocess_mode="liveall")
        self.reloads = Counter("clientele_model_reloads_total",
                               "Registry checks by outcome (swapped, unchanged, failed).", ["outcome"], registry=r)
        self.build_seconds = Histogram("clientele_snapshot_build_seconds",
                                       "Time to load new model versions and build the snapshot off the request path.",
                                       buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300), registry=r)
        self.events = Counter("clientele_events_total", "Events accepted by type.", ["event_type"], registry=r)
        self.rate_limited = Counter("clientele_rate_limited_total", "Requests refused with 429, by key name.",
                                    ["key"], registry=r)
        self._pending: dict[tuple[str, str], list[float]] = {}
        self._statuses: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request (added to the Prometheus metrics by :meth:`flush`)."""
        key = (method, route)
        with self._lock:
            counts = self._pending.get(key)
            if counts is None:
                counts = self._pending[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)  # buckets, +Inf, sum
            counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            counts[-1] += seconds
            skey = (method, route, status)
            self._statuses[skey] = self._statuses.get(skey, 0) + 1

    def flush(self) -> None:
        """Add the counted requests to the histogram and counters."""
        with self._lock:
            pending, self._pending = self._pending, {}
            statuses, self._statuses = self._statuses, {}
        for (method, route), counts in pending.items():
            child = self.latency.labels(method, route)
            buckets = getattr(child, "_buckets", None)
            if buckets is None or len(buckets) != len(counts) - 1:  # not the prometheus_client this was written for
                for i, n in enumerate(counts[:-1]):
                    bound = (LATENCY_BUCKETS + (float("inf"),))[i]
                    for _ in range(int(n)):
                        child.observe(bound)
                continue
            for value, n in zip(buckets, counts[:-1]):
                if n:
                    value.inc(n)
            child._sum.inc(counts[-1])
        for (method, route, status), n in statuses.items():
            self.requests.labels(method, route, str(status)).inc(n)

    def render(self) -> tuple[bytes, str]:
        """Exposition text: all workers' samples in multiprocess mode, else this registry's."""
        self.flush()
        path = multiprocess_dir()
        if path:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=path)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def mark_worker_dead() -> None:
    """Drop this worker's live-only series (the version gauges) when it stops."""
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), path)
