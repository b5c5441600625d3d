"""Plain-text fallbacks: what a terminal, ``print`` and nbval's comparisons see."""

from __future__ import annotations

from ... import humanize
from ...analysis import ImageTree
from ...image import Image


def image_line(image: Image, tree: ImageTree | None = None) -> str:
    """``my-python-image: 4 layers, 143MB, sha256:…`` (+ efficiency when the tree is known)."""
    text = image.summary()
    if tree is not None:
        text += f", efficiency {tree.efficiency * 100:.1f}%"
    return text


def layers_table(image: Image, tree: ImageTree) -> str:
    """``docker history``-like rows, bottom layer first (dive's order)."""
    rows = [["#", "SIZE", "FILES", "+", "~", "-", "CREATED BY"]]
    for lt in tree.layers:
        cmd = lt.command if len(lt.command) <= 70 else lt.command[:69] + "…"
        rows.append([str(lt.index), humanize.size(lt.size), str(lt.entries), str(lt.added),
                     str(lt.modified), str(lt.removed), cmd])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [image_line(image, tree)]
    for r in rows:
        lines.append("  " + "  ".join(c.rjust(w) if i else c.ljust(w)
                                      for i, (c, w) in enumerate(zip(r, widths, strict=False)))
                     + "  " + r[-1])
    lines.append(f"  reclaimable {humanize.size(tree.reclaimable)} (overwritten or deleted "
                 "copies, counted once; dive's 'wasted' also counts the kept copy)")
    return "\n".join(line.rstrip() for line in lines)
