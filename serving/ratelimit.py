"""Per-key rate limits: a token bucket per API key; a refused request learns when to retry (Retry-After)."""

from __future__ import annotations

import math
import threading
import time
from typing import Callable


class RateLimiter:
    """Token buckets keyed by API key id, for one worker process.

    Each worker holds its own buckets at ``rate / workers`` (the kernel spreads connections over the workers),
    so a key's limit across the server is about the configured rate without any shared state on the hot path.
    A key's burst follows its own rate: ``max(1, rate * burst_s)`` (a global burst let a key of 2/s send 1000
    requests at once, issue 11).
    """

    def __init__(self, workers: int = 1, burst_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.share = 1.0 / max(1, workers)
        self.burst_s = burst_s
        self.clock = clock
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def burst(self, rate: float) -> float:
        """Requests a key of ``rate`` per second may send at once, across the server."""
        return max(1.0, rate * self.burst_s)

    def acquire(self, key: str, rate: float) -> float:
        """0 when the request may go ahead, else the seconds until a token is free."""
        burst = max(1.0, self.burst(rate) * self.share)
        rate = rate * self.share
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [burst, now]
            tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / rate


def retry_after(seconds: float) -> str:
    """Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
