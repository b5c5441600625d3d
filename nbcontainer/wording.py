"""How progress events read: the words both skins (CLI and notebook) print for them.

The engine reports facts (``progress.ProgressEvent``); BuildKit's and docker's words for
those facts (``DONE 0.5s``, ``CACHED``, ``Pull complete``, ``Mounted from …``) live here
only, so the two skins say the same thing.
"""

from __future__ import annotations

from typing import Any

from .progress import Action, Kind, ProgressEvent, Reason


def step_title(event: ProgressEvent) -> str:
    """``[build 2/4] RUN make``, ``[2/4] RUN make``, ``[internal] pull busybox``."""
    if event.step is not None and event.steps is not None:
        where = f"{event.stage} {event.step}/{event.steps}" if event.stage else \
            f"{event.step}/{event.steps}"
    else:
        where = event.stage
    return f"[{where}] {event.text}" if where else event.text


def step_status(event: ProgressEvent) -> str:
    """How a step ended, in BuildKit's words: ``DONE 0.5s``, ``CACHED``, ``ERROR: …``."""
    if event.kind == Kind.DONE:
        return f"DONE {event.elapsed or 0.0:.1f}s"
    if event.kind == Kind.CACHED:
        return "CACHED"
    if event.kind == Kind.CANCELED:
        return "CANCELED"
    return f"ERROR: {event.error or ''}"


def short_id(ident: str) -> str:
    """A blob digest as docker shows it (12 hex digits); other ids as they are."""
    return ident[7:19] if ident.startswith("sha256:") else ident


def blob_status(event: ProgressEvent) -> str:
    """docker's words for a finished blob: ``Pull complete``, ``Pushed``, ``Already
    exists``, ``Layer already exists``, ``Mounted from library/busybox``."""
    push = event.action == Action.PUSH
    if event.kind == Kind.SKIPPED:
        if event.reason == Reason.MOUNTED:
            return f"Mounted from {event.source}" if event.source else "Mounted"
        if event.reason == Reason.EXISTS:
            return "Layer already exists" if push else "Already exists"
        return "Skipped"
    if event.kind == Kind.DONE:
        return "Pushed" if push else "Pull complete"
    if event.kind == Kind.ERROR:
        return f"Error: {event.error or ''}"
    if event.kind == Kind.CANCELED:
        return "Canceled"
    return "Pushing" if push else "Downloading"


def transfer_summary(event: ProgressEvent) -> list[str]:
    """The closing lines of a whole pull or push (its ``DONE`` event), as docker prints."""
    if event.action == Action.PULL:
        status = (f"Downloaded newer image for {event.source}" if event.current
                  else f"Image is up to date for {event.source}")
        return [f"Digest: {event.text}", f"Status: {status}"]
    lines = [f"{event.source}: digest: {event.text} size: {event.total}"]
    if event.current:
        lines.insert(0, f"pushed {event.current} attached artifact"
                        f"{'' if event.current == 1 else 's'}")
    return lines


def is_blob(event: ProgressEvent) -> bool:
    """Whether a transfer event is about one blob (else about the whole image)."""
    return event.id.startswith("sha256:")


_END = (Kind.DONE, Kind.CACHED, Kind.ERROR, Kind.CANCELED)


class PlainLog:
    """BuildKit's ``--progress=plain`` text of a build: ``#3 [build 2/4] RUN make`` /
    ``#3 0.412 output line`` / ``#3 DONE 0.5s``. :meth:`lines` turns each event into the
    lines to print; the CLI writes them to stderr, the notebook into the cell.

    Parallel stages interleave: every line carries its step number, and when the output
    switches to another running step its title is repeated after a blank line (BuildKit's
    plain printer does the same), so each block reads on its own. Not thread-safe: the
    printer calls it under its lock."""

    def __init__(self) -> None:
        self.titles: dict[str, str] = {}  # running steps
        self.last: str | None = None  # the step of the last line written
        self.closed = True  # the last block ended with a blank line

    def lines(self, event: ProgressEvent) -> list[str]:
        lead = self._lead(event)
        body = self._body(event)
        if body is None:
            return []
        out = [*lead, body]
        self.last = event.id
        self.closed = event.kind in _END
        if self.closed:
            out.append("")
            self.titles.pop(event.id, None)
        return out

    def _lead(self, event: ProgressEvent) -> list[str]:
        """A blank line before a new step, or the title again when the output switches."""
        switch = event.id != self.last and event.id in self.titles
        if event.kind in (Kind.LOG, Kind.WARNING, *_END) and switch:
            return ([] if self.closed else [""]) + [f"{event.id} {self.titles[event.id]}"]
        if event.kind == Kind.START and not self.closed:
            return [""]
        return []

    def _body(self, event: ProgressEvent) -> str | None:
        if event.kind == Kind.START:
            self.titles[event.id] = step_title(event)
            return f"{event.id} {self.titles[event.id]}"
        if event.kind == Kind.LOG:
            return f"{event.id} {event.elapsed or 0.0:.3f} {event.text}"
        if event.kind == Kind.WARNING:
            return f"{event.id} WARNING: {event.text}"
        if event.kind in _END:
            return f"{event.id} {step_status(event)}"
        if event.kind == Kind.INFO:
            return f"{event.id} {event.text}" if event.id else event.text
        return None


