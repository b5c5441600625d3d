"""Static HTML for images, layer trees and diffs: nested ``<details>``, no JavaScript.

Static on purpose: it renders live, in a reopened (untrusted) notebook, in ``nbconvert --to
html`` and on GitHub, because sanitizers keep ``details``/``summary``. Colours come from a
``<style>`` block where one is allowed; the ``+``/``~``/``-`` markers carry the meaning without.

Size is bounded, not proportional to the layer: each layer renders at most ``max_nodes`` tree
rows (directories are expanded breadth-first until the budget is spent; the rest are shown as
one summary row) and each directory at most ``max_children`` children plus an "N more" row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from ... import humanize
from ...analysis import ADDED, MODIFIED, REMOVED, ImageDiff, ImageTree, LayerTree, Node
from ...image import Image, ImageIndex
from ...oci.config import ImageConfig

MAX_NODES = 400
MAX_CHILDREN = 60
MAX_INEFFICIENCIES = 10

CSS = """<style>
.nbc{font-family:var(--jp-content-font-family,sans-serif);font-size:13px;line-height:1.45}
.nbc code,.nbc pre,.nbc .nbc-tree{font-family:var(--jp-code-font-family,monospace);font-size:12px}
.nbc summary{cursor:pointer}
.nbc .nbc-title{font-weight:600;margin-bottom:2px}
.nbc .nbc-dim{opacity:.65}
.nbc .nbc-sz{opacity:.7;margin-left:.6em}
.nbc .nbc-add{color:#1a7f37}.nbc .nbc-mod{color:#9a6700}.nbc .nbc-rem{color:#cf222e}
.nbc ul.nbc-tree{list-style:none;margin:0;padding-left:1.1em}
.nbc ul.nbc-tree>li{margin:0;white-space:nowrap}
.nbc details.nbc-layer{margin:2px 0 2px .5em}
.nbc table.nbc-table{border-collapse:collapse;margin:4px 0}
.nbc table.nbc-table td,.nbc table.nbc-table th{padding:1px 8px;text-align:left;vertical-align:top}
.nbc .nbc-note{font-size:11px;opacity:.75;margin:4px 0}
</style>"""

_MARK = {ADDED: ("nbc-add", "+"), MODIFIED: ("nbc-mod", "~"), REMOVED: ("nbc-rem", "-")}


def size(n: int) -> str:
    return humanize.size(n)


def percent(x: float) -> str:
    return f"{x * 100:.1f}%"


def _mark(status: str) -> str:
    cls, sym = _MARK.get(status, ("nbc-dim", " "))
    return f'<span class="{cls}">{sym}</span> '


def _expanded(root: Node, max_nodes: int, max_children: int) -> set[int]:
    """ids of the directories whose children are listed: breadth-first until the row budget
    is spent, so the top of every layer is always visible."""
    expanded: set[int] = set()
    budget = max_nodes
    queue = [root]
    head = 0
    while head < len(queue):
        node = queue[head]
        head += 1
        kids = node.sorted_children()
        cost = min(len(kids), max_children) + (1 if len(kids) > max_children else 0)
        if cost > budget:
            continue
        budget -= cost
        expanded.add(id(node))
        queue.extend(k for k in kids[:max_children] if k.children)
    return expanded


def _label(node: Node) -> str:
    name = escape(node.name) + ("/" if node.children is not None else "")
    if node.kind == "l":
        name += f' <span class="nbc-dim">→ {escape(node.link)}</span>'
    elif node.kind == "h":
        name += f' <span class="nbc-dim">⇒ {escape(node.link)}</span>'
    return name


def _size_of(node: Node) -> str:
    if node.status == REMOVED:
        return f'<span class="nbc-sz nbc-rem">removed {size(node.removed_size)}</span>'
    if node.children is not None:
        extra = f", {size(node.removed_size)} removed" if node.removed_size else ""
        files = f"{node.files} file{'' if node.files == 1 else 's'}"
        return f'<span class="nbc-sz">{size(node.size)} · {files}{extra}</span>'
    return f'<span class="nbc-sz">{size(node.size)}</span>'


def render_tree(root: Node, *, max_nodes: int = MAX_NODES,
                max_children: int = MAX_CHILDREN, open_depth: int = 0) -> str:
    """One layer's change tree as nested lists; directories are ``<details>`` (closed below
    ``open_depth``)."""
    expanded = _expanded(root, max_nodes, max_children)
    out: list[str] = []
    # Iterative pre-order with explicit close tags (deep trees would exhaust recursion).
    stack: list[tuple[Node, int] | str] = [(root, 0)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node, depth = item
        if node is not root:
            head = _mark(node.status) + _label(node) + " " + _size_of(node)
            if node.children and id(node) in expanded:
                attr = " open" if depth <= open_depth else ""
                out.append(f"<li><details{attr}><summary>{head}</summary>")
                stack.append("</details></li>")
            else:
                out.append(f"<li>{head}</li>")
                continue
        kids = node.sorted_children()
        out.append('<ul class="nbc-tree">')
        stack.append("</ul>")
        if len(kids) > max_children:
            rest = kids[max_children:]
            n_bytes = sum(k.size for k in rest)
            stack.append(f'<li class="nbc-dim">… {len(rest)} more '
                         f'({size(n_bytes)})</li>')
        for k in reversed(kids[:max_children]):
            stack.append((k, depth + 1))
    return "".join(out)


def layer_counts(lt: LayerTree) -> str:
    parts = [f'<span class="nbc-add">+{lt.added}</span>',
             f'<span class="nbc-mod">~{lt.modified}</span>',
             f'<span class="nbc-rem">-{lt.removed}</span>']
    return " ".join(parts)


def layer_title(lt: LayerTree, n_layers: int) -> str:
    cmd = lt.command or "(no history)"
    if len(cmd) > 120:
        cmd = cmd[:117] + "…"
    return (f"<code>#{lt.index}</code> {size(lt.size)} · {lt.entries} "
            f"file{'' if lt.entries == 1 else 's'} · "
            f"{layer_counts(lt)} · <code>{escape(cmd)}</code>")


def render_layer(lt: LayerTree, n_layers: int, *, open_: bool = False,
                 max_nodes: int = MAX_NODES) -> str:
    body = render_tree(lt.root, max_nodes=max_nodes) if lt.root.children else \
        '<div class="nbc-dim">(no files)</div>'
    meta = (f'<div class="nbc-dim">digest <code>{escape(lt.digest)}</code> · '
            f"{size(lt.compressed_size)} compressed</div>")
    return (f'<details class="nbc-layer" id="{lt.anchor}"{" open" if open_ else ""}>'
            f"<summary>{layer_title(lt, n_layers)}</summary>{meta}{body}</details>")


def render_efficiency(tree: ImageTree) -> str:
    rows = "".join(
        f"<tr><td>{size(i.reclaimable)}</td><td>{i.count}</td><td><code>{escape(i.path)}"
        f"</code></td></tr>" for i in tree.inefficiencies[:MAX_INEFFICIENCIES])
    more = len(tree.inefficiencies) - MAX_INEFFICIENCIES
    if more > 0:
        rows += f'<tr><td colspan="3" class="nbc-dim">… {more} more</td></tr>'
    table = ('<table class="nbc-table"><tr><th>reclaimable</th><th>layers</th><th>path</th>'
             f"</tr>{rows}</table>") if rows else ""
    return (f"<details><summary>efficiency {percent(tree.efficiency)} · reclaimable "
            f"{size(tree.reclaimable)}</summary>{table}"
            '<p class="nbc-note">Reclaimable = bytes of files that a later layer overwrote or '
            "deleted, counted once (each path's total over its layers minus its smallest "
            "copy). dive's \"wasted space\" also counts the copy that is kept, so it reports "
            "more (wagoodman/dive#684). Efficiency = Σ smallest copy / Σ all copies, as in "
            "dive.</p></details>")


def render_layers(tree: ImageTree, *, open_: bool = True) -> str:
    n = len(tree.layers)
    layers = "".join(render_layer(lt, n) for lt in tree.layers)
    return (f'<details class="nbc-layers"{" open" if open_ else ""}><summary>{n} layer'
            f"{'' if n == 1 else 's'} · {size(tree.size)} unpacked</summary>{layers}"
            f"{render_efficiency(tree)}</details>")


def _config_rows(cfg: ImageConfig) -> Iterable[tuple[str, str]]:
    c = cfg.config
    yield "platform", f"{cfg.os}/{cfg.architecture}" + (f"/{cfg.variant}" if cfg.variant else "")
    for label, value in (("entrypoint", c.entrypoint), ("cmd", c.cmd)):
        if value:
            yield label, " ".join(value) if isinstance(value, list | tuple) else str(value)
    if c.working_dir:
        yield "workdir", c.working_dir
    if c.user:
        yield "user", c.user
    for e in c.env or ():
        yield "env", e
    for k, v in sorted((c.labels or {}).items()):
        yield "label", f"{k}={v}"
    for p in sorted(c.exposed_ports or ()):
        yield "expose", p


def render_image(image: Image, tree: ImageTree) -> str:
    cfg_rows = "".join(f"<tr><th>{escape(k)}</th><td><code>{escape(v)}</code></td></tr>"
                       for k, v in _config_rows(image.config))
    return (f'<div class="nbc nbc-image">{CSS}'
            f'<div class="nbc-title">{escape(image.name)}</div>'
            f'<div class="nbc-dim">{len(tree.layers)} layers · {size(image.size)} compressed · '
            f"{size(tree.size)} unpacked · efficiency {percent(tree.efficiency)} · "
            f"<code>{escape(str(image.digest))}</code></div>"
            f"{render_layers(tree, open_=False)}"
            f'<details><summary>config</summary><table class="nbc-table">'
            f"{cfg_rows}</table></details></div>")


def render_index(index: ImageIndex, trees: Sequence[ImageTree]) -> str:
    """A multi-platform image: one collapsed section per platform, each the image's view."""
    parts = []
    for (plat, image), tree in zip(index.platform_images(), trees, strict=True):
        parts.append(f"<details><summary><b>{escape(plat)}</b> · {len(tree.layers)} layers · "
                     f"{size(image.size)} · <code>{escape(image.digest.short)}</code></summary>"
                     f"{render_image(image, tree)}</details>")
    return (f'<div class="nbc nbc-index">{CSS}'
            f'<div class="nbc-title">{escape(index.name)}</div>'
            f'<div class="nbc-dim">image index · {len(trees)} platforms · '
            f"<code>{escape(str(index.digest))}</code></div>{''.join(parts)}</div>")


