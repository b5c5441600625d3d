"""Files of the stub lower layer (``RunSpec.lower_files``, what ``--host-ca`` presents): seen
by the command as image files, absent from the upper dir unless the command changes them, on
overlayfs, on tree copies and under proot."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbcontainer.sandbox import (
    Executor,
    LowerFile,
    NamespaceExecutor,
    PtraceExecutor,
    RunResult,
    RunSpec,
)
from nbcontainer.sandbox.ladder import Settings
from tests.support.marks import needs_root
from tests.support.sandbox import Scratch
from tests.support.scratch import fixture_dir

pytestmark = needs_root

BUNDLE = "/etc/ssl/certs/bundle.crt"
NEW = "/etc/pki/tls/new.crt"  # the image has no /etc/pki: parents made in the stub


@pytest.fixture(scope="module")
def image(request: pytest.FixtureRequest, rootfs: Path) -> Path:
    """The busybox rootfs with an own bundle in a 0750 directory with an old mtime."""
    root = fixture_dir(request, "lower-files") / "rootfs"
    shutil.copytree(rootfs, root, symlinks=True)
    certs = root / "etc/ssl/certs"
    certs.mkdir(parents=True)
    (certs / "bundle.crt").write_bytes(b"image's own\n")
    os.chmod(certs, 0o750)
    os.utime(certs, ns=(10**18, 10**18))
    return root


@pytest.fixture(scope="module", params=["overlay", "tree copies", "ptrace"])
def box(request: pytest.FixtureRequest) -> Iterator[Executor]:
    if request.param == "overlay":
        executor: Executor = NamespaceExecutor()
    elif request.param == "tree copies":
        executor = NamespaceExecutor(settings=Settings(vfs=True, records=True))
    else:
        proot = shutil.which("proot")
        assert proot, "the ptrace rung's tests need proot (scripts/setup.sh installs it)"
        executor = PtraceExecutor(proot)
    with executor:
        yield executor


Run = Callable[[str], tuple[RunResult, Scratch, Path]]


@pytest.fixture
def run(box: Executor, image: Path, tmp_path: Path,
        scratch: Callable[[], Scratch]) -> Run:
    def go(script: str) -> tuple[RunResult, Scratch, Path]:
        s = scratch()
        lower = image
        if box.vfs:  # the tree is taken over: a private copy of the image
            lower = tmp_path / f"private-{s.base.name}"
            shutil.copytree(image, lower, symlinks=True)
        # (proot's fake root chmods a file without owner write on open: no 0444 here)
        files = [LowerFile(BUNDLE, b"image's own\nhost's extra\n", 0o644),
                 LowerFile(NEW, b"host's extra\n", 0o664)]
        spec = RunSpec([lower], s.upper, s.work, argv=["/bin/sh", "-c", script],
                       lower_files=files, private_lower=box.vfs)
        result = box.run(spec)
        assert result.ok, result.output_tail.decode()
        return result, s, result.tree or lower

    return go


def entries(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_seen_and_not_in_the_layer(run: Run, image: Path) -> None:
    result, s, tree = run(f"cat {BUNDLE} {NEW}; stat -c %a {NEW} /etc/ssl/certs")
    assert result.output_tail.decode().split("\n") == [
        "image's own", "host's extra", "host's extra", "664", "750", ""]
    assert entries(s.upper) == []
    if result.tree is not None:  # a tree copy is the next snapshot: as the image was
        assert (tree / BUNDLE[1:]).read_bytes() == b"image's own\n"
        assert not (tree / "etc/pki").exists()
        assert os.stat(tree / "etc/ssl/certs").st_mtime_ns == 10**18


def test_replaced_by_the_command(run: Run) -> None:
    result, s, tree = run(f"echo rebuilt > {BUNDLE}.new && mv {BUNDLE}.new {BUNDLE}")
    assert (s.upper / BUNDLE[1:]).read_bytes() == b"rebuilt\n"
    if result.tree is not None:
        assert (tree / BUNDLE[1:]).read_bytes() == b"rebuilt\n"
    copied = os.stat(s.upper / "etc/ssl/certs")  # the parent's copy-up: the image's metadata
    assert stat.S_IMODE(copied.st_mode) == 0o750


def test_appended_to_is_copied_up_whole(run: Run) -> None:
    """The caller's business to clean (the builder strips what it presented)."""
    _, s, _ = run(f"echo appended >> {BUNDLE}")
    assert (s.upper / BUNDLE[1:]).read_bytes() == b"image's own\nhost's extra\nappended\n"
    assert entries(s.upper) == ["etc", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/bundle.crt"]


def test_deleted_by_the_command(run: Run) -> None:
    result, s, tree = run(f"rm {BUNDLE}")
    assert result.tree is None or not (tree / BUNDLE[1:]).exists()
    wh = s.upper / BUNDLE[1:]
    marker = s.upper / "etc/ssl/certs/.wh.bundle.crt"  # tree copies write layer format
    assert wh.exists() and stat.S_ISCHR(os.lstat(wh).st_mode) or marker.exists()
