"""JSON documents (manifest, config, index, inspect) as their own ``application/json`` output.

Never bundled with HTML: JupyterLab ranks JSON first (its collapsible viewer) and nbconvert has
no JSON renderer, so a mixed bundle shows different things in each. The ``text/plain``
pretty-print is what nbconvert, GitHub and terminals show. ``html=True`` gives instead an
HTML ``<pre>`` whose digests link to their layer in the tree view (``#nbc-layer-…``).
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from ...image import Image

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


class ManifestView:
    def __init__(self, doc: dict[str, Any], root: str = "manifest", *, html: bool = False,
                 layer_digests: frozenset[str] = frozenset()) -> None:
        self.doc = doc
        self.root = root
        self.html = html
        self.layer_digests = layer_digests

    @classmethod
    def of(cls, image: Image, *, html: bool = False) -> ManifestView:
        doc: dict[str, Any] = {"manifest": image.manifest.to_dict(),
                               "config": image.config.to_dict()}
        if image.index_digest is not None:
            doc["index"] = image.store.read_manifest(image.index_digest).to_dict()
        layers = frozenset(str(d.digest) for d in image.manifest.layers)
        return cls(doc, image.name, html=html, layer_digests=layers)

    @property
    def text(self) -> str:
        return json.dumps(self.doc, indent=2)

    def _link(self, m: re.Match[str]) -> str:
        digest = m.group(0)
        if digest in self.layer_digests:
            return f'<a href="#nbc-layer-{m.group(1)[:12]}">{digest}</a>'
        return digest

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        if self.html:
            body = _DIGEST.sub(self._link, escape(self.text))
            return {"text/plain": self.text,
                    "text/html": f'<pre class="nbc nbc-manifest">{body}</pre>'}
        return ({"application/json": self.doc, "text/plain": self.text},
                {"application/json": {"expanded": False, "root": self.root}})

    def __repr__(self) -> str:
        return self.text
