"""The live layer explorer: a hybrid widget.

Live it is an ipywidgets view (layer list on the left; the selected layer's tree on the right,
with added/modified/removed filters and a path search). Its mimebundle also carries the static
HTML tree and a text table, because a reopened notebook or nbconvert cannot draw widgets: they
fall back to those (save notebooks without widget state so nbconvert uses the HTML).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..analysis import ADDED, MODIFIED, REMOVED, filter_tree
from ..image import Image
from .views import html, text


class LayerTreeWidget(w.HBox):
    def __init__(self, image: Image) -> None:
        self.image = image
        self.tree = image.tree()
        labels = []
        for lt in self.tree.layers:
            cmd = lt.command if len(lt.command) <= 48 else lt.command[:47] + "…"
            labels.append((f"#{lt.index} {html.size(lt.size):>8}  {cmd}", lt.index))
        self.layer_list = w.Select(options=labels, value=len(labels) - 1 if labels else None,
                                   rows=min(12, max(4, len(labels))),
                                   layout=w.Layout(width="45%"))
        self.show = {s: w.Checkbox(value=True, description=d, indent=False,
                                   layout=w.Layout(width="auto"))
                     for s, d in ((ADDED, "added"), (MODIFIED, "modified"),
                                  (REMOVED, "removed"))}
        self.search = w.Text(placeholder="search path…", continuous_update=False,
                             layout=w.Layout(width="14em"))
        self.view = w.HTML(layout=w.Layout(width="100%"))
        self.heading = w.HTML()
        controls = w.HBox([*self.show.values(), self.search])
        right = w.VBox([self.heading, controls, self.view], layout=w.Layout(width="55%"))
        super().__init__([self.layer_list, right])
        self.add_class("nbc-widget")
        for ctl in (self.layer_list, self.search, *self.show.values()):
            ctl.observe(self._refresh, names="value")
        self._refresh()

    def _refresh(self, _change: Any = None) -> None:
        if self.layer_list.value is None:
            self.view.value = "<i>no layers</i>"
            return
        lt = self.tree.layers[self.layer_list.value]
        statuses = frozenset(s for s, box in self.show.items() if box.value)
        root = filter_tree(lt.root, statuses, self.search.value.strip())
        self.heading.value = (f'<div class="nbc">{html.layer_title(lt, len(self.tree.layers))}'
                              "</div>")
        body = html.render_tree(root, open_depth=3 if self.search.value else 1) \
            if root.children else '<div class="nbc-dim">(nothing matches)</div>'
        self.view.value = f'<div class="nbc nbc-widget-tree">{html.CSS}{body}</div>'

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = super()._repr_mimebundle_(**kwargs) or {}
        data["text/plain"] = text.layers_table(self.image, self.tree)
        data["text/html"] = html.render_layers_view(self.image, self.tree)
        return data
