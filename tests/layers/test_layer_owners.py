"""Owners kept beside a tree (layers/owners.py): extraction records them when it cannot
apply them, the layer writer takes them from the record, and ``.wh.`` files of a diff in
layer format are written as the whiteouts they are."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from nbcontainer.layers import apply_layers, write_layer, write_tar
from nbcontainer.layers.compression import Compression
from nbcontainer.layers.owners import move_owners, owners_path, read_owners, write_owners


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def test_record_round_trip(tmp_path: Path) -> None:
    tree = tmp_path / "fs"
    tree.mkdir()
    write_owners(tree, {b"a": (1, 2), b"root-owned": (0, 0)})
    assert read_owners(tree) == {b"a": (1, 2)}
    assert owners_path(tree).name == "fs.owners"
    move_owners(tree, tmp_path / "moved")
    assert read_owners(tmp_path / "moved") == {b"a": (1, 2)}
    write_owners(tmp_path / "moved", {})
    assert not owners_path(tmp_path / "moved").exists()


def test_layer_from_record_and_whiteout_files(tmp_path: Path) -> None:
    tree = tmp_path / "diff"
    (tree / "home/app").mkdir(parents=True)
    (tree / "home/app/f").write_text("x")
    (tree / "etc").mkdir()
    (tree / "etc/.wh.gone").write_text("")
    out = io.BytesIO()
    write_layer(tree, out, compression=Compression.NONE, whiteout_files=True,
                owners={b"home/app": (1000, 1000), b"home/app/f": (1000, 50)})
    got = members(out.getvalue())
    assert (got["home/app"].uid, got["home/app"].gid) == (1000, 1000)
    assert (got["home/app/f"].uid, got["home/app/f"].gid) == (1000, 50)
    assert (got["etc"].uid, got["home"].uid) == (0, 0)  # not in the record: root
    assert got["etc/.wh.gone"].isfile()


def test_extraction_without_chown_records_owners(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "home/app").mkdir(parents=True)
    (src / "home/app/f").write_text("x")
    os.chown(src / "home/app", 1000, 1000)
    os.chown(src / "home/app/f", 1000, 2000)
    blob = tmp_path / "layer.tar"
    with open(blob, "wb") as f:
        write_tar(src, f)
    reports = apply_layers(tmp_path / "out", [blob], same_owner=False)
    assert reports[0].owners[b"home/app"] == (1000, 1000)
    assert reports[0].owners[b"home/app/f"] == (1000, 2000)
    assert os.stat(tmp_path / "out/home/app/f").st_uid == os.getuid()
