"""The event journal: real-time events written durably before they are acknowledged, and replayed into memory.

One append-only JSONL file per UTC day (``events-YYYY-MM-DD.jsonl``) shared by all workers. A writer appends a
whole line with one ``write`` under an exclusive ``flock`` and ``fdatasync``s it before the API answers 202, so
an acknowledged event survives a crash of the process or the machine. Every worker tails the same file, which is
how an event accepted by one worker shows in the customer's next recommendations whichever worker serves them:
a writer bumps a counter in a small shared memory-mapped file (``journal.seq``) after each line, and a request
compares that counter with the last one its worker read -- one memory read, no system call -- and reads the new
lines only when it moved. Erasures travel through the journal too, so all workers forget an erased customer at
once.

Lines carry the customer's keyed pseudonym, never the raw id: the journal is kept for replay and for training,
and an erasure must not leave the id behind in files nobody rewrites.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import threading
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import orjson

from serving.recommend import RecentEvent

log = logging.getLogger(__name__)

DAY = 86_400
ROLLOVER_GRACE_S = 300  # keep reading yesterday's file this long: a writer may have picked it just before 0:00


def _day_file(folder: Path, day: int) -> Path:
    stamp = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=day)).strftime("%Y-%m-%d")
    return folder / f"events-{stamp}.jsonl"


def _day_of(path: Path) -> int | None:
    try:
        stamp = datetime.strptime(path.stem.removeprefix("events-"), "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return int(stamp.timestamp() // DAY)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Tail:
    """Read position in one day file."""

    __slots__ = ("day", "fd", "offset", "opened_at")

    def __init__(self, day: int, fd: int, opened_at: float):
        self.day, self.fd, self.offset, self.opened_at = day, fd, 0, opened_at


class EventJournal:
    """Durable append of events and erasures; per-customer recent activity rebuilt from the journal."""

    def __init__(self, folder: Path, erased: set[str], *, per_customer: int = 50,
                 max_customers: int = 2_000_000, replay_days: int = 30, clock: Callable[[], float] = time.time):
        self.folder = Path(folder)
        self.per_customer = per_customer
        self.max_customers = max_customers
        self.replay_days = replay_days
        self.clock = clock
        self._recent: OrderedDict[str, list[RecentEvent]] = OrderedDict()
        self._erased = erased  # shared with serving.erasure.Erasures: one set per process
        self._on_erasure: list[Callable[[str], None]] = []
        self._lock = threading.Lock()  # guards the tails and the in-memory state
        self._write_lock = threading.Lock()
        self._writers: dict[int, int] = {}
        self._tails: list[_Tail] = []
        self.bad_lines = 0
        self.replayed = 0
        self._seq_fd = -1
        self._seq_map: mmap.mmap | None = None
        self._seq: memoryview | None = None
        self._seen_seq = -1
        self._recheck_at = 0.0

    # --------------------------------------------------------------------------------------------- lifecycle

    def open(self) -> None:
        """Create the folder and replay the last ``replay_days`` days into memory."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq_fd = os.open(self.folder / "journal.seq", os.O_RDWR | os.O_CREAT, 0o640)
        fcntl.flock(self._seq_fd, fcntl.LOCK_EX)
        try:
            if os.fstat(self._seq_fd).st_size < 8:
                os.ftruncate(self._seq_fd, 8)
        finally:
            fcntl.flock(self._seq_fd, fcntl.LOCK_UN)
        self._seq_map = mmap.mmap(self._seq_fd, 8)
        self._seq = memoryview(self._seq_map).cast("Q")
        self._seen_seq = self._seq[0]
        now = self.clock()
        tailed = self._wanted_days(now)
        files = sorted((d, p) for p in self.folder.glob("events-*.jsonl") if (d := _day_of(p)) is not None)
        with self._lock:
            for day, path in files:
                if day < tailed[0] - self.replay_days or day >= tailed[0]:
                    continue
                with open(path, "rb") as fh:
                    data = fh.read()
                self._apply_bytes(data[: data.rfind(b"\n") + 1])
            self._follow(now)  # the tailed days are read from their start here
        self.replayed = sum(len(v) for v in self._recent.values())
        if self.bad_lines:
            log.warning("%s: %d unreadable journal lines skipped (a crash mid-write leaves one)", self.folder,
                        self.bad_lines)

    def close(self) -> None:
        with self._lock, self._write_lock:
            for tail in self._tails:
                os.close(tail.fd)
            for fd in self._writers.values():
                os.close(fd)
            self._tails, self._writers = [], {}
            if self._seq is not None:
                self._seq.release()
                self._seq_map.close()  # type: ignore[union-attr]
                os.close(self._seq_fd)
                self._seq, self._seq_map = None, None

    def on_erasure(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(pseudonym)`` for every erasure read from the journal (any worker's)."""
        self._on_erasure.append(callback)

    # ------------------------------------------------------------------------------------------------ writing

    def append_event(self, pseudonym: str, product_id: str, event_type: str, ts: float,
                     channel: str | None = None) -> dict[str, Any]:
        """Write one event durably, then apply it; returns the journal record."""
        now = self.clock()
        record = {"type": "event", "id": uuid.uuid4().hex, "customer": pseudonym, "product_id": product_id,
                  "event_type": event_type, "ts": ts, "received_at": now}
        if channel:
            record["channel"] = channel
        self._append(record, now)
        return record

    def append_erasure(self, pseudonym: str) -> None:
        """Write an erasure durably, then apply it (this worker forgets the customer before returning)."""
        now = self.clock()
        self._append({"type": "erasure", "customer": pseudonym, "received_at": now}, now)

    def _append(self, record: dict[str, Any], now: float) -> None:
        line = orjson.dumps(record) + b"\n"
        day = int(now // DAY)
        with self._write_lock:
            fd = self._writer(day)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                # A line torn by a crash mid-write must not swallow the next one.
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._bump()
        os.fdatasync(fd)
        self.sync()

    def _bump(self) -> None:
        """Tell every worker the journal grew (after the line is in the file, so a reader that sees the new
        value also sees the line)."""
        assert self._seq is not None, "EventJournal.open() first"
        fcntl.flock(self._seq_fd, fcntl.LOCK_EX)
        try:
            self._seq[0] = (self._seq[0] + 1) & 0xFFFF_FFFF_FFFF_FFFF
        finally:
            fcntl.flock(self._seq_fd, fcntl.LOCK_UN)

    def _writer(self, day: int) -> int:
        fd = self._writers.get(day)
        if fd is None:
            path = _day_file(self.folder, day)
            existed = path.exists()
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
            if not existed:
                _fsync_dir(self.folder)  # the new file's name must survive a crash too
            for old_day in [d for d in self._writers if d < day - 1]:
                os.close(self._writers.pop(old_day))
            self._writers[day] = fd
        return fd

    # ------------------------------------------------------------------------------------------------ reading

    def sync(self) -> None:
        """Apply whatever any worker appended since the last call (one memory read when nothing did)."""
        seq = self._seq[0] if self._seq is not None else -2
        now = self.clock()
        if seq == self._seen_seq and now < self._recheck_at:
            return
        with self._lock:
            self._seen_seq = seq  # read before the files: a line written after it bumps the counter again
            self._follow(now)

    @staticmethod
    def _wanted_days(now: float) -> list[int]:
        """Days whose files are tailed: today, and yesterday for a grace period after midnight (a writer may have
        picked yesterday's file just before 0:00)."""
        today = int(now // DAY)
        return [today - 1, today] if now - today * DAY < ROLLOVER_GRACE_S else [today]

    def _follow(self, now: float) -> None:
        """Tail the wanted days' files, read what is new, close the ones no longer wanted."""
        wanted = self._wanted_days(now)
        have = {tail.day for tail in self._tails}
        for day in wanted:
            if day not in have:
                fd = os.open(_day_file(self.folder, day), os.O_RDONLY | os.O_CREAT, 0o640)
                self._tails.append(_Tail(day, fd, now))
        keep = []
        for tail in sorted(self._tails, key=lambda t: t.day):
            self._read_tail(tail)
            if tail.day in wanted:
                keep.append(tail)
            else:
                os.close(tail.fd)
        self._tails = keep
        today = wanted[-1]
        self._recheck_at = today * DAY + ROLLOVER_GRACE_S if len(wanted) == 2 else (today + 1) * DAY

    def _read_tail(self, tail: _Tail) -> None:
        size = os.fstat(tail.fd).st_size
        if size <= tail.offset:
            return
        data = os.pread(tail.fd, size - tail.offset, tail.offset)
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        if end:
            self._apply_bytes(data[:end])
            tail.offset += end

    def _apply_bytes(self, data: bytes) -> None:
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                kind = record["type"]
                customer = record["customer"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                self.bad_lines += 1
                continue
            if kind == "event":
                self._apply_event(customer, record)
            elif kind == "erasure":
                self._erased.add(customer)
                self._recent.pop(customer, None)
                for callback in self._on_erasure:
                    callback(customer)

    def _apply_event(self, customer: str, record: dict[str, Any]) -> None:
        if customer in self._erased:
            return
        try:
            event = RecentEvent(float(record["ts"]), str(record["event_type"]), str(record["product_id"]))
        except (KeyError, TypeError, ValueError):
            self.bad_lines += 1
            return
        events = self._recent.get(customer)
        if events is None:
            events = self._recent[customer] = []
            if len(self._recent) > self.max_customers:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(customer)
        # Copy on write: a request holding the old list never sees it change under it.
        updated = events + [event]
        if len(updated) > self.per_customer:
            updated = updated[-self.per_customer:]
        self._recent[customer] = updated

    # ------------------------------------------------------------------------------------------------ queries

    @property
    def active(self) -> bool:
        """Whether any customer has recent events (when not, requests skip the pseudonym)."""
        return bool(self._recent)

    def recent(self, pseudonym: str) -> list[RecentEvent]:
        """Recent events of one customer, oldest first."""
        return self._recent.get(pseudonym, [])

    def is_erased(self, pseudonym: str) -> bool:
        return pseudonym in self._erased

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("events-*.jsonl"))


def utc_iso(ts: float) -> str:
    """ISO time of epoch seconds, UTC."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()

