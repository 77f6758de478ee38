"""The event journal: durable appends, every worker sees every line, torn lines, replay, erasures."""

from __future__ import annotations

import orjson

from serving.events import DAY, EventJournal


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def journal(folder, erased=None, **kwargs) -> EventJournal:
    j = EventJournal(folder, erased if erased is not None else set(), **kwargs)
    j.open()
    return j


def test_an_event_written_by_one_worker_is_seen_by_another(tmp_path):
    a, b = journal(tmp_path), journal(tmp_path)
    record = a.append_event("p1", "P1", "view", 100.0)
    assert [e.product_id for e in a.recent("p1")] == ["P1"]
    assert b.recent("p1") == []
    b.sync()  # what every request does first
    assert [(e.ts, e.event_type, e.product_id) for e in b.recent("p1")] == [(100.0, "view", "P1")]
    line = orjson.loads(a.files()[0].read_text())
    assert line["id"] == record["id"] and line["customer"] == "p1"


def test_sync_reads_nothing_when_nothing_was_written(tmp_path, monkeypatch):
    a = journal(tmp_path)
    a.append_event("p1", "P1", "view", 1.0)
    reads = []
    monkeypatch.setattr("serving.events.os.pread", lambda *args: reads.append(args) or b"")
    for _ in range(100):
        a.sync()
    assert reads == []


def test_a_torn_line_does_not_swallow_the_next(tmp_path):
    a = journal(tmp_path)
    a.append_event("p1", "P1", "view", 1.0)
    with open(a.files()[0], "ab") as fh:  # a crash in the middle of a write
        fh.write(b'{"type": "event", "customer": "p2", "prod')
    a.append_event("p3", "P3", "cart", 2.0)
    b = journal(tmp_path)
    assert [e.product_id for e in b.recent("p3")] == ["P3"] and b.recent("p2") == []
    assert b.bad_lines == 1


def test_replay_covers_the_window_only(tmp_path):
    clock = Clock(10 * DAY + 5.0)
    old = journal(tmp_path, clock=clock)
    old.append_event("p1", "P-old", "view", clock.now)
    clock.now = 40 * DAY + 5.0
    old.append_event("p1", "P-recent", "view", clock.now)
    clock.now = 45 * DAY + 5.0
    old.append_event("p1", "P-today", "purchase", clock.now)
    fresh = journal(tmp_path, replay_days=30, clock=clock)
    assert [e.product_id for e in fresh.recent("p1")] == ["P-recent", "P-today"]


def test_an_event_written_just_before_midnight_is_read_after_it(tmp_path):
    clock_a, clock_b = Clock(3 * DAY - 1.0), Clock(3 * DAY + 1.0)
    a, b = journal(tmp_path, clock=clock_a), journal(tmp_path, clock=clock_b)
    b.sync()  # b already tails the new day's file
    a.append_event("p1", "P1", "view", clock_a.now)  # a still writes yesterday's
    b.sync()
    assert [e.product_id for e in b.recent("p1")] == ["P1"]
    assert len(a.files()) == 2


def test_erasure_lines_make_every_worker_forget(tmp_path):
    erased_a, erased_b = set(), set()
    a, b = journal(tmp_path, erased_a), journal(tmp_path, erased_b)
    a.append_event("p1", "P1", "view", 1.0)
    b.sync()
    assert b.recent("p1")
    a.append_erasure("p1")
    assert a.recent("p1") == [] and "p1" in erased_a
    b.sync()
    assert b.recent("p1") == [] and "p1" in erased_b
    a.append_event("p1", "P2", "view", 2.0)  # later events of an erased customer are kept out
    b.sync()
    assert b.recent("p1") == []
    assert journal(tmp_path).recent("p1") == []


def test_memory_stays_bounded(tmp_path):
    a = journal(tmp_path, per_customer=3, max_customers=2)
    for i in range(5):
        a.append_event("p1", f"P{i}", "view", float(i))
    assert [e.product_id for e in a.recent("p1")] == ["P2", "P3", "P4"]
    a.append_event("p2", "P1", "view", 1.0)
    a.append_event("p3", "P1", "view", 1.0)
    assert a.recent("p1") == [] and a.recent("p3")


def test_an_event_that_cannot_be_written_answers_503_with_retry_after(served, monkeypatch):
    # Issue 11: a journal write failure (disk full, read-only) answered 500; the sender must learn to retry.
    import errno
    import os

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    event = {"customer_id": "C0001", "product_id": "P001", "event_type": "view"}
    monkeypatch.setattr("serving.events.os.fdatasync", disk_full)
    r = served.post("/v1/events", json=event, key="ingest")
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    assert r.json()["detail"] == "the event could not be recorded (No space left on device); send it again later"
    monkeypatch.undo()
    assert served.post("/v1/events", json=event, key="ingest").status_code == 202
    spec = served.client.get("/openapi.json").json()["paths"]["/v1/events"]["post"]["responses"]
    assert "Retry-After" in spec["503"]["headers"]
