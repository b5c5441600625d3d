"""How progress events read: the words both skins (CLI and notebook) print for them.

The engine reports facts (``progress.ProgressEvent``); BuildKit's and docker's words for
those facts (``DONE 0.5s``, ``CACHED``, ``Pull complete``, ``Mounted from …``) live here
only, so the two skins say the same thing.
"""

from __future__ import annotations

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
    return lines
