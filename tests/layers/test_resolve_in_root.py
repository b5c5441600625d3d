"""``layers.rootfs.resolve_in_root``: paths resolved as a process chrooted in the root would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbcontainer.errors import LayerError
from nbcontainer.layers.rootfs import resolve_in_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/tool").write_text("x")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/file").write_text("y")
    os.symlink("usr/bin", tmp_path / "bin")  # relative
    os.symlink("/usr", tmp_path / "etc/abs")  # absolute: from the root, not the host's /
    os.symlink("../../../../..", tmp_path / "etc/up")  # climbs past the root: stops there
    os.symlink("loop", tmp_path / "loop")
    os.symlink("/etc/file", tmp_path / "last")
    return tmp_path


def test_symlinks_stay_inside(root: Path) -> None:
    assert resolve_in_root(root, "bin/tool") == "usr/bin/tool"
    assert resolve_in_root(root, "/etc/abs/bin") == "usr/bin"
    assert resolve_in_root(root, "etc/up/etc/file") == "etc/file"
    assert resolve_in_root(root, "../../usr") == "usr"  # lexical .. of the input, too
    assert resolve_in_root(root, "/") == "" and resolve_in_root(root, ".") == ""


def test_last_component_follows_only_when_asked(root: Path) -> None:
    assert resolve_in_root(root, "last") == "etc/file"
    assert resolve_in_root(root, "last", follow=False) == "last"
    assert resolve_in_root(root, "bin/tool", follow=False) == "usr/bin/tool"  # parents follow


def test_missing_and_below_a_file(root: Path) -> None:
    assert resolve_in_root(root, "nope/tool") is None
    assert resolve_in_root(root, "etc/file/below") is None


def test_symlink_loop_is_an_error(root: Path) -> None:
    with pytest.raises(LayerError, match="too many levels of symbolic links"):
        resolve_in_root(root, "loop/x")
