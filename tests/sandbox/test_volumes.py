"""``-v``/``--mount`` values as bind mounts (sandbox/volumes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcontainer.errors import MountSpecError
from nbcontainer.sandbox.spec import BindMount
from nbcontainer.sandbox.volumes import parse_mount, parse_volume, volume_text


def test_volumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert parse_volume("data:/data") == BindMount(tmp_path / "data", "/data", readonly=False)
    assert parse_volume(f"{tmp_path}:/srv/x/:ro") == BindMount(tmp_path, "/srv/x", readonly=True)
    assert parse_volume(f"{tmp_path}:/x:rw").readonly is False
    assert volume_text(parse_volume("data:/d:ro")) == f"{tmp_path / 'data'}:/d:ro"
    for bad, match in [("data", "expected HOST:CONTAINER"), ("data:/d:rx", "expected"),
                       ("named:/d", "does not exist"), ("data:rel", "must be absolute"),
                       ("data:/a/../b", "must be absolute"), (":/d", "host path is empty")]:
        with pytest.raises(MountSpecError, match=match):
            parse_volume(bad)


def test_mounts(tmp_path: Path) -> None:
    assert parse_mount(f"type=bind,source={tmp_path},target=/m") == \
        BindMount(tmp_path, "/m", readonly=False)
    assert parse_mount(f"src={tmp_path},dst=/m,readonly").readonly
    assert parse_mount(f"source={tmp_path},destination=/m,ro=true").readonly
    assert not parse_mount(f"source={tmp_path},target=/m,readonly=false").readonly
    for bad, match in [(f"type=volume,source={tmp_path},target=/m", "only type=bind"),
                       (f"source={tmp_path}", "source and target are required"),
                       (f"source={tmp_path},target=/m,bind-propagation=rshared", "unknown"),
                       ("source=/no/such/dir,target=/m", "does not exist")]:
        with pytest.raises(MountSpecError, match=match):
            parse_mount(bad)
