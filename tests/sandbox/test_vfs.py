"""Tree copies (the vfs strategy): the change of a RUN found by inode and ctime, written as
a diff dir in layer format, and the owners records carried along."""

from __future__ import annotations

import os
from pathlib import Path

from nbcontainer.layers.owners import read_owners, write_owners
from nbcontainer.sandbox import vfs


def make_tree(root: Path) -> None:
    for d in ("etc", "usr/bin", "var/lib/old", "home/app"):
        (root / d).mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc/keep").write_text("same\n")
    (root / "usr/bin/tool").write_text("#!/bin/sh\n")
    (root / "var/lib/old/a").write_text("a")
    (root / "var/lib/old/b").write_text("b")
    os.symlink("usr/bin", root / "bin")


def test_commit_finds_every_kind_of_change(tmp_path: Path) -> None:
    parent = tmp_path / "flat"
    make_tree(parent)
    write_owners(parent, {b"home/app": (1000, 1000), b"etc/passwd": (0, 42),
                          b"var/lib/old/a": (7, 7)})
    upper = tmp_path / "run" / "upper"
    upper.mkdir(parents=True)
    job = vfs.TreeRun(parent, upper, records=True, own=False)
    tree = job.tree
    assert (tree / "dev").is_dir() and (tree / "etc/hosts").is_file()  # mount targets
    # the RUN: append, create, chmod, delete a file and a directory, replace a dir
    with open(tree / "etc/passwd", "a") as f:
        f.write("app:x:1000:1000::/home/app:/bin/sh\n")
    (tree / "home/app/new").write_text("n")
    os.chmod(tree / "usr/bin/tool", 0o755)
    os.unlink(tree / "var/lib/old/b")
    os.unlink(tree / "var/lib/old/a")
    os.rmdir(tree / "var/lib/old")
    (tree / "var/lib/old").write_text("now a file")
    result = job.commit()
    assert result == tree
    names = {str(p.relative_to(upper)) for p in upper.rglob("*")}
    assert {"etc/passwd", "home/app/new", "usr/bin/tool", "var/lib/old"} <= names
    assert "etc/keep" not in names and "etc/hosts" not in names and "dev" not in names
    assert (upper / "var/lib/old").is_file()
    # removed mount targets leave the tree as it was
    assert not (tree / "dev").exists() and not (tree / "etc/hosts").exists()
    # a file changed in place keeps its recorded owner; new and replaced ones belong to root
    diff_owners, tree_owners = read_owners(upper), read_owners(tree)
    assert diff_owners[b"etc/passwd"] == (0, 42)
    assert diff_owners.get(b"home/app") == (1000, 1000)
    assert b"home/app/new" not in diff_owners and b"var/lib/old/a" not in tree_owners
    assert tree_owners[b"etc/passwd"] == (0, 42)


def test_deleted_entries_become_whiteouts(tmp_path: Path) -> None:
    parent = tmp_path / "flat"
    make_tree(parent)
    upper = tmp_path / "run" / "upper"
    upper.mkdir(parents=True)
    job = vfs.TreeRun(parent, upper, records=True, own=False)
    for name in ("a", "b"):
        os.unlink(job.tree / "var/lib/old" / name)
    os.rmdir(job.tree / "var/lib/old")
    os.unlink(job.tree / "etc/keep")
    os.unlink(job.tree / "bin")
    job.commit()
    assert (upper / "var/lib/.wh.old").is_file()
    assert not (upper / "var/lib/old").exists()  # one whiteout covers the deleted dir
    assert (upper / "etc/.wh.keep").is_file() and (upper / ".wh.bin").is_file()


def test_upper_dir_owners_come_from_the_lowers_records(tmp_path: Path) -> None:
    """A single-id map over overlayfs: a copied-up entry keeps the owner its lower recorded,
    a new one belongs to root, the topmost lower decides."""
    bottom, top, upper = tmp_path / "bottom", tmp_path / "top", tmp_path / "upper"
    for d in (bottom / "var/cache/apt", top / "etc", upper / "var/cache/apt", upper / "etc"):
        d.mkdir(parents=True)
    (bottom / "etc").mkdir()
    (bottom / "etc/shadow").write_text("x")
    (top / "etc/shadow").write_text("y")
    write_owners(bottom, {b"var/cache/apt": (42, 0), b"etc/shadow": (0, 42)})
    write_owners(top, {b"etc": (0, 0)})  # top has its own (root-owned) shadow
    (upper / "etc/shadow").write_text("z")
    (upper / "var/cache/apt/new").write_text("n")
    owners = vfs.upper_owners(upper, [top, bottom])
    assert owners[b"var/cache/apt"] == (42, 0)
    assert b"etc/shadow" not in owners  # top's copy (no record: root) decides
    assert b"var/cache/apt/new" not in owners
