"""``nbcontainer run`` with docker's -v/--mount/-i/-t/--name, and ``%container_run -v``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from tests.support.marks import needs_root_busybox

pytestmark = needs_root_busybox


@pytest.fixture(scope="module")
def store(busybox_home: Path) -> Path:
    return busybox_home


def cli(home: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(home),
                           *args], capture_output=True, text=True, timeout=120, **kw)


def test_volumes_are_read_write_unless_ro(store: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("from the host\n")
    rw = cli(store, "run", "-v", f"{data}:/data", "busybox",
             "sh", "-c", "cat /data/in.txt && echo back > /data/out.txt")
    assert rw.returncode == 0, rw.stderr
    assert rw.stdout == "from the host\n"
    assert (data / "out.txt").read_text() == "back\n"
    ro = cli(store, "run", "-v", f"{data}:/data:ro", "busybox", "sh", "-c",
             "cat /data/in.txt; touch /data/new")
    assert ro.returncode != 0 and "Read-only file system" in ro.stdout + ro.stderr
    assert not (data / "new").exists()
    mount = cli(store, "run", "--mount", f"type=bind,source={data},target=/m,readonly",
                "busybox", "touch", "/m/new")
    assert mount.returncode != 0 and not (data / "new").exists()


def test_a_missing_host_path_is_a_clear_error(store: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    for flags in (["-v", f"{missing}:/data"], ["--mount", f"type=bind,src={missing},dst=/d"]):
        res = cli(store, "run", *flags, "busybox", "true")
        assert res.returncode == 1
        assert f"bind source path does not exist: {missing}" in res.stderr
        assert "hint:" in res.stderr
        assert not missing.exists()  # never created


def test_interactive_stdin(store: Path) -> None:
    res = cli(store, "run", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input="piped in\n")
    assert res.returncode == 0 and res.stdout == "PIPED IN\n"
    res = cli(store, "run", "busybox", "cat", input="not passed without -i\n")
    assert res.returncode == 0 and res.stdout == ""


def test_run_it_is_an_interactive_shell_in_a_pty(store: Path) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "nbcontainer.cli", "--root", str(store), "run",
                                           "-it", "busybox", "sh"], timeout=60,
                          encoding="utf-8", dimensions=(30, 100))
    try:
        child.expect("# ")
        child.sendline("echo answer-$((6*7)); [ -t 0 ] && [ -t 1 ] && echo terminal; stty size")
        child.expect("answer-42")
        child.expect("terminal")
        child.expect("30 100")  # our terminal's size
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3


def test_a_name_is_held_while_the_container_runs(store: Path) -> None:
    first = subprocess.Popen([sys.executable, "-m", "nbcontainer.cli", "--root", str(store),
                              "run", "--name", "web", "busybox", "sleep", "30"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lock = store / "containers" / "web.lock"
        for _ in range(300):
            if lock.exists():
                break
            time.sleep(0.1)
        time.sleep(1)
        second = cli(store, "run", "--name", "web", "busybox", "true")
        assert second.returncode == 1
        assert 'the container name "web" is already in use' in second.stderr
    finally:
        first.kill()
        first.wait()
    assert cli(store, "run", "--name", "web", "busybox", "true").returncode == 0


def test_container_run_magic_mounts_volumes(ip, tmp_path: Path) -> None:
    from IPython.utils.capture import capture_output

    (tmp_path / "note.txt").write_text("mounted\n")
    with capture_output() as out:
        result = ip.run_cell(f"%container_run -v {tmp_path}:/nb:ro busybox cat /nb/note.txt")
    assert result.error_in_exec is None
    assert "mounted" in out.stdout
