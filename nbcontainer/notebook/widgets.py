"""The live layer explorer: a hybrid widget, dive's two views in a notebook.

Live it is an ipywidgets view: the layers on the left (with the layer bars, the efficiency
and the junk found); on the right the selected layer's own changes, or the image as it
stands at that layer (every file of the layers up to it, marked with what this layer
added, modified or removed). The tree sits in a fixed-height scroll area, biggest first or
by name; long names end in "…" and show their full path on hover; the search filters as you
type (a quarter second after the last key), opens the directories that lead to each match
and highlights it; expand all / collapse all open or close every directory in view.

Its mimebundle also carries the static HTML view and a text table, because a reopened
notebook or nbconvert cannot draw widgets: they fall back to those (save notebooks without
widget state so nbconvert uses the HTML).
"""

from __future__ import annotations

import asyncio
from typing import Any

import ipywidgets as w

from ..analysis import (
    ADDED,
    MODIFIED,
    REMOVED,
    UNCHANGED,
    Node,
    filter_tree,
    image_at,
    matches,
)
from ..image import Image
from .views import html, pictures, text

DEBOUNCE = 0.25  # seconds after the last key before the search runs
HEIGHT = "440px"  # the tree's scroll area
ROWS = 1500  # tree rows at most (a search opens what it finds within this budget)
VIEWS = (("this layer's changes", "changes"), ("the image at this layer", "image"))
CSS = html.CSS.replace("</style>", """
.nbc-widget .nbc summary{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.nbc-widget-tree{padding-right:6px}
</style>""")


class LayerTreeWidget(w.VBox):
    def __init__(self, image: Image) -> None:
        self.image = image
        self.tree = image.tree()
        self._images: dict[int, Node] = {}  # the image at each layer, built when first shown
        self._pending: asyncio.TimerHandle | None = None
        self.expand: bool | None = None  # None: the default depth; True/False: all/none
        labels = []
        for lt in self.tree.layers:
            cmd = lt.command if len(lt.command) <= 48 else lt.command[:47] + "…"
            labels.append((f"#{lt.index} {html.size(lt.size):>8}  {cmd}", lt.index))
        self.layer_list = w.Select(options=labels, value=len(labels) - 1 if labels else None,
                                   rows=min(12, max(4, len(labels))),
                                   layout=w.Layout(width="100%"))
        self.mode = w.ToggleButtons(options=VIEWS, value="changes",
                                    style={"button_width": "auto"})
        self.sort = w.ToggleButtons(options=(("by size", "size"), ("by name", "name")),
                                    value="size", style={"button_width": "auto"})
        self.show = {s: w.Checkbox(value=True, description=d, indent=False,
                                   layout=w.Layout(width="auto"))
                     for s, d in ((ADDED, "added"), (MODIFIED, "modified"),
                                  (REMOVED, "removed"), (UNCHANGED, "unchanged"))}
        self.search = w.Text(placeholder="search a name…", continuous_update=True,
                             layout=w.Layout(width="16em"))
        self.expand_all = w.Button(description="expand all", layout=w.Layout(width="auto"))
        self.collapse_all = w.Button(description="collapse all",
                                     layout=w.Layout(width="auto"))
        self.heading = w.HTML()
        self.view = w.HTML(layout=w.Layout(width="100%"))
        scroll = w.Box([self.view], layout=w.Layout(height=HEIGHT, overflow="auto",
                                                    border="1px solid #8884", width="100%"))
        insight = w.HTML(self._insight_html(), layout=w.Layout(max_height=HEIGHT,
                                                                overflow="auto"))
        left = w.VBox([self.layer_list, insight], layout=w.Layout(width="40%"))
        controls = w.HBox([self.mode, self.sort], layout=w.Layout(flex_flow="row wrap"))
        filters = w.HBox([self.search, *self.show.values(), self.expand_all,
                          self.collapse_all], layout=w.Layout(flex_flow="row wrap"))
        right = w.VBox([self.heading, controls, filters, scroll], layout=w.Layout(width="60%"))
        top = w.HTML(f'<div class="nbc">{CSS}{html.efficiency_line(self.tree)}</div>')
        super().__init__([top, w.HBox([left, right], layout=w.Layout(width="100%"))])
        self.add_class("nbc-widget")
        for ctl in (self.layer_list, self.mode, self.sort, *self.show.values()):
            ctl.observe(self._refresh, names="value")
        self.search.observe(self._typed, names="value")
        self.expand_all.on_click(lambda _: self._expand(True))
        self.collapse_all.on_click(lambda _: self._expand(False))
        self._refresh()

    # ------------------------------------------------------------------ events
    def _typed(self, _change: Any = None) -> None:
        """Search as you type, once the typing pauses (on the kernel's event loop; at once
        where there is none, e.g. in a plain IPython shell)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._refresh()
            return
        self._pending = loop.call_later(DEBOUNCE, self._refresh)

    def _expand(self, value: bool) -> None:
        self.expand = value
        self._refresh()

    # ------------------------------------------------------------------ rendering
    def _insight_html(self) -> str:
        return (f'<div class="nbc">{CSS}{pictures.layer_bars(self.tree)}'
                f"{html.render_junk(self.tree)}</div>")

    def _root(self, index: int) -> Node:
        lt = self.tree.layers[index]
        if self.mode.value == "changes":
            return lt.root
        root = self._images.get(index)
        if root is None:
            stack = [layer.entries() for layer in self.image.layers[:index + 1]]
            root = self._images[index] = image_at(stack, lt)
        return root

    def _refresh(self, _change: Any = None) -> None:
        self._pending = None
        index = self.layer_list.value
        if index is None:
            self.view.value = "<i>no layers</i>"
            return
        lt = self.tree.layers[index]
        self.show[UNCHANGED].disabled = self.mode.value == "changes"
        statuses = frozenset(s for s, box in self.show.items() if box.value and
                             not box.disabled)
        query = self.search.value.strip()
        root = filter_tree(self._root(index), statuses, query)
        opened = matches(root, query)[1] if query else None
        where = "changes of" if self.mode.value == "changes" else "the image at"
        self.heading.value = (f'<div class="nbc">{where} {html.layer_title(lt)}</div>')
        if not root.children:
            self.view.value = f'<div class="nbc">{CSS}<i>(nothing matches)</i></div>'
            return
        body = html.render_tree(root, max_nodes=ROWS, sort=self.sort.value, opened=opened,
                                open_all=bool(self.expand), highlight=query, titles=True,
                                open_depth=-1 if self.expand is False else 1,
                                max_children=200)
        self.view.value = f'<div class="nbc nbc-widget-tree">{CSS}{body}</div>'

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = super()._repr_mimebundle_(**kwargs) or {}
        data["text/plain"] = text.layers_table(self.image, self.tree)
        data["text/html"] = html.render_layers_view(self.image, self.tree)
        return data
