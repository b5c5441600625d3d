"""Id maps and tree shifting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbcontainer.errors import LayerError
from nbcontainer.layers.idmap import IdMap, IdRange, UnmappedIdError, shift_tree, subid_range

MAP = IdMap.rootless(1001, 1001, 100000, 200000)


def test_translation_both_ways() -> None:
    assert MAP.to_host_uid(0) == 1001
    assert MAP.to_host_uid(42) == 100041
    assert MAP.to_host_gid(42) == 200041
    assert MAP.to_container_uid(100041) == 42
    assert MAP.to_container_uid(1001) == 0
    with pytest.raises(KeyError):  # callers that fall back to nobody catch KeyError
        MAP.to_container_uid(5)
    with pytest.raises(LayerError, match="host uid 5 is outside"):
        MAP.to_container_uid(5)
    assert MAP.map_lines("uid") == "0 1001 1\n1 100000 65536\n"
    assert MAP.newidmap_args("gid") == ["0", "1001", "1", "1", "200000", "65536"]
    assert IdMap.identity().is_identity and IdMap.single(5, 5).is_single


def test_owner_pairs_and_parsing_agree_with_single_ids() -> None:
    parsed = IdMap.parse(MAP.map_lines("uid"), MAP.map_lines("gid"))
    assert parsed == MAP
    assert MAP.to_container(100041, 200041) == (42, 42)
    assert MAP.to_host(42, 0) == (100041, 1001)
    with pytest.raises(UnmappedIdError, match="outside the id map"):
        MAP.to_container(5, 5, entry="etc/x")
    uneven = IdMap.rootless(1001, 1001, 100000, 200000, 10, gid_count=20)
    assert uneven.gids[1] == IdRange(1, 200000, 20) and uneven.uids[1].count == 10


def test_subid_range(tmp_path: Path) -> None:
    f = tmp_path / "subuid"
    f.write_text("alice:100000:65536\n1002:300000:1000\nbad:line\n")
    assert subid_range(str(f), "alice", 1001) == (100000, 65536)
    assert subid_range(str(f), "bob", 1002) == (300000, 1000)
    assert subid_range(str(f), "carol", 1003) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_shift_tree_keeps_setid_bits(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    tool = tmp_path / "d" / "tool"
    tool.write_text("x")
    os.chown(tool, 42, 42)
    os.chmod(tool, 0o4755)
    os.symlink("tool", tmp_path / "d" / "link")
    assert shift_tree(tmp_path, MAP) == 4
    st = os.lstat(tool)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (100041, 200041, 0o4755)
    assert os.lstat(tmp_path / "d" / "link").st_uid == 1001
    shift_tree(tmp_path, MAP, to_host=False)
    assert os.lstat(tool).st_uid == 42 and os.lstat(tmp_path).st_uid == 0