def info_lines(info: dict[str, object]) -> list[str]:
    """``nbcontainer info`` in words (docker info's layout) from ``SystemInfo.to_dict()``."""
    store = info.get("store") or {}
    box = info.get("sandbox") or {}
    assert isinstance(store, dict) and isinstance(box, dict)
    lines = [f"Version: {info.get('version', '')}", "Store:",
             f" Path: {store.get('path', '')}", f" Filesystem: {store.get('filesystem', '')}",
             f" Images: {store.get('images', 0)}", "Isolation:",
             f" Rung: {box.get('rung', '')} ({box.get('description', '')})"]
    lines += [f"  replaced: {r}" for r in box.get("replaced") or []]
    lines.append(" Rungs:")
    for r in box.get("rungs") or []:
        mark = "available" if r["available"] else f"missing: {r['reason']}"
        lines.append(f"  {r['rung']:<8} {mark}")
        if r.get("remedy"):
            lines.append(f"           remedy: {r['remedy']}")
    lines.append(" Hardening:")
    for m in box.get("measures") or []:
        detail = f" ({m['detail']})" if m.get("detail") else ""
        lines.append(f"  {m['name']}: {'yes' if m['active'] else 'no'}{detail}")
    lines.append(" Probe:")
    for key, value in (box.get("findings") or {}).items():
        lines.append(f"  {key.replace('_', ' ')}: {value}")
    return lines + host_lines(info.get("host") or {})


def host_lines(host: object) -> list[str]:
    """The host's CAs and proxies as RUN steps get them (``SystemInfo.host``)."""
    assert isinstance(host, dict)
    ca = host.get("ca") or {}
    if not ca:
        return []
    default = "on" if ca.get("host_ca_default") else "off (NBCONTAINER_HOST_CA=1 turns it on)"
    lines = ["Host CAs:", f" --host-ca by default: {default}",
             f" Trusted: {ca.get('trusted', 0)} from {', '.join(ca.get('sources') or []) or '-'}"]
    extra = ca.get("extra") or []
    lines.append(f" Extra (not in the public set): {len(extra) or 'none'}")
    lines += [f"  {e['subject']}" for e in extra]
    proxies = host.get("proxies") or {}
    lines.append("Proxies for RUN:" + ("" if proxies else " none"))
    lines += [f" {k}={v}" for k, v in proxies.items()]
    return lines


def kernel_installed(kernel: Any) -> str:
    """What both skins say after ``kernel install`` / ``--kernel`` (an ``InstalledKernel``)."""
    record = kernel.record
    allowed = f", allowed: {', '.join(record.allow)}" if record.allow else ""
    return (f"Installed kernel {kernel.name} in {kernel.path}\n"
            f"  runs {record.image} pinned to {record.digest}{allowed}\n"
            f"  switch to it: Kernel > Change Kernel… > \"{kernel.display_name}\" (JupyterLab "
            f"also lists it in the launcher), or jupyter execute --kernel_name={kernel.name} "
            f"NOTEBOOK")


def kernel_rows(kernels: Any) -> list[str]:
    """``kernel list``: name, image, digest, where (one row each)."""
    rows = [("NAME", "IMAGE", "DIGEST", "ALLOW", "PATH")]
    rows += [(k.name, k.record.image, k.short_digest, ",".join(k.record.allow) or "-",
              str(k.path)) for k in kernels]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["   ".join([*(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)), r[4]])
            for r in rows]
