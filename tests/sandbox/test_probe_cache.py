"""The probe kept on disk between processes: read back only in the same environment, only
from a private directory, and always equal to what a fresh probe finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbcontainer.sandbox import probe as probe_mod

ONE_PROBE = """\
import json, sys
from nbcontainer.sandbox import probe as p
ran = []
real = p._run
p._run = lambda *a: ran.append(1) or real(*a)
found = p.probe(sys.argv[1])
print(json.dumps({"ran": bool(ran), "rung_facts": [found.userns.ok, found.mountns.ok,
                  found.overlay_store.ok, found.store_fs]}))
"""


def _probe_in_a_new_process(parent: Path, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", ONE_PROBE, str(parent)], check=True,
                         capture_output=True, text=True, env=env or dict(os.environ)).stdout
    return json.loads(out)


@pytest.fixture
def area(tmp_path: Path) -> Path:
    path = tmp_path / "build-area"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    return path


def test_a_second_process_reads_the_probe_from_disk(area: Path) -> None:
    first = _probe_in_a_new_process(area)
    assert first["ran"] and (area / probe_mod.CACHE_FILE).is_file()
    second = _probe_in_a_new_process(area)
    assert not second["ran"] and second["rung_facts"] == first["rung_facts"]


def test_the_stored_probe_equals_a_fresh_one(area: Path) -> None:
    fresh = probe_mod.probe(area, refresh=True)
    assert probe_mod._load(str(area)) == fresh


def test_another_environment_probes_again(area: Path) -> None:
    _probe_in_a_new_process(area)
    # another PATH: the tools found (newuidmap, proot) may differ
    env = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin:/nonexistent"}
    assert _probe_in_a_new_process(area, env)["ran"]


def test_an_expired_or_damaged_probe_is_not_used(area: Path) -> None:
    probe_mod.probe(area, refresh=True)
    path = area / probe_mod.CACHE_FILE
    doc = json.loads(path.read_text())
    doc["at"] -= probe_mod.CACHE_TTL + 1
    path.write_text(json.dumps(doc))
    assert probe_mod._load(str(area)) is None
    path.write_text("{not json")
    assert probe_mod._load(str(area)) is None
    assert _probe_in_a_new_process(area)["ran"]


def test_a_directory_others_can_write_is_never_trusted(area: Path) -> None:
    probe_mod.probe(area, refresh=True)
    assert probe_mod._load(str(area)) is not None
    area.chmod(0o777)  # e.g. a shared /tmp: anyone could plant a probe
    assert probe_mod._load(str(area)) is None
    area.chmod(0o755)
    (area / probe_mod.CACHE_FILE).chmod(0o666)
    assert probe_mod._load(str(area)) is None


BOTH_PROBES = """\
import sys
from nbcontainer.sandbox import capabilities, probe
probe.probe(sys.argv[1], refresh=True)
capabilities._run_probe(True)
"""


def test_an_unprivileged_probe_leaves_no_scratch(rootless) -> None:
    """As an ordinary user the probes' overlay leaves a mode-000 ``work/work`` directory
    that a plain rmtree cannot enter: both probes still remove their scratch."""
    from tests.support.users import user_repo

    area, tmp = rootless.base / "probe-area", rootless.base / "probe-tmp"
    for d in (area, tmp):
        d.mkdir(mode=0o700)
        os.chown(d, rootless.uid, rootless.gid)
    path = ":".join(str(p) for p in (user_repo(), *rootless.paths))
    proc = subprocess.run(["runuser", "-u", rootless.user, "--", "env", f"PYTHONPATH={path}",
                           f"TMPDIR={tmp}", rootless.python, "-c", BOTH_PROBES, str(area)],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [p.name for p in area.iterdir()] == [probe_mod.CACHE_FILE]
    assert list(tmp.iterdir()) == []
