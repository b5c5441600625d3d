"""Pictures of where the bytes are, as plain HTML with inline styles: layer size bars with the
reclaimable part marked, and a treemap of the image by directory, coloured by layer.

No SVG, no script, no ``<style>`` needed for the geometry: JupyterLab's sanitizer (a reopened,
untrusted notebook) removes ``<svg>`` and ``<style>`` but keeps ``style`` attributes with
``position``, ``left``/``top``/``width``/``height`` and ``background``; nbconvert keeps
everything. Every box has a ``title`` (the browser's tooltip) with its path, size and layer.
Coordinates are percentages with one decimal, so the output is short and stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ... import humanize
from ...analysis import DirSize, ImageTree

# A palette without red (red marks reclaimable bytes), one colour per layer, repeating.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
           "#ff9da7", "#bab0ac", "#86bcb6")
WASTE = "#d62728"
TREEMAP_BOXES = 48  # boxes at most: enough to see the big directories, a few kB of HTML
TREEMAP_HEIGHT = 260  # px
_ASPECT = 3.2  # the layout assumes a box this many times wider than high


def colour(layer: int) -> str:
    return PALETTE[layer % len(PALETTE)]


def _pct(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") + "%"


def layer_label(tree: ImageTree, index: int, width: int = 60) -> str:
    lt = tree.layers[index]
    cmd = lt.command or "(no history)"
    if len(cmd) > width:
        cmd = cmd[:width - 1] + "…"
    return cmd + (f"  ({lt.source})" if lt.source else "")


# ---------------------------------------------------------------------------- bars
def layer_bars(tree: ImageTree) -> str:
    """One bar per layer, as long as the layer is big (relative to the biggest), the part a
    better Dockerfile would not store in red; the base image's layers in grey text."""
    if not tree.layers:
        return ""
    waste = {i: 0 for i in range(len(tree.layers))}
    for f in tree.insight.findings:
        if not f.base:
            waste[f.layer] += f.size
    biggest = max(lt.size for lt in tree.layers) or 1
    rows = []
    for lt in tree.layers:
        share = lt.size / biggest * 100
        lost = min(100.0, waste[lt.index] / lt.size * 100) if lt.size else 0.0
        base = lt.index < tree.insight.own_from
        label = escape(layer_label(tree, lt.index))
        size = humanize.size(lt.size)
        note = f" · <b style=\"color:{WASTE}\">{humanize.size(waste[lt.index])} " \
               "reclaimable</b>" if waste[lt.index] else ""
        tip = escape(f"layer {lt.index}: {size}, {humanize.plural(lt.files, 'file')}"
                     + (f", {humanize.size(waste[lt.index])} reclaimable" if lost else "")
                     + (" (base image)" if base else ""), quote=True)
        red = (f'<div style="width:{_pct(lost)};height:100%;background:{WASTE}"></div>'
               if lost else "")
        rows.append(
            f'<div class="nbc-bar" style="display:flex;align-items:center;margin:1px 0" '
            f'title="{tip}">\n'
            f'<code style="width:2.6em;flex:none">#{lt.index}</code>'
            f'<div style="flex:0 0 38%;height:12px;background:#8881">'
            f'<div style="width:{_pct(max(share, 0.3))};height:100%;'
            f'background:{colour(lt.index)};display:flex;justify-content:flex-end">'
            f"{red}</div></div>\n"
            f'<span style="margin-left:8px;white-space:nowrap;overflow:hidden;'
            f'text-overflow:ellipsis{";opacity:.7" if base else ""}">'
            f"{size}{note} · <code>{label}</code></span></div>")
    key = (f'<div style="font-size:11px;opacity:.8">bar length: the layer\'s size; '
           f'<span style="color:{WASTE}">red</span>: bytes a better Dockerfile would not '
           "store (junk, overwritten or duplicated)</div>")
    return '<div class="nbc-bars">\n' + "\n".join(rows) + "\n" + key + "\n</div>"


