"""Progress bars and stages: silent by default, a bar with counts on a terminal, stages heard by a listener."""

from __future__ import annotations

import io

from rich.console import Console

from features.progress import bars, blocks, listen, stage, steps, track


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[str, ...]]] = []

    def started(self, path):
        self.events.append(("start", path))

    def ended(self, path, seconds):
        assert seconds >= 0
        self.events.append(("end", path))


def test_stages_nest_and_steps_end_the_one_before():
    recorder = Recorder()
    with listen(recorder):
        with stage("fit"):
            step = steps()
            step("generators")
            with stage("inner"):
                pass
            step("reranker")
            step.close()
    assert recorder.events == [("start", ("fit",)), ("start", ("fit", "generators")),
                               ("start", ("fit", "generators", "inner")), ("end", ("fit", "generators", "inner")),
                               ("end", ("fit", "generators")), ("start", ("fit", "reranker")),
                               ("end", ("fit", "reranker")), ("end", ("fit",))]
    with stage("unheard"):  # no listener: nothing recorded, nothing fails
        pass
    assert len(recorder.events) == 8


def test_a_bar_counts_on_a_terminal_and_nothing_shows_elsewhere():
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=120)
    with bars(terminal) as display:
        assert display is not None
        assert list(blocks("reranking", 2500, 1000, "customers")) == [0, 1000, 2000]
    assert "reranking (customers)" in out.getvalue() and "2500/2500" in out.getvalue()

    quiet = io.StringIO()
    with bars(Console(file=quiet, force_terminal=True), enabled=False) as display:
        assert display is None
        with track("grid", 3) as bar:
            bar.advance()
    piped = io.StringIO()
    with bars(Console(file=piped, force_terminal=False)) as display:
        assert display is None
        assert list(blocks("reranking", 3, 2)) == [0, 2]
    assert quiet.getvalue() == "" and piped.getvalue() == ""
