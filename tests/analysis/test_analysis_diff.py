"""Image diffs: merged filesystems compared with rsync's quick check."""

from __future__ import annotations

from nbcontainer.analysis import LayerEntry, diff_files


def e(path: str, kind: str = "f", size: int = 1, mtime: int = 0, mode: int = 0o644,
      link: str = "") -> LayerEntry:
    return LayerEntry(path, kind, size, mode, 0, 0, mtime, link)


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
    # a directory's mtime moves with its children: not a change of its own
    assert [new.path for _, new in diff.changed] == ["grew", "moved", "touched"]
    assert diff.changed[0][0].size == 1 and diff.changed[0][1].size == 2
    assert diff.summary() == "one → two: 1 added, 3 changed, 1 removed"


def test_a_directory_mode_change_is_a_change() -> None:
    diff = diff_files({"d": e("d", "d", 0, mode=0o755)}, {"d": e("d", "d", 0, mode=0o700)})
    assert len(diff.changed) == 1
