"""Build and transfer progress in one output area, updated in place (``display_id``).

Live, BuildKit's tty look: a header, one row per step (or blob), and the last lines of RUN
output of the steps still running. When the work ends the area is replaced by a short summary
(a closed ``<details>`` with the step list), so the saved notebook stays small; the result
(the Image) is a separate output. The first and the last state of this area differ, which is
why the notebooks' sanitize file maps any progress output to one placeholder (nbval compares
the first state, the notebook stores the last).

Events arrive from the builder's and the registry's worker threads; they only update state
under a lock. One render thread, started with the cell's context (so output is routed to the
cell that started the work), redraws at most every ``interval`` seconds.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any, TextIO

from .. import humanize
from ..progress import Kind, ProgressEvent
from ..wording import PlainLog, blob_status, is_blob, step_status, step_title, transfer_summary

TAIL = 6  # RUN output lines shown per running step
_STATES = {Kind.DONE: "done", Kind.CACHED: "cached", Kind.SKIPPED: "skipped", Kind.ERROR: "error",
           Kind.CANCELED: "cancelled"}
STYLE = ("<style>.nbc-progress pre{margin:0;font-size:12px}.nbc-progress .err{color:#cf222e}"
         ".nbc-progress summary{cursor:pointer;font-family:var(--jp-code-font-family,monospace);"
         "font-size:12px}</style>")


@dataclass
class _Row:
    id: str
    title: str
    state: str = "running"  # running | done | cached | skipped | error | cancelled
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    current: int = 0
    total: int | None = None
    note: str = ""
    tail: list[str] = field(default_factory=list)

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started


class ProgressArea:
    """A ``ProgressFn`` that renders into one notebook output. Use as a context manager::

        with ProgressArea("Building") as progress:
            image = api.build(..., progress=progress)
    """

    def __init__(self, title: str, *, kind: str = "build", interval: float = 0.25,
                 enabled: bool = True) -> None:
        self.title = title
        self.kind = kind  # build | transfer
        self.interval = interval
        self.enabled = enabled
        self.rows: dict[str, _Row] = {}
        self.infos: list[str] = []
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.outcome: str | None = None  # FINISHED | ERROR | INTERRUPTED
        self._dirty = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: Any = None

    # ------------------------------------------------------------------ events
    def __call__(self, e: ProgressEvent) -> None:
        with self.lock:
            if e.kind == Kind.INFO or (e.kind == Kind.WARNING and e.id not in self.rows):
                self.infos.append(e.text)
            elif self.kind == "transfer" and not is_blob(e):
                self._transfer_event(e)
            else:
                self._row_event(e)
            self._dirty = True

    def _transfer_event(self, e: ProgressEvent) -> None:
        """The whole pull or push: its summary lines (and its error) go below the rows."""
        if e.kind == Kind.DONE:
            self.infos.extend(transfer_summary(e))
        elif e.kind == Kind.ERROR:
            self.infos.append(e.error or "")

    def _row_event(self, e: ProgressEvent) -> None:
        row = self.rows.get(e.id)
        if row is None:
            title = step_title(e) if self.kind == "build" else e.id
            row = self.rows[e.id] = _Row(e.id, title)
        if e.total is not None:
            row.total = e.total
        if e.kind == Kind.PROGRESS:
            row.current = e.current
        elif e.kind == Kind.LOG:
            row.tail.append(e.text)
            del row.tail[:-200]  # errors show the last lines; nothing more is kept
        elif e.kind == Kind.WARNING:
            row.tail.append(f"WARNING: {e.text}")
        elif e.finished:
            row.state = _STATES[e.kind]
            row.ended = time.monotonic()
            row.note = blob_status(e) if self.kind == "transfer" else step_status(e)
            if e.total:
                row.current = e.total

    # ------------------------------------------------------------------ rendering
    def _header(self) -> str:
        n_done = sum(1 for r in self.rows.values() if r.state != "running")
        secs = time.monotonic() - self.started
        state = f" {self.outcome}" if self.outcome else ""
        return f"[+] {self.title} {secs:.1f}s ({n_done}/{len(self.rows)}){state}"

    def _row_text(self, r: _Row) -> str:
        if self.kind == "transfer":
            short = r.id[7:19] if r.id.startswith("sha256:") else r.id
            if r.state == "running":
                total = humanize.size(r.total) if r.total else "?"
                bar = ""
                if r.total:
                    filled = int(20 * min(r.current, r.total) / r.total)
                    bar = "█" * filled + "░" * (20 - filled) + " "
                return f" => {short} {bar}{humanize.size(r.current)} / {total}"
            return f" => {short} {r.note}"
        prefix = {"cached": "CACHED ", "error": "ERROR ", "cancelled": "CANCELED "}.get(r.state, "")
        return f" => {prefix}{r.title}  {r.elapsed():.1f}s"

    def text(self, final: bool = False) -> str:
        with self.lock:
            lines = [self._header()]
            for r in self.rows.values():
                lines.append(self._row_text(r))
                if r.state == "running" and not final or r.state == "error":
                    lines.extend(f" => > {t}" for t in r.tail[-(20 if r.state == 'error'
                                                              else TAIL):])
            if final:
                lines.extend(self.infos)
            return "\n".join(lines)

    def html(self, final: bool = False) -> str:
        body = escape(self.text(final))
        if final:
            head, _, rest = body.partition("\n")
            cls = ' class="err"' if self.outcome != "FINISHED" else ""
            return (f'<details class="nbc-progress">{STYLE}<summary{cls}>{head}</summary>'
                    f"<pre>{rest}</pre></details>")
        return f'<div class="nbc-progress">{STYLE}<pre>{body}</pre></div>'

    def bundle(self, final: bool = False) -> dict[str, str]:
        return {"text/plain": self.text(final), "text/html": self.html(final)}

    # ------------------------------------------------------------------ output area
    def __enter__(self) -> ProgressArea:
        if not self.enabled:
            return self
        from IPython.display import display

        self._handle = display(self.bundle(), raw=True, display_id=True)
        ctx = contextvars.copy_context()
        self._thread = threading.Thread(target=ctx.run, args=(self._loop,), daemon=True,
                                        name="nbcontainer-progress")
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self._dirty:
                self._dirty = False
                self._update(final=False)

    def _update(self, final: bool) -> None:
        if self._handle is not None:
            try:
                self._handle.update(self.bundle(final), raw=True)
            except Exception:  # noqa: BLE001 - a front end going away must not fail the build
                pass

    def __exit__(self, etype: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        if etype is None:
            self.outcome = "FINISHED"
        elif issubclass(etype, KeyboardInterrupt):
            self.outcome = "INTERRUPTED"
        else:
            self.outcome = "ERROR"
        with self.lock:  # steps cut short by an error or Ctrl-C are not "running" any more
            for r in self.rows.values():
                if r.state == "running":
                    r.state, r.note = "cancelled", "cancelled"
                    r.ended = time.monotonic()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self._update(final=True)


class PlainProgress:
    """``%%dockerfile --progress=plain``: BuildKit's plain log (``wording.PlainLog``, what the
    CLI prints) written into the cell as the build goes; every RUN output line is kept. A
    ``ProgressFn`` and a context manager, like :class:`ProgressArea`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout  # the cell's output, taken on the kernel's thread
        self.lock = threading.Lock()
        self.log = PlainLog()

    def __call__(self, e: ProgressEvent) -> None:
        with self.lock:
            lines = self.log.lines(e)
            if lines:
                self.stream.write("".join(line + "\n" for line in lines))
                self.stream.flush()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
