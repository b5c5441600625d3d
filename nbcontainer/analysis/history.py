"""The layers of an image as the analysis takes them: blob, diff id, size and the history
line that made each one (plain values, no store or image object).

Where a layer came from in its Dockerfile: nbcontainer's builder writes the instruction's
lines into the history entry's ``comment``, after BuildKit's marker:
``buildkit.dockerfile.v0 Dockerfile:2`` (``Dockerfile:2-4`` for an instruction over several
lines). The comment lives in the image config, so it survives a push, a pull and a
``docker save``/``load`` unchanged, and each entry sits next to the ``created_by`` it
explains. :func:`parse_source` reads it back; ``builder.history.source_comment`` writes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..oci.config import ImageConfig
from ..oci.digest import Digest


@dataclass(frozen=True, slots=True)
class LayerRef:
    """One layer of an image: ``digest`` of its blob (what entry readers take), ``diff_id``
    (the uncompressed digest, None when the config lacks it), ``size`` compressed and the
    ``created_by`` of its history entry."""

    digest: Digest
    diff_id: Digest | None
    size: int
    created_by: str = ""
    comment: str = ""


SOURCE_MARKER = "buildkit.dockerfile.v0"
_SOURCE = re.compile(r"(?P<file>\S(?:.*\S)?):(?P<start>\d+)(?:-(?P<end>\d+))?")


@dataclass(frozen=True, slots=True)
class Source:
    """The lines of the Dockerfile instruction that made a layer (1-based, inclusive)."""

    file: str
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.file}:{self.start}" + (f"-{self.end}" if self.end > self.start else "")


def parse_source(comment: str | None) -> Source | None:
    """The :class:`Source` in a history comment written by nbcontainer's builder, or None
    (BuildKit's bare marker, other tools' comments)."""
    if not comment or not comment.startswith(SOURCE_MARKER + " "):
        return None
    m = _SOURCE.fullmatch(comment[len(SOURCE_MARKER) + 1:])
    if m is None:
        return None
    start = int(m["start"])
    return Source(m["file"], start, max(start, int(m["end"] or start)))


def layer_commands(config: ImageConfig, n_layers: int) -> list[str]:
    """The ``created_by`` of each non-empty history entry, aligned with the layers."""
    return [created_by for created_by, _ in layer_history(config, n_layers)]


def layer_history(config: ImageConfig, n_layers: int) -> list[tuple[str, str]]:
    """(``created_by``, ``comment``) of each non-empty history entry, aligned with the
    layers (empty strings where the history is absent or does not match)."""
    found = [(h.created_by or "", h.comment or "") for h in config.history if not h.empty_layer]
    if len(found) != n_layers:  # history absent or inconsistent (hand-made images)
        found = (found + [("", "")] * n_layers)[:n_layers]
    return found


def own_from(layers: list[LayerRef] | tuple[LayerRef, ...]) -> int:
    """The first layer the image's own Dockerfile made: the first with a source line; for
    an image without them, every layer but the first (dive's "user" layers) — or the one
    layer of a single-layer image."""
    for i, ref in enumerate(layers):
        if parse_source(ref.comment) is not None:
            return i
    return 1 if len(layers) > 1 else 0


def _drop_build_args(cmd: str) -> str:
    """BuildKit's ``|2 A=1 B=2 /bin/sh -c …`` for a RUN with build args: the command only."""
    n, _, rest = cmd[1:].partition(" ")
    if not n.isdigit():
        return cmd
    parts = rest.split(" ", int(n))
    cmd = parts[-1] if len(parts) > int(n) else rest
    return cmd.removeprefix("/bin/sh -c ")


def clean_command(created_by: str) -> str:
    """``history.created_by`` as dive shows it: no ``/bin/sh -c`` or ``#(nop)``, one line."""
    cmd = created_by.strip()
    for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c ", "|"):
        if cmd.startswith(prefix):
            cmd = _drop_build_args(cmd) if prefix == "|" else cmd[len(prefix):]
    if cmd.startswith("RUN /bin/sh -c "):  # BuildKit's RUN history: show the command as written
        cmd = "RUN " + cmd[len("RUN /bin/sh -c "):]
    return cmd.removesuffix(" # buildkit").replace("\n", "↵ ").strip()
