"""Unit tests of nbcontainer.builder.platforms: platform lists and binfmt_misc detection over a
fake binfmt_misc directory (entries written the way the kernel shows them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcontainer.builder.platforms import (
    check_can_run,
    find_emulator,
    parse_platforms,
    runs_natively,
)
from nbcontainer.errors import BuildError
from nbcontainer.oci.platform import Platform

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")

# As /proc/sys/fs/binfmt_misc/qemu-aarch64 reads after qemu-user-static registered it.
QEMU_AARCH64 = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""
QEMU_ARM = """enabled
interpreter /usr/libexec/qemu-binfmt/arm-binfmt-P
flags: POCF
offset 0
magic 7f454c4601010100000000000000000002002800
mask ffffffffffffff00fffffffffffffffffeffffff
"""


def fake_binfmt(tmp: Path, entries: dict[str, str], status: str = "enabled") -> Path:
    d = tmp / "binfmt_misc"
    d.mkdir()
    (d / "status").write_text(status + "\n")
    (d / "register").write_text("")
    for name, text in entries.items():
        (d / name).write_text(text)
    return d


def test_parse_platforms_normalizes_and_dedupes() -> None:
    assert parse_platforms("linux/amd64,linux/arm64") == [AMD64, ARM64]
    assert parse_platforms(" linux/x86_64 , linux/aarch64,linux/arm64/v8 ,amd64") == [
        AMD64, ARM64]
    assert parse_platforms(["linux/arm/v7", "linux/armhf"]) == [Platform("linux", "arm", "v7")]
    assert parse_platforms([ARM64, "linux/amd64"]) == [ARM64, AMD64]
    assert parse_platforms(None) == [Platform.host()]
    assert parse_platforms("") == [Platform.host()]  # docker's --platform "" = default


@pytest.mark.parametrize("spec, words", [
    ("linux/amd64,", "empty entry"),
    ("linux/amd64,,linux/arm64", "empty entry"),
    ("linux/amd64/v3/x", "invalid platform 'linux/amd64/v3/x'"),
    ("windows/amd64", "only linux images"),
])
def test_parse_platforms_errors(spec: str, words: str) -> None:
    with pytest.raises(BuildError) as info:
        parse_platforms(spec)
    assert words in info.value.message
    assert info.value.hint


def test_runs_natively() -> None:
    assert runs_natively(AMD64, AMD64)
    assert runs_natively(Platform.parse("linux/386"), AMD64)
    assert not runs_natively(ARM64, AMD64)
    assert not runs_natively(AMD64, ARM64)
    assert runs_natively(Platform.parse("linux/amd64/v2"), AMD64)


def test_find_emulator_matches_elf_magic(tmp_path: Path) -> None:
    d = fake_binfmt(tmp_path, {"qemu-aarch64": QEMU_AARCH64, "qemu-arm": QEMU_ARM})
    emu = find_emulator(ARM64, d)
    assert emu is not None and emu.name == "qemu-aarch64" and emu.fix_binary
    arm = find_emulator(Platform.parse("linux/arm/v7"), d)
    assert arm is not None and arm.name == "qemu-arm"
    assert find_emulator(Platform.parse("linux/riscv64"), d) is None
    assert find_emulator(Platform.parse("linux/s390x"), d) is None


def test_find_emulator_ignores_disabled(tmp_path: Path) -> None:
    d = fake_binfmt(tmp_path, {"qemu-aarch64": QEMU_AARCH64.replace("enabled", "disabled")})
    assert find_emulator(ARM64, d) is None
    off = tmp_path / "off"
    off.mkdir()
    d2 = fake_binfmt(off, {"qemu-aarch64": QEMU_AARCH64}, status="disabled")
    assert find_emulator(ARM64, d2) is None


def test_find_emulator_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = fake_binfmt(tmp_path, {"qemu-aarch64": QEMU_AARCH64})
    monkeypatch.setenv("NBCONTAINER_BINFMT_DIR", str(d))
    assert find_emulator(ARM64) is not None
    monkeypatch.setenv("NBCONTAINER_BINFMT_DIR", str(tmp_path / "missing"))
    assert find_emulator(ARM64) is None


def test_check_can_run_without_emulation(tmp_path: Path) -> None:
    empty = fake_binfmt(tmp_path, {})
    check_can_run(AMD64, host=AMD64, binfmt_dir=empty)  # native: nothing to check
    with pytest.raises(BuildError) as info:
        check_can_run(ARM64, host=AMD64, binfmt_dir=empty, where="Dockerfile:3: RUN uname -m")
    msg = info.value.message
    assert msg.startswith("Dockerfile:3: RUN uname -m: cannot RUN for platform linux/arm64 "
                          "on this linux/amd64 machine")
    assert "no emulator for arm64" in msg
    assert "qemu-user-static" in info.value.hint
    assert "FROM --platform=$BUILDPLATFORM" in info.value.hint


def test_check_can_run_needs_fix_binary_flag(tmp_path: Path) -> None:
    d = fake_binfmt(tmp_path, {"qemu-aarch64": QEMU_AARCH64.replace("flags: POF", "flags: P")})
    with pytest.raises(BuildError) as info:
        check_can_run(ARM64, host=AMD64, binfmt_dir=d)
    assert "F (fix-binary) flag" in info.value.message
    ok = tmp_path / "ok"
    ok.mkdir()
    check_can_run(ARM64, host=AMD64, binfmt_dir=fake_binfmt(ok, {"qemu-aarch64": QEMU_AARCH64}))
