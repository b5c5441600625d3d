"""Small files are created by writer threads (``extract._Writers``): the tree, the report and
the errors must be exactly those of a sequential extraction, whatever the entries do to
paths still pending on a writer."""

from __future__ import annotations

import concurrent.futures
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from nbcontainer.errors import LayerError
from nbcontainer.layers import apply_layer, apply_layers, extract
from nbcontainer.layers.tarwriter import REGTYPE, encode_header
from tests.support.layers import TarBuilder, snapshot


class _Later:
    def __init__(self, pool: _Deferred) -> None:
        self.pool, self.done = pool, False
        self.error: BaseException | None = None

    def cancelled(self) -> bool:
        return not self.done

    def result(self) -> None:
        if not self.done:
            self.pool.run_all()
        if self.error is not None:
            raise self.error


class _Deferred:
    """Runs the writers' jobs only when a result is asked for, newest first: the widest
    disorder threads could produce, every time (a missing wait shows as a wrong tree or an
    error, not as a rare race)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.queue: list[tuple[_Later, Callable[[], None]]] = []

    def submit(self, fn: Callable[[], None]) -> _Later:
        later = _Later(self)
        self.queue.append((later, fn))
        return later

    def run_all(self) -> None:
        while self.queue:
            later, fn = self.queue.pop()
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - handed to result()
                later.error = e
            later.done = True

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        self.queue.clear()


@pytest.fixture(params=["threads", "deferred"])
def writers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "deferred":
        monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", _Deferred)
    return str(request.param)


def _tricky_layer() -> bytes:
    """Many small files (so writers are busy), and entries that touch files still pending:
    each such entry waits for every writer, so each one's target is written just before it."""
    t = TarBuilder()
    t.dir("usr/").dir("usr/lib/").symlink("lib", "usr/lib")
    for d in range(8):
        t.dir(f"usr/lib/d{d}/")
        for i in range(60):
            t.file(f"usr/lib/d{d}/f{i}", f"{d}-{i}\n".encode() * (i + 1), mode=0o600 + i % 8)
    t.file("usr/lib/d7/f1", b"the later entry wins\n")  # same path
    t.file("usr/lib/d0/new", b"old\n").file("lib/d0/new", b"through the symlink\n")
    t.file("usr/lib/d1/target", b"t\n").hardlink("usr/lib/d1/link", "usr/lib/d1/target")
    t.file("usr/lib/d2/f", b"x").dir("usr/lib/d2/f/").file("usr/lib/d2/f/inside", b"x")
    t.file("usr/lib/d3/f", b"x").symlink("usr/lib/d3/f", "f5")  # a symlink where a file was
    t.file("usr/lib/d4/f", b"x").file("usr/lib/d4/.wh.f", b"")  # its own file: kept
    t.file("big", os.urandom(3 * extract._SMALL_FILE))  # written by the reading thread
    t.file("usr/lib/d6/f0", b"after the big one\n")
    return t.bytes()


def test_threaded_extraction_equals_sequential(tmp_path: Path, writers: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    layer = tmp_path / "layer.tar"
    layer.write_bytes(_tricky_layer())
    threaded = apply_layer(tmp_path / "threaded", layer)
    assert threaded.files > 400
    monkeypatch.setattr(extract, "_SMALL_FILE", -1)  # every file by the reading thread
    sequential = apply_layer(tmp_path / "sequential", layer)
    assert snapshot(tmp_path / "threaded") == snapshot(tmp_path / "sequential")
    for field in ("entries", "files", "bytes", "whiteouts", "ownership_skipped", "warnings",
                  "diff_id"):
        assert getattr(threaded, field) == getattr(sequential, field), field
    assert (tmp_path / "threaded/usr/lib/d7/f1").read_bytes() == b"the later entry wins\n"
    assert (tmp_path / "threaded/usr/lib/d0/new").read_bytes() == b"through the symlink\n"
    assert os.path.samefile(tmp_path / "threaded/usr/lib/d1/link",
                            tmp_path / "threaded/usr/lib/d1/target")


def test_a_second_layer_replaces_files_the_first_wrote(tmp_path: Path, writers: str) -> None:
    bottom = TarBuilder().dir("a/")
    top = TarBuilder().dir("a/")
    for i in range(300):
        bottom.file(f"a/f{i}", b"old")
        top.file(f"a/f{i}", b"new")
    top.file("a/.wh.f7", b"")
    apply_layers(tmp_path / "t", [io.BytesIO(bottom.bytes()), io.BytesIO(top.bytes())])
    names = sorted(os.listdir(tmp_path / "t/a"))
    assert len(names) == 300
    assert {(tmp_path / "t/a" / n).read_bytes() for n in names} == {b"new"}


def _errors_both_ways(tmp_path: Path, layer: bytes,
                      monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The LayerError of applying ``layer`` with the writers, then by the reading thread."""
    with pytest.raises(LayerError) as threaded:
        apply_layer(tmp_path / "threaded", io.BytesIO(layer))
    monkeypatch.setattr(extract, "_SMALL_FILE", -1)
    with pytest.raises(LayerError) as sequential:
        apply_layer(tmp_path / "sequential", io.BytesIO(layer))
    return str(threaded.value), str(sequential.value)


def test_a_pending_file_used_as_a_directory_fails_as_in_a_sequential_extraction(
        tmp_path: Path, writers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = TarBuilder().file("a/f", b"x").file("a/f/g", b"y").bytes()
    threaded, sequential = _errors_both_ways(tmp_path, layer, monkeypatch)
    assert threaded == sequential


def test_a_writer_error_names_its_entry_as_a_sequential_one_would(
        tmp_path: Path, writers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    t = TarBuilder()
    for i in range(50):
        t.file(f"f{i}", b"x")
    # an xattr value larger than the kernel takes (E2BIG): not one of the skipped errors
    t.file("bad", b"x", pax_headers={"SCHILY.xattr.user.big": "v" * 70000})
    t.file("after", b"x")
    threaded, sequential = _errors_both_ways(tmp_path, t.bytes(), monkeypatch)
    assert threaded == sequential
    assert "'bad'" in threaded


def test_a_failed_apply_leaves_no_file_descriptor_open(tmp_path: Path, writers: str) -> None:
    t = TarBuilder()
    for i in range(100):
        t.file(f"d/f{i}", b"x")  # handed to the writers, still pending when ...
    t.raw(encode_header(b"../escape", REGTYPE))  # ... the reading thread refuses this one
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(LayerError):
        apply_layer(tmp_path / "t", io.BytesIO(t.bytes()))
    assert len(os.listdir("/proc/self/fd")) == before

