"""The build's progress area: the step count known from the start (the builder's PLAN) and
the same in the header and the rows, timers that tick while a step prints nothing, the
collapsed summary, and Ctrl-C as CANCELED. Events are fed by hand (the builder's side is
tested in tests/builder); the live redraws go to a recording handle."""

from __future__ import annotations

import threading
import time

from nbcontainer.notebook import progress as progress_module
from nbcontainer.notebook.progress import ProgressArea
from nbcontainer.progress import Kind, ProgressEvent


def step(kind: Kind, n: int, steps: int = 7, text: str = "RUN x", **kw) -> ProgressEvent:
    return ProgressEvent(kind, f"#{n}", text, step=n, steps=steps, **kw)


class Handle:
    """Stands in for IPython's display handle: records each redraw."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.lock = threading.Lock()

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        with self.lock:
            self.frames.append(bundle["text/plain"])


def test_the_header_counts_the_planned_steps() -> None:
    area = ProgressArea("Building", enabled=False)
    area(ProgressEvent(Kind.PLAN, "", total=7))
    area(ProgressEvent(Kind.START, "#0", "[internal] load metadata"))  # not a numbered step
    area(step(Kind.START, 1, text="FROM busybox"))
    area(step(Kind.CACHED, 1))
    area(step(Kind.START, 2))
    header, *rows = area.text().split("\n")
    assert header.endswith("(1/7)")  # one of the seven steps done; the rows say [n/7]
    assert any("[1/7] FROM busybox" in r for r in rows)


def test_the_summary_says_steps_cached_and_time() -> None:
    area = ProgressArea("Building", enabled=False)
    area(ProgressEvent(Kind.PLAN, "", total=3))
    for n, kind in ((1, Kind.CACHED), (2, Kind.CACHED), (3, Kind.DONE)):
        area(step(kind, n, 3) if kind == Kind.CACHED else step(Kind.START, n, 3))
        if kind == Kind.DONE:
            area(step(Kind.DONE, n, 3, elapsed=0.2))
    area.__exit__(None, None, None)
    head = area.text(final=True).split("\n")[0]
    assert head.startswith("[+] Building FINISHED: 3 steps, 2 cached, ") and head.endswith(" s")
    html = area.html(final=True)
    assert "<summary>[+] Building FINISHED: 3 steps, 2 cached" in html


def test_an_error_and_ctrl_c_are_told_apart() -> None:
    failed = ProgressArea("Building", enabled=False)
    failed(ProgressEvent(Kind.PLAN, "", total=7))
    for n in range(1, 5):
        failed(step(Kind.START, n))
        failed(step(Kind.DONE, n, elapsed=0.1))
    failed(step(Kind.START, 5))
    failed(step(Kind.ERROR, 5, error="exit code: 1"))
    failed.__exit__(RuntimeError, RuntimeError(), None)
    assert failed.text(final=True).split("\n")[0].startswith(
        "[+] Building ERROR: 5 of 7 steps, 0 cached, 1 failed")

    stopped = ProgressArea("Building", enabled=False)
    stopped(ProgressEvent(Kind.PLAN, "", total=2))
    stopped(step(Kind.START, 1, 2))
    stopped(step(Kind.CANCELED, 1, 2))  # what the builder's step reports for Ctrl-C
    stopped(step(Kind.START, 2, 2))  # a step the interrupt left running
    stopped.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
    text = stopped.text(final=True)
    assert text.split("\n")[0].startswith("[+] Building INTERRUPTED: 2 steps, 0 cached, "
                                          "2 canceled")
    assert " => CANCELED [1/2] RUN x" in text and " => CANCELED [2/2] RUN x" in text
    assert "ERROR" not in text


def test_timers_tick_while_a_step_is_silent(monkeypatch) -> None:
    monkeypatch.setattr(progress_module, "TICK", 0.2)
    area = ProgressArea("Building", interval=0.05)
    handle = Handle()
    area._handle = handle
    area(ProgressEvent(Kind.PLAN, "", total=1))
    area(step(Kind.START, 1, 1, text="RUN sleep 3"))
    thread = threading.Thread(target=area._loop, daemon=True)
    thread.start()
    time.sleep(1.2)  # the step prints nothing meanwhile
    area._stop.set()
    thread.join(2)
    with handle.lock:
        frames = list(handle.frames)
    times = {f.split("\n")[1].rsplit(" ", 1)[-1] for f in frames}  # " => [1/1] RUN … 0.4s"
    assert len(frames) >= 3 and len(times) >= 3  # redrawn, and the timer moved each time
