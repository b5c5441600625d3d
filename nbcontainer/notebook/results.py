"""Small result objects of the magics that display themselves (text, and HTML where useful)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from .. import humanize


class Message:
    """A one-line outcome (``Pushed …@sha256:…``); ``str`` of it is the line."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


class ImageList:
    """``%images``: docker's table (REPOSITORY, TAG, [DIGEST,] IMAGE ID, SIZE) of the rows
    ``api.images()`` returns, as text and HTML. No CREATED column: "2 minutes ago" would
    differ every time a saved notebook is checked."""

    def __init__(self, rows: Sequence[Any], *, digests: bool = False,
                 no_trunc: bool = False) -> None:
        self.records = list(rows)
        self.digests = digests
        self.no_trunc = no_trunc

    @property
    def header(self) -> tuple[str, ...]:
        return ("REPOSITORY", "TAG", *(("DIGEST",) if self.digests else ()), "IMAGE ID", "SIZE")

    @property
    def rows(self) -> list[tuple[str, ...]]:
        return sorted((r.repository, r.tag, *((str(r.digest),) if self.digests else ()),
                       str(r.id) if self.no_trunc else r.id.short, humanize.size(r.size))
                      for r in self.records)

    def __repr__(self) -> str:
        rows = [self.header, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.header))]
        return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         for r in rows)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": repr(self), "text/html": self._html()}

    def _html(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td><code>{escape(c)}</code></td>" for c in r)
                       + "</tr>" for r in self.rows)
        return f'<table class="nbc nbc-images"><tr>{head}</tr>{body}</table>'