# ---------------------------------------------------------------------------- treemap
@dataclass(frozen=True, slots=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    label: str
    path: str
    size: int
    layer: int
    leaf: bool = True
    is_dir: bool = True  # else a directory's own files, as one box


def squarify(sizes: Sequence[float], x: float, y: float, w: float, h: float
             ) -> list[tuple[float, float, float, float]]:
    """Rectangles for ``sizes`` (largest first) filling the rectangle (x, y, w, h), laid
    out in rows whose boxes stay as square as possible (Bruls, Huizing, van Wijk)."""
    total = sum(sizes)
    if total <= 0 or w <= 0 or h <= 0:
        return [(x, y, 0.0, 0.0) for _ in sizes]
    scale = w * h / total
    areas = [s * scale for s in sizes]
    out: list[tuple[float, float, float, float]] = []
    i = 0
    while i < len(areas):
        side = min(w, h)
        row = [areas[i]]
        i += 1
        while i < len(areas) and _worst(row + [areas[i]], side) <= _worst(row, side):
            row.append(areas[i])
            i += 1
        thick = sum(row) / side
        pos = 0.0
        for a in row:
            length = a / thick if thick else 0.0
            if w >= h:  # a column at the left
                out.append((x, y + pos, thick, length))
            else:  # a row at the top
                out.append((x + pos, y, length, thick))
            pos += length
        if w >= h:
            x, w = x + thick, w - thick
        else:
            y, h = y + thick, h - thick
    return out


def _worst(row: list[float], side: float) -> float:
    s = sum(row)
    if s <= 0:
        return float("inf")
    return max(max(side * side * r / (s * s), (s * s) / (side * side * r)) for r in row
               if r > 0)


def _parts(tree: ImageTree, path: str) -> list[tuple[str, int, int, bool]]:
    """A directory's parts for the treemap: its subdirectories, and its own files as one
    part: (path, size, dominant layer, is a directory)."""
    ins = tree.insight
    d = ins.dirs[path]
    subs = [ins.dirs[s] for s in ins.subdirs.get(path, ()) if ins.dirs[s].size > 0]
    own = d.size - sum(s.size for s in subs)
    parts = [(s.path, s.size, s.layer, True) for s in subs]
    if own > 0:
        parts.append((path + "/" if path else "/", own, _files_layer(d, subs), False))
    parts.sort(key=lambda t: -t[1])
    return parts


def _files_layer(d: DirSize, subs: list[DirSize]) -> int:
    """The layer that wrote most of a directory's own files (its bytes minus its
    subdirectories', per layer)."""
    per = dict(d.layers)
    for s in subs:
        for layer, n in s.layers:
            per[layer] = per.get(layer, 0) - n
    return max(per.items(), key=lambda t: (t[1], -t[0]))[0] if per else 0


def treemap_boxes(tree: ImageTree, limit: int = TREEMAP_BOXES) -> list[Box]:
    """Boxes of the image by directory: the top level laid out first, then the biggest box
    split into its parts again while the budget lasts (at most four levels)."""
    root = tree.insight.dirs.get("")
    if root is None or root.size == 0:
        return []
    boxes = _layout(tree, "", 0.0, 0.0, 100.0 * _ASPECT, 100.0)
    for _ in range(limit):
        splittable = [b for b in boxes if b.leaf and b.is_dir and b.path.count("/") < 3 and
                      len(_parts(tree, b.path)) > 1]
        if not splittable:
            break
        big = max(splittable, key=lambda b: b.w * b.h)
        inner = _layout(tree, big.path, big.x, big.y, big.w, big.h)
        if len(boxes) - 1 + len(inner) > limit:
            break
        boxes.remove(big)
        boxes.append(Box(big.x, big.y, big.w, big.h, big.label, big.path, big.size,
                         big.layer, leaf=False))
        boxes.extend(inner)
    return [Box(b.x / _ASPECT, b.y, b.w / _ASPECT, b.h, b.label, b.path, b.size, b.layer,
                b.leaf, b.is_dir) for b in boxes]


def _layout(tree: ImageTree, path: str, x: float, y: float, w: float, h: float) -> list[Box]:
    parts = _parts(tree, path)
    inset = 0.8 if path else 0.0  # a gap shows where a directory's boxes end
    rects = squarify([p[1] for p in parts], x + inset, y + inset, max(0.0, w - 2 * inset),
                     max(0.0, h - 2 * inset))
    out = []
    for (p, size, layer, is_dir), (bx, by, bw, bh) in zip(parts, rects, strict=True):
        label = f"/{p}" if is_dir else f"/{p}*"  # a directory's own files: /var/cache/apt/*
        out.append(Box(bx, by, bw, bh, label, p.rstrip("/"), size, layer, is_dir=is_dir))
    return out


def treemap(tree: ImageTree, limit: int = TREEMAP_BOXES) -> str:
    """The treemap as absolutely positioned boxes, with a legend of the layers' colours.
    Boxes too thin to see are left out (their bytes still shape the others)."""
    boxes = [b for b in treemap_boxes(tree, limit)
             if b.leaf and b.w >= 0.3 and b.h >= 1.0]
    if not boxes:
        return ""
    lines = [f'<div class="nbc-treemap" style="position:relative;width:100%;'
             f"height:{TREEMAP_HEIGHT}px;background:#8882;font-size:10px;line-height:1.15;"
             'color:#111">']
    for b in boxes:
        where = f"/{b.path}" if b.is_dir else f"files in /{b.path}"
        tip = escape(f"{where} · {humanize.size(b.size)} · layer #{b.layer}", quote=True)
        text = escape(b.label) + f"<br>{humanize.size(b.size)}" if b.w > 4 and b.h > 9 else ""
        lines.append(
            f'<div title="{tip}" style="position:absolute;left:{_pct(b.x)};top:{_pct(b.y)};'
            f"width:{_pct(b.w)};height:{_pct(b.h)};background:{colour(b.layer)};"
            f'outline:1px solid #fff;overflow:hidden">{text}</div>')
    lines.append("</div>")
    return "\n".join(lines) + "\n" + legend(tree)


def legend(tree: ImageTree) -> str:
    items = []
    for lt in tree.layers:
        items.append(f'<span style="display:inline-block;width:10px;height:10px;'
                     f'background:{colour(lt.index)};margin:0 3px 0 10px"></span>'
                     f"<code>#{lt.index}</code> {escape(layer_label(tree, lt.index, 40))}")
    return '<div class="nbc-legend" style="font-size:11px">\n' + "\n".join(items) + "\n</div>"
