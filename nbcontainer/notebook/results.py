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


class CheckResult:
    """``%layers --check``: dive's CI verdict as a table (text and HTML)."""

    def __init__(self, report: Any) -> None:
        self.report = report

    @property
    def passed(self) -> bool:
        return bool(self.report.passed)

    def __repr__(self) -> str:
        r = self.report
        rows = [("RESULT", "RULE", "VALUE", "LIMIT", "WHERE / FIX")]
        rows += [(x.status, x.rule, x.value, x.limit, x.detail) for x in r.results]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [f"{r.image}: efficiency {r.efficiency:.1%} (dive's score "
                 f"{r.dive_efficiency:.1%}), waste {humanize.size(r.wasted)} "
                 f"({r.user_wasted_percent:.1%} of its own layers); rules: {r.rules.source}"]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  "
                  + row[4] for row in rows]
        lines.append(f"Result: {'PASS' if r.passed else 'FAIL'}")
        return "\n".join(line.rstrip() for line in lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": repr(self), "text/html": self._html()}

    def _html(self) -> str:
        r = self.report
        colour = {"PASS": "#1a7f37", "FAIL": "#cf222e", "SKIP": "#888"}
        body = "\n".join(
            f'<tr><td style="color:{colour[x.status]};font-weight:600">{x.status}</td>'
            f"<td><code>{escape(x.rule)}</code></td><td>{escape(x.value)}</td>"
            f"<td>{escape(x.limit)}</td><td>{escape(x.detail)}</td></tr>" for x in r.results)
        verdict = "PASS" if r.passed else "FAIL"
        return (f'<div class="nbc nbc-check"><div><b style="color:{colour[verdict]}">'
                f"{verdict}</b> {escape(r.image)}: efficiency {r.efficiency:.1%} (dive's "
                f"score {r.dive_efficiency:.1%}), waste {humanize.size(r.wasted)}; rules: "
                f"{escape(r.rules.source)}</div>\n<table><tr><th>result</th><th>rule</th>"
                f"<th>value</th><th>limit</th><th>where / fix</th></tr>\n{body}\n</table></div>")


class InfoView:
    """``%nbcontainer_info``: ``nbcontainer info``'s text; ``data`` is its dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __repr__(self) -> str:
        from ..wording import info_lines

        return "\n".join(info_lines(self.data))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": repr(self), "application/json": self.data}
