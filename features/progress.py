"""Progress a person can read during long steps (a bar with counts and the time left, on stderr) and the named
stages of a job (what a benchmark times and measures), both silent unless an entry point asks for them.

Library code marks its long loops with :func:`track` and its steps with :func:`stage`; neither prints or costs
anything by default. The command line turns the bars on with :func:`bars` (only on a terminal, never with
``--quiet``); a benchmark listens to the stages with :func:`listen`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, Protocol

# The display and the stage listeners are set by entry points for the duration of a command (context
# variables, so concurrent requests or tests never see each other's).
_display: ContextVar[Any] = ContextVar("clientele_progress_display", default=None)
_listeners: ContextVar[tuple["StageListener", ...]] = ContextVar("clientele_stage_listeners", default=())
_path: ContextVar[tuple[str, ...]] = ContextVar("clientele_stage_path", default=())


class StageListener(Protocol):
    def started(self, path: tuple[str, ...]) -> None: ...

    def ended(self, path: tuple[str, ...], seconds: float) -> None: ...


@contextmanager
def bars(console: Any, enabled: bool = True) -> Iterator[Any]:
    """Show the bars of :func:`track` on ``console`` (a ``rich`` console on stderr) while the block runs.

    Parameters
    ----------
    console
        Where the bars go; nothing is shown when it is not a terminal.
    enabled
        ``False`` (``--quiet``) shows nothing.

    Yields
    ------
    rich.progress.Progress or None
        The display (entry points add their own step lines to it), ``None`` when nothing is shown.
    """
    if not enabled or not console.is_terminal:
        yield None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    display = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                       transient=False)
    token = _display.set(display)
    try:
        with display:
            yield display
    finally:
        _display.reset(token)


class Tracker:
    """One bar: ``advance(n)`` after each block of work."""

    def __init__(self, display: Any, task: Any):
        self._display, self._task = display, task

    def advance(self, n: int = 1) -> None:
        if self._display is not None:
            self._display.advance(self._task, n)


@contextmanager
def track(description: str, total: int, unit: str = "") -> Iterator[Tracker]:
    """A bar of ``total`` units of work (customers scored, grid points fitted) while the block runs.

    Parameters
    ----------
    description
        What is being done, e.g. ``"reranking customers"``.
    total
        Units of work in all.
    unit
        Shown after the description, e.g. ``"customers"``.
    """
    display = _display.get()
    if display is None:
        yield Tracker(None, None)
        return
    task = display.add_task(f"{description} ({unit})" if unit else description, total=max(int(total), 0))
    try:
        yield Tracker(display, task)
    finally:
        display.update(task, completed=max(int(total), 0))
        display.stop_task(task)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """A named step of a job (``load``, ``features``, ``reranker``, ...); nested stages form a path. The
    listeners of :func:`listen` hear when it starts and ends (nothing happens without one)."""
    listeners = _listeners.get()
    if not listeners:
        yield
        return
    path = _path.get() + (name,)
    token = _path.set(path)
    for listener in listeners:
        listener.started(path)
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - started
        _path.reset(token)
        for listener in listeners:
            listener.ended(path, seconds)


@contextmanager
def listen(listener: StageListener) -> Iterator[None]:
    """Tell ``listener`` about every :func:`stage` that starts and ends while the block runs."""
    token = _listeners.set(_listeners.get() + (listener,))
    try:
        yield
    finally:
        _listeners.reset(token)


def blocks(description: str, total: int, step: int, unit: str = "") -> Iterator[int]:
    """Starts of the blocks ``range(0, total, step)``, with a bar counting the units done (``unit``)."""
    with track(description, total, unit) as bar:
        for start in range(0, total, step):
            yield start
            bar.advance(min(step, total - start))


class Steps:
    """Consecutive stages of one function, marked by a call at each boundary: ``step("churn")`` ends the stage
    before it and begins the next; :meth:`close` ends the last."""

    def __init__(self) -> None:
        self._current: Any = None

    def __call__(self, name: str) -> None:
        self.close()
        self._current = stage(name)
        self._current.__enter__()

    def close(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.__exit__(None, None, None)


def steps() -> Steps:
    """A new :class:`Steps`."""
    return Steps()