def render_layers_view(image: Image, tree: ImageTree) -> str:
    return (f'<div class="nbc nbc-layers-view">{CSS}'
            f'<div class="nbc-title">{escape(image.name)}</div>'
            f"{render_layers(tree, open_=True)}</div>")


def _entry_rows(title: str, mark: str, rows: Sequence[tuple[str, str]], cap: int) -> str:
    items = "".join(f"<li>{_mark(mark)}<code>{escape(p)}</code>"
                    f'<span class="nbc-sz">{escape(extra)}</span></li>'
                    for p, extra in rows[:cap])
    if len(rows) > cap:
        items += f'<li class="nbc-dim">… {len(rows) - cap} more</li>'
    return (f"<details><summary>{_mark(mark)}{len(rows)} {title}</summary>"
            f'<ul class="nbc-tree">{items}</ul></details>')


def render_diff(diff: ImageDiff, cap: int = 200) -> str:
    added = [(e.path, size(e.size)) for e in diff.added]
    changed = [(new.path, f"{size(old.size)} → {size(new.size)}") for old, new in diff.changed]
    removed = [(e.path, size(e.size)) for e in diff.removed]
    return (f'<div class="nbc nbc-diff">{CSS}<div class="nbc-title">{escape(diff.a)} → '
            f"{escape(diff.b)}</div>"
            + _entry_rows("added", ADDED, added, cap)
            + _entry_rows("changed", MODIFIED, changed, cap)
            + _entry_rows("removed", REMOVED, removed, cap) + "</div>")
