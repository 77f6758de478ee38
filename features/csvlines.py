"""Overlong CSV lines set aside before pandas reads a file, so one hostile line costs bounded memory.

A 200 MB customer id on one line made ``read_csv`` and the copies after it hold gigabytes, and its rejects row
held the whole line again. The file is scanned once in fixed-size chunks (newlines found with numpy); lines past
:func:`features.limits.line_limit` are skipped by a filtering stream that pandas reads instead of the file, and
come back as :class:`LongLine` records (their data-row number and a short excerpt) for the rejects file.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from features.exceptions import DataError
from features.limits import LINE_EXCERPT_CHARS, MAX_HEADER_BYTES, line_limit

LINE_TOO_LONG = "line_too_long"  # reject reason of a CSV line longer than features.limits.line_limit
_CHUNK = 4 << 20
_NL, _CR = 10, 13


@dataclass(frozen=True)
class LongLine:
    """A data line set aside: its 1-based data-row number (as pandas would count it), size and first bytes."""

    row: int
    start: int  # byte offset of the line in the (decompressed) file
    end: int  # byte offset just past its newline
    excerpt: bytes


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # type: ignore[return-value]


def scan(path: Path, sep: str = ",") -> list[LongLine]:
    """Data lines of ``path`` longer than the file's bound, in one streaming pass of bounded memory.

    Raises
    ------
    DataError
        The header line itself is longer than ``MAX_HEADER_BYTES``.
    """
    long_lines: list[LongLine] = []
    with _open(path) as source:
        header = source.readline(MAX_HEADER_BYTES + 1)
        if len(header) > MAX_HEADER_BYTES and not header.endswith(b"\n"):
            raise DataError(f"{path}: the header line is longer than {MAX_HEADER_BYTES:,} bytes")
        limit = line_limit(header.count(sep.encode() or b",") + 1)
        offset = len(header)  # bytes before the current chunk
        line_start = offset  # where the line in progress began
        row = 0  # data rows (non-blank lines) that have ended so far
        prev_last = _NL  # the byte before the chunk: a newline, so a leading newline is a blank line
        excerpt = b""
        while chunk := source.read(_CHUNK):
            data = np.frombuffer(chunk, dtype=np.uint8)
            ends = np.flatnonzero(data == _NL) + offset  # absolute offsets of newlines
            starts = np.concatenate(([line_start], ends[:-1] + 1))
            lengths = ends - starts  # without the newline
            if len(ends):
                # pandas skips blank lines (also "\r" alone): they get no row number.
                before = np.concatenate(([prev_last], data))[ends - offset]  # the byte before each newline
                blank = (lengths == 0) | ((lengths == 1) & (before == _CR))
                rows = row + np.cumsum(~blank)
                for i in np.flatnonzero(lengths > limit):
                    start = int(starts[i])
                    head = excerpt if start < offset else bytes(chunk[start - offset:start - offset + _EXCERPT])
                    long_lines.append(LongLine(int(rows[i]), start, int(ends[i]) + 1, head))
                row = int(rows[-1])
                line_start = int(ends[-1]) + 1
            if line_start >= offset:
                excerpt = bytes(chunk[line_start - offset:line_start - offset + _EXCERPT])
            elif len(excerpt) < _EXCERPT:
                excerpt = (excerpt + bytes(chunk[:_EXCERPT]))[:_EXCERPT]
            offset += len(chunk)
            prev_last = int(data[-1])
        if offset - line_start > limit:  # the last line has no newline
            long_lines.append(LongLine(row + 1, line_start, offset, excerpt))
    return long_lines


_EXCERPT = LINE_EXCERPT_CHARS * 4  # bytes enough for that many characters of UTF-8


class _Without(io.RawIOBase):
    """The file's bytes without the byte ranges of the long lines."""

    def __init__(self, path: Path, skip: list[LongLine]):
        self._source = _open(path)
        self._skip = [(line.start, line.end) for line in skip]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        view = memoryview(buffer).cast("B")
        while self._skip and self._pos >= self._skip[0][0]:
            start, end = self._skip.pop(0)
            while self._pos < end:  # read past the long line in chunks, never holding it
                got = len(self._source.read(min(_CHUNK, end - self._pos)))
                if not got:
                    break
                self._pos += got
        want = len(view) if not self._skip else min(len(view), self._skip[0][0] - self._pos)
        data = self._source.read(want)
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._source.close()
        super().close()


def without(path: Path, skip: list[LongLine]) -> io.BufferedReader:
    """A binary stream of ``path`` (decompressed) that leaves out the ``skip`` lines, for ``read_csv``."""
    return io.BufferedReader(_Without(path, skip), buffer_size=1 << 20)


def excerpt_text(line: LongLine, encoding: str | None = None) -> str:
    """The line's first characters and its size, what its rejects row holds instead of the whole line."""
    text = line.excerpt.decode(encoding or "utf-8", errors="replace")[:LINE_EXCERPT_CHARS]
    return f"{text}... ({line.end - line.start:,} bytes)"


def original_rows(positions: np.ndarray, removed: list[LongLine]) -> np.ndarray:
    """Data-row numbers in the source of the rows pandas read at 1-based ``positions`` once ``removed`` was out."""
    gone = np.sort(np.fromiter((line.row for line in removed), dtype=np.int64))
    # The k-th removed row (0-based) sits before every read row whose position is at least its row - k.
    return positions + np.searchsorted(gone - np.arange(len(gone)), positions, side="right")
