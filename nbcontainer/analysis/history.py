"""The layers of an image as the analysis takes them: blob, diff id, size and the history
line that made each one (plain values, no store or image object)."""

from __future__ import annotations

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


def layer_commands(config: ImageConfig, n_layers: int) -> list[str]:
    """The ``created_by`` of each non-empty history entry, aligned with the layers."""
    cmds = [h.created_by or "" for h in config.history if not h.empty_layer]
    if len(cmds) != n_layers:  # history absent or inconsistent (hand-made images)
        cmds = (cmds + [""] * n_layers)[:n_layers]
    return cmds


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
