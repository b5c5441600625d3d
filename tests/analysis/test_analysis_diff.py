"""Image diffs: merged filesystems compared by type, mode, owner, link and content (the
hash taken while reading the layer), never by timestamps."""

from __future__ import annotations

from nbcontainer.analysis import LayerEntry, describe_change, diff_files, what_changed


def e(path: str, kind: str = "f", size: int = 1, mtime: int = 0, mode: int = 0o644,
      link: str = "", digest: bytes = b"", uid: int = 0) -> LayerEntry:
    return LayerEntry(path, kind, size, mode, uid, 0, mtime, link, digest)


def test_added_changed_removed() -> None:
    a = {"same": e("same"), "gone": e("gone"), "grew": e("grew", size=1),
         "touched": e("touched", mtime=1), "moved": e("moved", "l", 0, link="x"),
         "dir": e("dir", "d", 0, mtime=1)}
    b = {"same": e("same"), "grew": e("grew", size=2), "touched": e("touched", mtime=2),
         "moved": e("moved", "l", 0, link="y"), "dir": e("dir", "d", 0, mtime=5),
         "new": e("new")}
    diff = diff_files(a, b, "one", "two")
    assert [x.path for x in diff.added] == ["new"]
    assert [x.path for x in diff.removed] == ["gone"]
    # timestamps are no change: the same file built again a second later is the same file
    assert [new.path for _, new in diff.changed] == ["grew", "moved"]
    assert diff.changed[0][0].size == 1 and diff.changed[0][1].size == 2
    assert diff.summary() == "one → two: 1 file added, 2 changed, 1 removed"
    assert diff.counts() == {"added": (1, 0), "changed": (2, 0), "removed": (1, 0)}


def test_what_changed_is_said() -> None:
    old = e("f", size=4, digest=b"a" * 16)
    assert what_changed(old, e("f", size=4, digest=b"b" * 16)) == ("content",)
    assert what_changed(old, e("f", size=9, digest=b"b" * 16)) == ("size",)
    assert what_changed(old, e("f", size=4, digest=b"a" * 16, mode=0o755, uid=1000)) == \
        ("mode", "owner")
    assert what_changed(e("l", "l", 0, link="a"), e("l", "l", 0, link="b")) == ("link",)
    assert what_changed(old, e("f", "l", 0, link="x")) == ("type",)
    assert describe_change(old, e("f", size=4000, digest=b"c" * 16, mode=0o600)) == \
        "size 4B → 4kB, mode 0644 → 0600"
    same = diff_files({"f": old}, {"f": e("f", size=4, digest=b"a" * 16, mtime=99)})
    assert same.changed == ()


def test_directories_are_counted_apart() -> None:
    diff = diff_files({}, {"d": e("d", "d", 0), "d/f": e("d/f"), "d/g": e("d/g")}, "a", "b")
    assert diff.summary() == "a → b: 2 files added, 0 changed, 0 removed (directories: +1 ~0 -0)"


def test_a_directory_mode_change_is_a_change() -> None:
    diff = diff_files({"d": e("d", "d", 0, mode=0o755)}, {"d": e("d", "d", 0, mode=0o700)})
    assert len(diff.changed) == 1
