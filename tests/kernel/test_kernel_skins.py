"""The kernel commands in both skins: ``nbcontainer kernel install|list|remove``,
``nbcontainer build --kernel``, ``%%dockerfile --kernel``, ``%kernel_install``,
``%kernel_list``, ``%kernel_remove`` (the kernelspecs they write; starting kernels is
test_kernel.py's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbcontainer import api
from tests.support.marks import needs_root_busybox

pytestmark = needs_root_busybox


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(home), *args],
                          capture_output=True, text=True, timeout=120)


def spec_of(data: Path, name: str) -> dict:
    return json.loads((data / "kernels" / name / "kernel.json").read_text())


def test_kernel_install_list_remove(busybox_home: Path, jupyter_dirs: Path,
                                   tmp_path: Path) -> None:
    digest = str(api.image("busybox", store=api.get_store(busybox_home)).digest)
    res = cli(busybox_home, "kernel", "install", "busybox", "--display-name", "Box",
              "-v", f"{tmp_path}:/data:ro", "-e", "A=1", "--no-workdir-mount",
              "--allow", "network.host")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "busybox\n"
    assert "Installed kernel busybox" in res.stderr and digest in res.stderr
    assert "Change Kernel" in res.stderr
    spec = spec_of(jupyter_dirs, "busybox")
    assert spec["argv"][1:4] == ["-m", "nbcontainer.kernel.launcher",
                                 str(jupyter_dirs / "kernels" / "busybox")]
    assert spec["argv"][-2:] == ["-f", "{connection_file}"]
    assert spec["display_name"] == "Box" and spec["interrupt_mode"] == "signal"
    record = spec["metadata"]["nbcontainer"]
    assert record["digest"] == digest and record["image"] == "busybox"
    assert record["volumes"] == [f"{tmp_path}:/data:ro"]
    assert record["env"] == {"A": "1"} and record["workdir_mount"] is False
    assert record["allow"] == ["network.host"] and record["store"] == str(busybox_home)
    listed = cli(busybox_home, "kernel", "list")
    assert listed.stdout.splitlines()[0].split()[:4] == ["NAME", "IMAGE", "DIGEST", "ALLOW"]
    assert listed.stdout.splitlines()[1].split()[:4] == ["busybox", "busybox", digest[7:19],
                                                        "network.host"]
    prefix = tmp_path / "prefix"
    assert cli(busybox_home, "kernel", "install", "busybox", "--name", "Other",
               "--prefix", str(prefix)).returncode == 0
    assert (prefix / "share/jupyter/kernels/other/kernel.json").exists()
    assert cli(busybox_home, "kernel", "remove", "busybox").stdout.startswith(
        "Removed kernel busybox")
    missing = cli(busybox_home, "kernel", "remove", "busybox")
    assert missing.returncode == 1 and "no nbcontainer kernel named 'busybox'" in missing.stderr
    bad = cli(busybox_home, "kernel", "install", "busybox", "-v", "/no/such:/x")
    assert bad.returncode == 1 and "bind source path does not exist" in bad.stderr


def test_build_with_kernel(busybox_home: Path, jupyter_dirs: Path, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo v1 > /v\n")
    res = cli(busybox_home, "build", "-t", "kbox:1", "--kernel", "kbox", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "Installed kernel kbox" in res.stderr
    record = spec_of(jupyter_dirs, "kbox")["metadata"]["nbcontainer"]
    assert record["digest"] == str(api.image("kbox:1", store=api.get_store(busybox_home)).digest)


def test_dockerfile_kernel_and_kernel_magics(ip, jupyter_dirs: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.utils.capture import capture_output

    monkeypatch.chdir(tmp_path)
    with capture_output() as out:
        r = ip.run_cell("%%dockerfile -t magicbox:1 --kernel magicbox --progress quiet "
                        "--kernel-display-name 'Magic box'\nFROM busybox\nRUN echo hi > /hi\n")
    assert r.error_in_exec is None, r.error_in_exec
    assert "Installed kernel magicbox" in out.stdout and "Magic box" in out.stdout
    assert spec_of(jupyter_dirs, "magicbox")["metadata"]["nbcontainer"]["digest"] == \
        str(r.result.digest)
    r = ip.run_cell("%kernel_install magicbox:1 --name second --allow network.host")
    assert r.error_in_exec is None and "Installed kernel second" in str(r.result)
    r = ip.run_cell("%kernel_list")
    assert [line.split()[0] for line in str(r.result).splitlines()] == \
        ["NAME", "magicbox", "second"]
    r = ip.run_cell("%kernel_remove second magicbox")
    assert str(r.result) == "Removed kernel second\nRemoved kernel magicbox"
    with capture_output():
        r = ip.run_cell("%kernel_install magicbox:1 -v /no/such/path:/x")
    assert r.error_in_exec is not None and "does not exist" in str(r.error_in_exec)


def test_install_records_the_build_provenance(busybox_home: Path, jupyter_dirs: Path,
                                              tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo v1 > /v\n")
    res = cli(busybox_home, "build", "-t", "provbox:1", "--provenance", "--kernel", "provbox",
              str(tmp_path))
    assert res.returncode == 0, res.stderr
    record = spec_of(jupyter_dirs, "provbox")["metadata"]["nbcontainer"]
    definition = record["provenance"]["buildDefinition"]
    assert record["provenance"]["predicateType"].startswith("https://slsa.dev/provenance/")
    assert "externalParameters" in definition
    assert cli(busybox_home, "kernel", "install", "busybox", "--name", "plain").returncode == 0
    assert spec_of(jupyter_dirs, "plain")["metadata"]["nbcontainer"]["provenance"] is None
