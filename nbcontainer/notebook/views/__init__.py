"""Displays: what an Image, its layers, its manifest and a diff look like in a notebook.

Each returns a mimebundle with a ``text/plain`` fallback; HTML and JSON are never mixed in
one bundle (JupyterLab would pick JSON, nbconvert HTML: see ``manifest.py``). The data comes
from :mod:`nbcontainer.analysis` (``Image.tree()``, ``ImageDiff``); these only render it.
"""

from __future__ import annotations

from typing import Any

from ...analysis import ImageDiff, ImageTree
from ...image import Image, ImageIndex
from . import html, text
from .manifest import ManifestView


def tree_of(image: Image) -> ImageTree:
    """The image's layer tree (the analysis caches it by layer stack)."""
    return image.tree()


def image_bundle(image: Image) -> dict[str, str]:
    tree = tree_of(image)
    return {"text/plain": text.image_line(image, tree),
            "text/html": html.render_image(image, tree)}


def index_bundle(index: ImageIndex) -> dict[str, str]:
    trees = [tree_of(image) for _, image in index.platform_images()]
    return {"text/plain": index.summary(), "text/html": html.render_index(index, trees)}


class LayersView:
    """``%layers``: the dive view with the layer list open."""

    def __init__(self, image: Image) -> None:
        self.image = image

    @property
    def tree(self) -> ImageTree:
        return tree_of(self.image)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": text.layers_table(self.image, self.tree),
                "text/html": html.render_layers_view(self.image, self.tree)}

    def __repr__(self) -> str:
        return text.layers_table(self.image, self.tree)


def diff_bundle(diff: ImageDiff) -> dict[str, str]:
    lines = [diff.summary()]
    for label, entries in (("+", [e.path for e in diff.added]),
                           ("~", [n.path for _, n in diff.changed]),
                           ("-", [e.path for e in diff.removed])):
        lines += [f"  {label} {p}" for p in entries[:20]]
        if len(entries) > 20:
            lines.append(f"  {label} … {len(entries) - 20} more")
    return {"text/plain": "\n".join(lines), "text/html": html.render_diff(diff)}


__all__ = ["LayersView", "ManifestView", "diff_bundle", "image_bundle", "index_bundle", "tree_of"]
