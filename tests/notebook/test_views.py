"""The static views on synthetic layers (no store, no root); the model itself is tested in
tests/analysis."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from nbcontainer.analysis import LayerEntry, LayerRef, build_tree
from nbcontainer.notebook.views import html
from nbcontainer.oci.digest import Digest


def f(path: str, size: int = 0, mode: int = 0o644) -> LayerEntry:
    return LayerEntry(path, "f", size, mode, 0, 0, 0)


def d(path: str, mode: int = 0o755) -> LayerEntry:
    return LayerEntry(path, "d", 0, mode, 0, 0, 0)


def layer(entries, cmd: str = "RUN x"):
    return LayerRef(Digest.of(cmd.encode()), Digest("sha256", "1" * 64), 100, cmd), entries


class _Checker(HTMLParser):
    """Well-formedness: every non-void tag closed in order; counts tags."""

    VOID = {"br", "img", "meta", "hr", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.count: dict[str, int] = {}

    def handle_starttag(self, tag, attrs) -> None:
        self.count[tag] = self.count.get(tag, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def big_layer(n_files: int):
    entries = []
    for i in range(n_files):
        top, mid = f"d{i % 30}", f"s{i % 300}"
        entries.append(f(f"usr/{top}/{mid}/file-{i:06d}.py", 1000 + i))
    return entries


def test_30000_file_layer_html_is_small_and_well_formed() -> None:
    t = build_tree([layer(big_layer(30_000), "COPY . /usr")])
    text = html.render_layers(t)  # (its time is measured in benchmarks/html_view.py)
    assert len(text.encode()) < 2_000_000
    assert len(text.encode()) < 200_000  # the budget keeps it far below the limit
    checker = _Checker()
    checker.feed(text)
    assert not checker.stack
    # a directory the row budget does not open says what it holds
    assert "1,000 files</i></li>" in text
    assert "<script" not in text
    # the top of the tree is always there, with per-directory totals
    total = sum(1000 + i for i in range(30_000))
    assert html.size(total) in text


def test_a_wide_directory_lists_the_rest_on_demand() -> None:
    t = build_tree([layer([f(f"etc/f{i:03d}", i + 1) for i in range(500)])])
    text = html.render_layers(t)
    assert "… 450 more (" in text  # the largest 50 are rows, the rest one row that opens
    assert "f449 450B,\nf448 449B" in text  # the names that row lists, largest first
    rows = re.findall(r"<li[^>]*>\+ f(\d+) ", text)
    assert rows[:3] == ["499", "498", "497"]  # largest first


def test_tree_html_escapes_names() -> None:
    t = build_tree([layer([f("<script>x</script>", 1), LayerEntry("l", "l", 0, 0o777, 0, 0, 0,
                                                                   "<b>")])])
    text = html.render_layers(t)
    assert "<script>" not in text and "&lt;script&gt;" in text and "→ &lt;b&gt;" in text


def test_markers_survive_without_css() -> None:
    t = build_tree([layer([f("a", 1)]), layer([f("a", 2), f("b", 1), f(".wh.c")])])
    plain = re.sub(r"<style>.*?</style>", "", html.render_layers(t), flags=re.S)
    stripped = re.sub(r"<[^>]+>", "", plain)
    assert "~ a" in stripped and "+ b" in stripped
