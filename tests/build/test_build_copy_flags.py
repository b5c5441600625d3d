"""COPY/ADD flags of issue 7: --exclude (repeatable, COPY from the context or a stage, ADD)."""

from __future__ import annotations

from pathlib import Path

from .conftest import flatten, needs_root, write

pytestmark = needs_root


def test_exclude_is_repeatable_for_copy_and_add(do_build, ctx: Path, tmp_path: Path) -> None:
    write(ctx, {"app/a.py": "a", "app/b.log": "b", "app/sub/c.tmp": "c", "app/sub/d.py": "d"})
    img = do_build(
        "FROM busybox AS s\nRUN mkdir -p /src && touch /src/keep /src/drop.log\n"
        "FROM busybox\n"
        "COPY --exclude=*.log --exclude=**/*.tmp app /ctx/\n"
        "ADD --exclude=sub app /add/\n"
        "COPY --from=s --exclude=*.log /src /stage/\n")
    flat = flatten(img, tmp_path / "f")
    assert sorted(p.name for p in (flat / "ctx").rglob("*")) == ["a.py", "d.py", "sub"]
    assert sorted(p.name for p in (flat / "add").rglob("*")) == ["a.py", "b.log"]
    assert sorted(p.name for p in (flat / "stage").iterdir()) == ["keep"]


def test_exclude_changes_the_cache_key(do_build, ctx: Path) -> None:
    write(ctx, {"d/x": "x", "d/y": "y"})
    one = do_build("FROM busybox\nCOPY --exclude=x d /d/\n")
    two = do_build("FROM busybox\nCOPY --exclude=y d /d/\n")
    assert one.id != two.id
