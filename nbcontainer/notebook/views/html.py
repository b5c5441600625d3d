"""Static HTML for images, layer trees and diffs: nested ``<details>``, no JavaScript.

Static on purpose: it renders live, in a reopened (untrusted) notebook, in ``nbconvert --to
html`` and on GitHub, because sanitizers keep ``details``/``summary``. Colours come from a
``<style>`` block where one is allowed; the ``+``/``~``/``-`` markers carry the meaning
without. The pictures (:mod:`.pictures`) use inline styles, which survive the sanitizer.

Light by design: an image's view (a build's result) is its summary, the pictures, the junk
found and the top of the tree; ``%layers`` adds each layer's changes. Trees are sorted by
size and bounded by a row budget (directories open breadth-first until it is spent; what is
left in a directory is one row that opens to a compact list). Every element starts on its
own line, so a rebuild that changes a few sizes changes a few lines of the saved notebook.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from html import escape

from ... import humanize
from ...analysis import (
    ADDED,
    MODIFIED,
    REMOVED,
    Finding,
    ImageDiff,
    ImageTree,
    LayerTree,
    Node,
    children,
    describe_change,
)
from ...image import Image, ImageIndex
from ...oci.config import ImageConfig
from . import pictures

MAX_NODES = 300  # tree rows per layer in %layers
MAX_CHILDREN = 50  # rows per directory (the rest: one row that opens to their names)
TOP_NODES = 30  # rows of the image's tree in a build result
MORE_NAMES = 120  # names listed when an "N more" row is opened
MAX_INEFFICIENCIES = 25
EXAMPLES = 3

CSS = """<style>
.nbc{font-family:var(--jp-content-font-family,sans-serif);font-size:13px;line-height:1.45}
.nbc code,.nbc pre,.nbc .nbc-tree{font-family:var(--jp-code-font-family,monospace);font-size:12px}
.nbc summary{cursor:pointer}
.nbc .nbc-title{font-weight:600;margin-bottom:2px}
.nbc .nbc-dim,.nbc .nbc-tree i{opacity:.65}
.nbc .nbc-tree i{font-style:normal;margin-left:.6em}
.nbc .a{color:#1a7f37}.nbc .m{color:#9a6700}.nbc .r{color:#cf222e}
.nbc ul.nbc-tree{list-style:none;margin:0;padding-left:1.1em}
.nbc ul.nbc-tree li{margin:0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.nbc mark{background:#ffe58f;color:inherit}
.nbc details.nbc-layer{margin:2px 0 2px .5em}
.nbc table.nbc-table{border-collapse:collapse;margin:4px 0}
.nbc table.nbc-table td,.nbc table.nbc-table th{padding:1px 8px;text-align:left;vertical-align:top}
.nbc .nbc-note{font-size:11px;opacity:.75;margin:4px 0}
.nbc .nbc-more{font-size:11px;opacity:.75;white-space:normal}
</style>"""

_MARK = {ADDED: ("a", "+"), MODIFIED: ("m", "~"), REMOVED: ("r", "-")}


def size(n: int) -> str:
    return humanize.size(n)


def percent(x: float) -> str:
    return f"{x * 100:.1f}%"


def _mark(status: str) -> str:
    cls, sym = _MARK.get(status, ("", " "))
    return f'<span class="{cls}">{sym}</span> ' if cls else ""


# ---------------------------------------------------------------------------- trees
def _label(node: Node, highlight: str = "") -> str:
    name = escape(node.name)
    if highlight:
        i = node.name.lower().find(highlight.lower())
        if i >= 0:
            j = i + len(highlight)
            name = (escape(node.name[:i]) + "<mark>" + escape(node.name[i:j]) + "</mark>"
                    + escape(node.name[j:]))
    name += "/" if node.children is not None else ""
    if node.kind == "l":
        name += f' <span class="nbc-dim">→ {escape(node.link)}</span>'
    elif node.kind == "h":
        name += f' <span class="nbc-dim">⇒ {escape(node.link)}</span>'
    return name


def _size_of(node: Node) -> str:
    if node.status == REMOVED:
        return f'<i class="r">removed {size(node.removed_size)}</i>'
    if node.children is not None:
        extra = f", {size(node.removed_size)} removed" if node.removed_size else ""
        return f"<i>{size(node.size)} · {humanize.plural(node.files, 'file')}{extra}</i>"
    return f"<i>{size(node.size)}</i>"


def _expanded(root: Node, max_nodes: int, sort: str, opened: Collection[str] | None,
              max_children: int) -> set[int]:
    """ids of the directories whose children are listed: breadth-first until the row budget
    is spent (the ``opened`` ones, search results, first), so the top of the tree is always
    visible. A directory lists at most ``max_children`` rows, plus one for the rest."""
    expanded: set[int] = set()
    budget = max_nodes
    queue = [root]
    head = 0
    while head < len(queue):
        node = queue[head]
        head += 1
        kids = children(node, sort)
        cost = min(len(kids), max_children) + (len(kids) > max_children)
        if cost > budget and node is not root:
            continue
        budget -= min(cost, budget)
        expanded.add(id(node))
        dirs = [k for k in kids[:max_children] if k.children]
        if opened:
            dirs.sort(key=lambda k: k.path not in opened)
        queue.extend(dirs)
    return expanded


def render_tree(root: Node, *, max_nodes: int = MAX_NODES, open_depth: int = 0,
                sort: str = "size", opened: Collection[str] | None = None,
                open_all: bool = False, highlight: str = "", titles: bool = False,
                max_children: int = MAX_CHILDREN) -> str:
    """A tree as nested lists, one row per line; directories are ``<details>``, open down to
    ``open_depth`` (or all, or the ``opened`` paths); ``highlight`` marks a search term;
    ``titles`` puts each row's full path in its tooltip."""
    expanded = _expanded(root, max_nodes, sort, opened, max_children)
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
            cls = _MARK.get(node.status, ("", ""))[0]
            attrs = (f' class="{cls}"' if cls else "") + \
                (f' title="/{escape(node.path, quote=True)}"' if titles else "")
            sym = _MARK.get(node.status, ("", ""))[1]  # the row's class colours it
            head = (f"{sym} " if sym else "") + _label(node, highlight) + " " + _size_of(node)
            if node.children and id(node) in expanded:
                is_open = open_all or depth <= open_depth or (opened is not None and
                                                               node.path in opened)
                out.append(f"<li{attrs}><details{' open' if is_open else ''}>"
                           f"<summary>{head}</summary>")
                stack.append("</details></li>")
            else:
                out.append(f"<li{attrs}>{head}</li>")
                continue
        kids = children(node, sort)
        shown = kids[:max_children]
        out.append('<ul class="nbc-tree">')
        stack.append("</ul>")
        if len(shown) < len(kids):
            stack.append(_more(kids[len(shown):]))
        for k in reversed(shown):
            stack.append((k, depth + 1))
    return "\n".join(out)


def _more(rest: Sequence[Node]) -> str:
    """The row for what the budget left out of a directory: it opens to their names."""
    n_bytes = sum(k.size for k in rest)
    names = ",\n".join(f"{escape(k.name)}{'/' if k.children is not None else ''} "
                       f"{size(k.size)}" for k in rest[:MORE_NAMES])  # a line each: diffable
    if len(rest) > MORE_NAMES:
        names += f" … and {len(rest) - MORE_NAMES} more (the live explorer, " \
                 "<code>%layers IMAGE --widget</code>, lists them all)"
    return (f'<li class="nbc-dim"><details><summary>… {len(rest)} more ({size(n_bytes)})'
            f'</summary><div class="nbc-more">{names}</div></details></li>')


# ---------------------------------------------------------------------------- layers
def layer_counts(lt: LayerTree) -> str:
    return (f'<span class="a">+{lt.added:,}</span> <span class="m">~{lt.modified:,}</span> '
            f'<span class="r">-{lt.removed:,}</span>')


def layer_title(lt: LayerTree, n_layers: int = 0) -> str:
    cmd = lt.command or "(no history)"
    if len(cmd) > 120:
        cmd = cmd[:117] + "…"
    where = f' <span class="nbc-dim">{escape(str(lt.source))}</span>' if lt.source else ""
    return (f"<code>#{lt.index}</code> {size(lt.size)} · {humanize.plural(lt.files, 'file')}"
            f" · {layer_counts(lt)} · <code>{escape(cmd)}</code>{where}")


def render_layer(lt: LayerTree, n_layers: int = 0, *, open_: bool = False,
                 max_nodes: int = MAX_NODES) -> str:
    body = render_tree(lt.root, max_nodes=max_nodes) if lt.root.children else \
        '<div class="nbc-dim">(no files)</div>'
    meta = (f'<div class="nbc-dim">digest <code>{escape(lt.digest)}</code> · '
            f"{size(lt.compressed_size)} compressed · {humanize.plural(lt.dirs, 'directory', 'directories')}"
            " written (not counted as files)</div>")
    return (f'<details class="nbc-layer" id="{lt.anchor}"{" open" if open_ else ""}>\n'
            f"<summary>{layer_title(lt, n_layers)}</summary>\n{meta}\n{body}\n</details>")


def render_layers(tree: ImageTree, *, open_: bool = True, max_nodes: int = MAX_NODES) -> str:
    n = len(tree.layers)
    per_layer = max(60, min(max_nodes, 480 // max(1, n)))  # ~500 rows in all
    layers = "\n".join(render_layer(lt, n, max_nodes=per_layer) for lt in tree.layers)
    return (f'<details class="nbc-layers"{" open" if open_ else ""}>\n<summary>'
            f"{humanize.plural(n, 'layer')} · {size(tree.size)} unpacked · "
            "each layer's changes, largest first</summary>\n"
            f"{layers}\n</details>")


# ---------------------------------------------------------------------------- insight
def efficiency_line(tree: ImageTree) -> str:
    """``efficiency 72.4% · reclaimable 120MB · dive's score 99.6%``."""
    return (f"efficiency <b>{percent(tree.efficiency)}</b> · reclaimable "
            f"<b>{size(tree.reclaimable)}</b> · dive's score {percent(tree.dive_efficiency)}")


def _where(tree: ImageTree, layer: int) -> str:
    lt = tree.layers[layer]
    cmd = lt.command if len(lt.command) <= 70 else lt.command[:69] + "…"
    line = f" ({escape(str(lt.source))})" if lt.source else ""
    return f"layer #{layer}{line} <code>{escape(cmd)}</code>"


def _finding_row(tree: ImageTree, f: Finding) -> str:
    by = ""
    if f.by is not None and f.rule.id == "duplicate":
        by = f" · first stored by layer #{f.by}"
    elif f.by is not None:
        by = f" · overwritten or deleted by layer #{f.by} (too late: the bytes stay)"
    examples = ", ".join(f"<code>/{escape(p)}</code> {size(n)}" for p, n in
                         f.examples[:EXAMPLES])
    more = f" … {f.files - EXAMPLES:,} more" if f.files > EXAMPLES else ""
    return (f"<tr><td><b>{size(f.size)}</b></td><td>{escape(f.rule.title)}</td>"
            f"<td>{_where(tree, f.layer)}{by}<br>\n"
            f'<span class="nbc-dim">{humanize.plural(f.files, "file")}: {examples}{more}'
            "</span></td></tr>")


def render_junk(tree: ImageTree) -> str:
    """The waste of the image's own layers by rule, each with where it is and the fix;
    the base image's apart (collapsed): the Dockerfile cannot reclaim it."""
    ins = tree.insight
    parts = []
    own = ins.by_rule()
    if own:
        rows = []
        for rule, total, found in own:
            rows.append(f'<tr><th colspan="3">{escape(rule.title)}: {size(total)}'
                        f'{"" if any(f.flagged for f in found) else " (below its noise floor)"}'
                        f' — <span style="font-weight:400">fix: {_code(rule.fix)}</span>'
                        "</th></tr>")
            rows.extend(_finding_row(tree, f) for f in found)
        parts.append('<table class="nbc-table nbc-junk">\n' + "\n".join(rows) + "\n</table>")
    else:
        parts.append('<div class="nbc-junk">no junk found in the image\'s own layers</div>')
    base = ins.by_rule(base=True)
    if base:
        total = sum(t for _, t, _ in base)
        base_rows = "\n".join(_finding_row(tree, f) for _, _, found in base for f in found)
        parts.append(f'<details class="nbc-base"><summary>in the base image: {size(total)} '
                     "(not counted: deleting a base file in a later layer only hides it; a "
                     'slimmer base removes it)</summary>\n<table class="nbc-table">\n'
                     f"{base_rows}\n</table></details>")
    return "\n".join(parts)


def _code(text: str) -> str:
    """Backquoted parts of a fix as code."""
    pieces = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def render_efficiency(tree: ImageTree) -> str:
    """The scores explained, and dive's list of paths touched by several layers."""
    rows = "\n".join(
        f"<tr><td>{size(i.reclaimable)}</td><td>{i.count}</td><td><code>{escape(i.path)}"
        f"</code></td></tr>" for i in tree.inefficiencies[:MAX_INEFFICIENCIES])
    more = len(tree.inefficiencies) - MAX_INEFFICIENCIES
    if more > 0:
        names = ",\n".join(f"{escape(i.path)} {size(i.reclaimable)}"
                           for i in tree.inefficiencies[MAX_INEFFICIENCIES:][:MORE_NAMES])
        rows += (f'\n<tr><td colspan="3" class="nbc-dim"><details><summary>… {more} more'
                 f'</summary><div class="nbc-more">{names}</div></details></td></tr>')
    table = ('<table class="nbc-table"><tr><th>reclaimable</th><th>layers</th><th>path</th>'
             f"</tr>\n{rows}\n</table>") if rows else ""
    return (f"<details><summary>how the scores are made · {percent(tree.efficiency)} ours, "
            f"{percent(tree.dive_efficiency)} dive's</summary>\n"
            '<p class="nbc-note">Efficiency (ours) = 1 − waste ÷ bytes of the image\'s own '
            "layers (the base image's layers left out): waste is junk (caches, package lists, "
            "/tmp …), copies a later layer overwrote or deleted, and content stored twice.\n"
            f"Own layers: #{tree.insight.own_from} and up, {size(tree.own_size)}.\ndive's score "
            "= Σ smallest copy ÷ Σ all copies of every path in every layer: it sees only "
            "paths touched twice, so a cache written once scores as efficient.\ndive's "
            f'"wasted space" ({size(tree.dive_wasted)}) also counts the copy that is kept '
            f"(wagoodman/dive#684); overwritten copies counted once: "
            f"{size(tree.overwritten)}.</p>\n{table}\n</details>")


def render_top(tree: ImageTree, max_rows: int = TOP_NODES, depth: int = 3) -> str:
    """The image as it stands, its biggest directories first (``depth`` levels), each
    with the layer most of its bytes came from; then its biggest files."""
    ins = tree.insight
    rows: list[str] = []
    budget = [max_rows]

    def walk(path: str, level: int) -> None:
        for sub in ins.subdirs.get(path, ()):
            d = ins.dirs[sub]
            if budget[0] <= 0 or d.size == 0:
                return
            budget[0] -= 1
            chip = f'<b style="color:{pictures.colour(d.layer)}">■</b>'  # its main layer
            kids = [s for s in ins.subdirs.get(sub, ()) if ins.dirs[s].size]
            head = (f"{chip} {escape(d.name)}/ <i>{size(d.size)} · "
                    f"{humanize.plural(d.files, 'file')}</i>")
            if kids and level + 1 < depth:
                rows.append(f"<li><details{' open' if level == 0 else ''}><summary>{head}"
                            '</summary>\n<ul class="nbc-tree">')
                walk(sub, level + 1)
                rows.append("</ul></details></li>")
            else:
                rows.append(f"<li>{head}</li>")

    walk("", 0)
    files = "\n".join(f"<tr><td>{size(n)}</td><td><code>/{escape(p)}</code></td>"
                      f"<td>#{layer}</td></tr>" for p, n, layer in ins.largest_files[:10])
    return ('<details class="nbc-top"><summary>the image by directory, largest first'
            '</summary>\n<ul class="nbc-tree">\n' + "\n".join(rows) + "\n</ul>\n"
            '<table class="nbc-table"><tr><th>size</th><th>largest files</th><th>layer</th>'
            f"</tr>\n{files}\n</table></details>")


def render_pictures(tree: ImageTree) -> str:
    return (f"{pictures.layer_bars(tree)}\n<details open><summary>treemap: the image by "
            "directory, coloured by the layer most of its bytes came from</summary>\n"
            f"{pictures.treemap(tree)}\n</details>")


# ---------------------------------------------------------------------------- images
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


def _header(image: Image, tree: ImageTree) -> str:
    files, dirs = tree.count()
    return (f'<div class="nbc-title">{escape(image.name)}</div>\n'
            f'<div class="nbc-dim">{humanize.plural(len(tree.layers), "layer")} · '
            f"{size(image.size)} compressed · {size(tree.size)} unpacked · "
            f"{humanize.plural(files, 'file')}, "
            f"{humanize.plural(dirs, 'directory', 'directories')} · "
            f"<code>{escape(str(image.digest))}</code></div>\n"
            f"<div>{efficiency_line(tree)}</div>")


def render_image(image: Image, tree: ImageTree) -> str:
    """An image (a build's result): summary, pictures, junk, the top of the tree."""
    cfg_rows = "\n".join(f"<tr><th>{escape(k)}</th><td><code>{escape(v)}</code></td></tr>"
                         for k, v in _config_rows(image.config))
    return (f'<div class="nbc nbc-image">\n{CSS}\n{_header(image, tree)}\n'
            f"{render_pictures(tree)}\n{render_junk(tree)}\n{render_top(tree)}\n"
            f'<details><summary>config</summary>\n<table class="nbc-table">\n'
            f"{cfg_rows}\n</table></details>\n</div>")


def render_index(index: ImageIndex, trees: Sequence[ImageTree]) -> str:
    """A multi-platform image: one collapsed section per platform, each the image's view."""
    parts = []
    for (plat, image), tree in zip(index.platform_images(), trees, strict=True):
        parts.append(f"<details><summary><b>{escape(plat)}</b> · "
                     f"{humanize.plural(len(tree.layers), 'layer')} · {size(image.size)} · "
                     f"<code>{escape(image.digest.short)}</code></summary>\n"
                     f"{render_image(image, tree)}\n</details>")
    return (f'<div class="nbc nbc-index">\n{CSS}\n'
            f'<div class="nbc-title">{escape(index.name)}</div>\n'
            f'<div class="nbc-dim">image index · {humanize.plural(len(trees), "platform")} · '
            f"<code>{escape(str(index.digest))}</code></div>\n" + "\n".join(parts) + "\n</div>")


def render_layers_view(image: Image, tree: ImageTree) -> str:
    """``%layers``: the image's view, then every layer's changes and the scores explained."""
    return (f'<div class="nbc nbc-layers-view">\n{CSS}\n{_header(image, tree)}\n'
            f"{render_pictures(tree)}\n{render_junk(tree)}\n"
            f"{render_layers(tree, open_=True)}\n{render_efficiency(tree)}\n"
            f"{render_top(tree)}\n</div>")


# ---------------------------------------------------------------------------- diffs
def _entry_rows(title: str, mark: str, rows: Sequence[tuple[str, str]], cap: int,
                counts: tuple[int, int]) -> str:
    items = "\n".join(f"<li>{_mark(mark)}<code>{escape(p)}</code><i>{escape(extra)}</i></li>"
                      for p, extra in rows[:cap])
    if len(rows) > cap:
        rest = ",\n".join(escape(p) for p, _ in rows[cap:cap + MORE_NAMES])
        items += (f'\n<li class="nbc-dim"><details><summary>… {len(rows) - cap} more'
                  f'</summary><div class="nbc-more">{rest}</div></details></li>')
    files, dirs = counts
    what = humanize.plural(files, "file") + (
        f", {humanize.plural(dirs, 'directory', 'directories')}" if dirs else "")
    return (f"<details><summary>{_mark(mark)}{what} {title}</summary>\n"
            f'<ul class="nbc-tree">\n{items}\n</ul></details>')


def render_diff(diff: ImageDiff, cap: int = 200) -> str:
    counts = diff.counts()
    added = [(e.path + ("/" if e.kind == "d" else ""), size(e.size)) for e in diff.added]
    changed = [(new.path, describe_change(old, new)) for old, new in diff.changed]
    removed = [(e.path + ("/" if e.kind == "d" else ""), size(e.size)) for e in diff.removed]
    net = diff.bytes_added()
    return (f'<div class="nbc nbc-diff">\n{CSS}\n<div class="nbc-title">{escape(diff.a)} → '
            f"{escape(diff.b)}</div>\n"
            f'<div class="nbc-dim">{escape(diff.summary())} · '
            f"{'+' if net >= 0 else '-'}{size(abs(net))} of file content · files are "
            "compared by type, mode, owner, link and content, never by time</div>\n"
            + _entry_rows("added", ADDED, added, cap, counts["added"]) + "\n"
            + _entry_rows("changed", MODIFIED, changed, cap, counts["changed"]) + "\n"
            + _entry_rows("removed", REMOVED, removed, cap, counts["removed"]) + "\n</div>")
