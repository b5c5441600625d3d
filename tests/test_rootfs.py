"""``nbcontainer.rootfs.cached_debian_rootfs``: debootstrap at most once a day, published by
rename, no half-made tree left behind (debootstrap itself replaced by a stand-in here; the
real one runs in tests/builder/test_build_debian.py and the notebook tests)."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest

from nbcontainer import rootfs
from nbcontainer.errors import NbcontainerError


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each call of the stand-in debootstrap, by destination."""
    calls: list[Path] = []

    def fake(dest: Path, suite: str, mirror: str) -> Path:
        calls.append(dest)
        (dest / "etc").mkdir(parents=True)
        (dest / "etc/debian_version").write_text(f"{suite}\n")
        return dest

    monkeypatch.setattr(rootfs, "make_debian_rootfs", fake)
    return calls


def test_made_once_a_day_and_reused(tmp_path: Path, made: list[Path]) -> None:
    first = rootfs.cached_debian_rootfs(tmp_path / "cache")
    assert first.name == f"debian-bookworm-{datetime.date.today():%Y%m%d}"
    assert (first / ".complete").exists() and (first / "etc/debian_version").exists()
    assert rootfs.cached_debian_rootfs(tmp_path / "cache") == first
    assert len(made) == 1 and made[0] != first  # made beside it, then renamed
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [first.name]


def test_another_process_publishing_first_wins(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    dest = cache / f"debian-trixie-{datetime.date.today():%Y%m%d}"

    def racing(tmp: Path, suite: str, mirror: str) -> Path:
        (dest / "etc").mkdir(parents=True)  # the other process renames its tree first
        (dest / ".complete").touch()
        (tmp / "etc").mkdir(parents=True)
        return tmp

    monkeypatch.setattr(rootfs, "make_debian_rootfs", racing)
    assert rootfs.cached_debian_rootfs(cache, "trixie") == dest
    assert sorted(p.name for p in cache.iterdir()) == [dest.name]


def test_a_failed_debootstrap_is_an_error_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(dest: Path, suite: str, mirror: str) -> Path:
        (dest / "var").mkdir(parents=True)
        raise subprocess.CalledProcessError(1, ["debootstrap"])

    monkeypatch.setattr(rootfs, "make_debian_rootfs", failing)
    with pytest.raises(NbcontainerError) as err:
        rootfs.cached_debian_rootfs(tmp_path / "cache", mirror="http://mirror.invalid/debian")
    assert "debootstrap bookworm from http://mirror.invalid/debian failed (exit 1)" in str(err.value)
    assert err.value.hint and "mirror" in err.value.hint
    assert isinstance(err.value.__cause__, subprocess.CalledProcessError)  # kept for --debug
    assert list((tmp_path / "cache").iterdir()) == []
