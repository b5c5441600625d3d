"""Small result objects of the magics that display themselves (text, and HTML where useful)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from .. import humanize
from ..oci.reference import Reference


class Message:
    """A one-line outcome (``Pushed …@sha256:…``); ``str`` of it is the line."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


class ImageList:
    """``%images``: docker's table (REPOSITORY, TAG, IMAGE ID, SIZE), as text and HTML."""

    header = ("REPOSITORY", "TAG", "IMAGE ID", "SIZE")

    def __init__(self, records: Sequence[Any]) -> None:
        self.records = list(records)

    @property
    def rows(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for r in self.records:
            ident = str(r.config_digest or r.digest).removeprefix("sha256:")[:12]
            for ref in [Reference.parse(t) for t in r.tags] or [None]:
                rows.append((ref.familiar_repository if ref else "<none>",
                             (ref.tag if ref else None) or "<none>", ident,
                             humanize.size(r.size)))
        return sorted(rows)

    def __repr__(self) -> str:
        rows = [self.header, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                         for r in rows)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": repr(self), "text/html": self._html()}

    def _html(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td><code>{escape(c)}</code></td>" for c in r)
                       + "</tr>" for r in self.rows)
        return f'<table class="nbc nbc-images"><tr>{head}</tr>{body}</table>'


class InfoView:
    """``%nbcontainer_info``: ``nbcontainer info``'s text; ``data`` is its dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __repr__(self) -> str:
        from ..wording import info_lines

        return "\n".join(info_lines(self.data))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": repr(self), "application/json": self.data}
