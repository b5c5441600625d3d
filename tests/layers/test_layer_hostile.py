"""Hostile layers: every case is refused with an error naming the entry, and nothing is
written outside the target directory (a sentinel next to it and the directory around it
stay exactly as they were)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from nbcontainer.errors import LayerError, UnsafeLayerError
from nbcontainer.layers import apply_layer, apply_layers
from nbcontainer.layers.tarwriter import REGTYPE, SYMTYPE, encode_header
from tests.support.layers import TarBuilder, outside_state


def T() -> TarBuilder:
    return TarBuilder()


def pax_entry(
    name: bytes, *, data: bytes = b"", typeflag: bytes = REGTYPE, link: bytes = b""
) -> bytes:
    """Our own encoder: it writes any bytes into PAX records (tarfile would refuse)."""
    header = encode_header(name, typeflag, size=len(data), linkname=link)
    return header + data + bytes(-len(data) % 512)


def gnu_longname(name: str, data: bytes = b"x") -> bytes:
    tb = TarBuilder(tarfile.GNU_FORMAT)
    return tb.file(name, data).bytes()


def truncated(blob: bytes, keep: int) -> bytes:
    return blob[:keep]


def flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0x55]) + blob[at + 1 :]


def patch(blob: bytes, block: int, offset: int, value: bytes) -> bytes:
    """Overwrite a field of the header in ``block`` and fix its checksum."""
    start = block * 512
    header = bytearray(blob[start : start + 512])
    header[offset : offset + len(value)] = value
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header)
    return blob[:start] + bytes(header) + blob[start + 512 :]


BIG = os.urandom(512 * 1024)
TEXT = b"".join(b"line %d of a log that compresses well\n" % i for i in range(30000))
GOOD = (
    T()
    .dir("d")
    .file("d/first", b"fine")
    .file("d/text", TEXT)
    .file("d/big", BIG)
    .file("d/last", b"end")
    .bytes()
)
# Where corruption is noticed depends on read-ahead (a trailer check may fire while the
# tar reader is still in an earlier entry); the error must name one of them.
SOMEWHERE = ("'d/text'", "'d/big'", "'d/last'")
GOOD_GZ = gzip.compress(GOOD, mtime=0)
GOOD_ZST = zstandard.ZstdCompressor(write_checksum=True).compress(GOOD)


@dataclass
class Case:
    layers: list[bytes]
    entry: str | tuple[str, ...]  # (one of them) must appear in the error message
    error: type[Exception] = UnsafeLayerError


CASES: dict[str, Callable[[], Case]] = {
    # path traversal in names
    "dotdot": lambda: Case([T().file("../evil").bytes()], "../evil"),
    "dotdot-nested": lambda: Case([T().dir("a").file("a/../../evil").bytes()], "a/../../evil"),
    "dotdot-dir": lambda: Case([T().dir("../evil-dir").bytes()], "../evil-dir"),
    "dot-slash-dotdot": lambda: Case(
        [T().file("./../outside/sentinel").bytes()], "./../outside/sentinel"
    ),
    "dotdot-only": lambda: Case([T().dir("..").bytes()], ".."),
    "absolute": lambda: Case([T().file("/evil").bytes()], "/evil"),
    "absolute-deep": lambda: Case([T().file("/tmp/evil").bytes()], "/tmp/evil"),
    "gnu-longname-dotdot": lambda: Case([gnu_longname("../" + "x" * 150)], "../xxx"),
    "pax-path-dotdot": lambda: Case(
        [T().raw(pax_entry(b"../" + b"p" * 120, data=b"evil")).bytes()], "../ppp"
    ),
    # symlinks on the way out
    "symlink-parent": lambda: Case([T().symlink("l", "..").file("l/evil").bytes()], "l/evil"),
    "symlink-deep-parent": lambda: Case(
        [T().symlink("l", "../../../../../../../../tmp").file("l/evil").bytes()], "l/evil"
    ),
    "symlink-chain": lambda: Case(
        [T().symlink("a", "b").symlink("b", "../outside").file("a/sentinel", b"pwned").bytes()],
        "a/sentinel",
    ),
    "symlink-absolute-dotdot": lambda: Case(
        [T().symlink("l", "/..").file("l/evil").bytes()], "l/evil"
    ),
    "symlink-nested-escape": lambda: Case(
        [T().dir("d").symlink("d/up", "../..").file("d/up/evil").bytes()], "d/up/evil"
    ),
    "symlink-then-dir-entry": lambda: Case(
        [T().symlink("l", "../outside").dir("l/newdir").bytes()], "l/newdir"
    ),
    "symlink-earlier-layer": lambda: Case(
        [T().symlink("l", "../outside").bytes(), T().file("l/sentinel", b"pwned").bytes()],
        "l/sentinel",
    ),
    "symlink-earlier-layer-nested": lambda: Case(
        [T().dir("d").symlink("d/l", "../../outside").bytes(), T().file("d/l/new").bytes()],
        "d/l/new",
    ),
    "symlink-earlier-layer-absolute-dotdot": lambda: Case(
        [T().symlink("etc", "/../outside").bytes(), T().file("etc/passwd").bytes()], "etc/passwd"
    ),
    "symlink-loop": lambda: Case(
        [T().symlink("a", "b").symlink("b", "a").file("a/x").bytes()], "a/x"
    ),
    # hardlinks
    "hardlink-dotdot": lambda: Case([T().hardlink("h", "../outside/sentinel").bytes()], "h"),
    "hardlink-absolute": lambda: Case([T().hardlink("h", "/etc/passwd").bytes()], "h"),
    "hardlink-through-escaping-symlink": lambda: Case(
        [T().symlink("l", "../outside").hardlink("h", "l/sentinel").bytes()], "h"
    ),
    "hardlink-through-inside-symlink": lambda: Case(
        [T().dir("d").file("d/f").symlink("l", "d").hardlink("h", "l/f").bytes()], "h"
    ),
    "hardlink-earlier-layer-symlink": lambda: Case(
        [T().symlink("l", "../outside").bytes(), T().hardlink("h", "l/sentinel").bytes()], "h"
    ),
    "hardlink-to-directory": lambda: Case([T().dir("d").hardlink("h", "d").bytes()], "h"),
    "hardlink-missing-target": lambda: Case([T().hardlink("h", "nope").bytes()], "h", LayerError),
    # whiteouts
    "whiteout-dotdot": lambda: Case([T().file(".wh..").bytes()], ".wh.."),
    "whiteout-in-parent": lambda: Case([T().file("../.wh.sentinel").bytes()], "../.wh.sentinel"),
    "whiteout-through-symlink": lambda: Case(
        [T().symlink("l", "../outside").file("l/.wh.sentinel").bytes()], "l/.wh.sentinel"
    ),
    "opaque-through-symlink": lambda: Case(
        [T().symlink("l", "../outside").file("l/.wh..wh..opq").bytes()], "l/.wh..wh..opq"
    ),
    "whiteout-earlier-layer-symlink": lambda: Case(
        [T().symlink("l", "../outside").bytes(), T().file("l/.wh.sentinel").bytes()],
        "l/.wh.sentinel",
    ),
    # NUL bytes and the root itself
    "nul-in-pax-path": lambda: Case(
        [T().raw(pax_entry(b"ok\0/../../outside/sentinel" + b"z" * 100, data=b"x")).bytes()],
        "ok\\x00/../../outside",
    ),
    "nul-in-symlink-target": lambda: Case(
        [T().raw(pax_entry(b"s" * 120, typeflag=SYMTYPE, link=b"a\0" + b"b" * 120)).bytes()],
        "sss",
    ),
    "replace-root-with-symlink": lambda: Case([T().symlink("./", "/").bytes()], "./"),
    # corrupt and truncated archives
    "truncated-tar-data": lambda: Case([truncated(GOOD, 2048 + 700)], "d/text"),
    "truncated-tar-header": lambda: Case([truncated(GOOD, 512 + 200)], "offset 512"),
    "corrupt-header-checksum": lambda: Case([flip(GOOD, 512 + 10)], "d/first"),
    "huge-size-field": lambda: Case([patch(GOOD, 1, 124, b"77777777777\0")], "d/first"),
    "bad-octal-field": lambda: Case([patch(GOOD, 1, 100, b"09x\0\0\0\0\0")], "d/first"),
    "truncated-gzip": lambda: Case([truncated(GOOD_GZ, len(GOOD_GZ) - 300)], "d/big"),
    "corrupt-gzip": lambda: Case([flip(GOOD_GZ, len(GOOD_GZ) * 6 // 10)], SOMEWHERE),
    "gzip-bad-crc": lambda: Case([GOOD_GZ[:-8] + b"\0\0\0\0" + GOOD_GZ[-4:]], SOMEWHERE),
    "gzip-trailing-garbage": lambda: Case([GOOD_GZ + b"garbage!"], SOMEWHERE),
    "truncated-zstd": lambda: Case([truncated(GOOD_ZST, len(GOOD_ZST) - 100)], "d/big"),
    "corrupt-zstd": lambda: Case([flip(GOOD_ZST, len(GOOD_ZST) * 6 // 10)], SOMEWHERE),
    "zstd-bad-checksum": lambda: Case([GOOD_ZST[:-4] + b"\0\0\0\0"], SOMEWHERE),
    "gnu-sparse": lambda: Case([patch(GOOD, 1, 156, b"S")], "d/first", LayerError),
    "file-below-a-file": lambda: Case([T().file("f").file("f/x").bytes()], "f/x", LayerError),
}


@pytest.fixture
def arena(tmp_path):
    """tmp/root is the target; tmp/outside holds a sentinel that must never change."""
    base = tmp_path / "arena"
    (base / "root").mkdir(parents=True)
    (base / "outside").mkdir()
    (base / "outside" / "sentinel").write_text("original")
    return base


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_layer_is_refused(arena, name):
    case = CASES[name]()
    before = outside_state(arena, arena / "root")
    with pytest.raises(case.error) as info:
        apply_layers(arena / "root", [io.BytesIO(layer) for layer in case.layers])
    message = str(info.value)
    wanted = case.entry if isinstance(case.entry, tuple) else (case.entry,)
    assert any(w in message for w in wanted), message
    if isinstance(info.value, UnsafeLayerError):
        assert info.value.entry, message  # the entry (or the one before a broken header)
    assert outside_state(arena, arena / "root") == before
    assert (arena / "outside" / "sentinel").read_text() == "original"


def test_suite_is_large_enough():
    assert len(CASES) >= 25


# --- contained, not refused: these resolve inside the root as a chroot would


def test_absolute_symlink_is_resolved_inside_the_root(arena):
    name = f"nbcontainer-escape-probe-{os.getpid()}"
    host_tmp = Path("/tmp", name)
    assert not host_tmp.exists()
    before = outside_state(arena, arena / "root")
    layer = (
        T()
        .symlink("escape", "/tmp")
        .symlink("abs", "/")
        .file(f"escape/{name}")
        .file("abs/also")
        .symlink("up", "../../..")
        .bytes()
    )
    apply_layer(arena / "root", io.BytesIO(layer))
    assert (arena / "root" / "tmp" / name).read_bytes() == b"data"
    assert (arena / "root" / "also").read_bytes() == b"data"
    assert os.readlink(arena / "root" / "up") == "../../.."  # stored, never followed out
    assert not host_tmp.exists()
    assert outside_state(arena, arena / "root") == before


def test_existing_symlink_is_replaced_not_written_through(arena):
    layers = [
        T().symlink("f", "../outside/sentinel").symlink("d", "../outside").bytes(),
        T().file("f", b"replaced").dir("d").bytes(),
    ]
    before = outside_state(arena, arena / "root")
    apply_layers(arena / "root", [io.BytesIO(x) for x in layers])
    assert (arena / "root" / "f").read_bytes() == b"replaced"
    assert (arena / "root" / "d").is_dir() and not (arena / "root" / "d").is_symlink()
    assert outside_state(arena, arena / "root") == before


def test_hardlinked_file_is_not_modified_through_its_other_name(arena):
    layers = [T().file("a", b"one").hardlink("b", "a").bytes(), T().file("a", b"two").bytes()]
    apply_layers(arena / "root", [io.BytesIO(x) for x in layers])
    assert (arena / "root" / "b").read_bytes() == b"one"
    assert (arena / "root" / "a").read_bytes() == b"two"


def test_symlink_inside_the_root_is_followed_for_parents(arena):
    """Merged-/usr images: lib -> usr/lib, later layers may write through it."""
    layers = [
        T().dir("usr").dir("usr/lib").symlink("lib", "usr/lib").bytes(),
        T().file("lib/libx.so", b"elf").bytes(),
    ]
    apply_layers(arena / "root", [io.BytesIO(x) for x in layers])
    assert (arena / "root" / "usr/lib/libx.so").read_bytes() == b"elf"


def test_absolute_names_accepted_when_asked(arena):
    layer = T().file("/etc/hostname", b"box").bytes()
    apply_layer(arena / "root", io.BytesIO(layer), strip_absolute=True)
    assert (arena / "root" / "etc/hostname").read_bytes() == b"box"


def test_whiteout_does_not_remove_this_layers_own_entries(arena):
    layers = [
        T().dir("d").file("d/lower").file("gone").bytes(),
        T()
        .file("d/new")
        .file("d/.wh..wh..opq")
        .file(".wh.gone")
        .file("keep")
        .file(".wh.keep")
        .bytes(),
    ]
    reports = apply_layers(arena / "root", [io.BytesIO(x) for x in layers])
    assert sorted(os.listdir(arena / "root" / "d")) == ["new"]
    assert sorted(os.listdir(arena / "root")) == ["d", "keep"]
    assert reports[1].opaque_dirs == 1


def test_unprivileged_apply_skips_devices_and_says_so_once(arena, monkeypatch):
    import nbcontainer.layers.extract as extract

    layer = io.BytesIO()
    tb = T()
    for i in range(3):
        info = tarfile.TarInfo(f"dev/null{i}")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        tb.tar.addfile(info)
    tb.file("dev/ok", b"x", uid=1234, gid=1234)
    layer.write(tb.bytes())
    layer.seek(0)
    monkeypatch.setattr(extract.os, "geteuid", lambda: 1000)
    report = apply_layer(arena / "root", layer)
    assert report.skipped_devices == ["dev/null0", "dev/null1", "dev/null2"]
    assert report.ownership_skipped >= 1
    assert len(report.warnings) == 2  # one for devices, one for ownership
    assert os.lstat(arena / "root" / "dev/ok").st_uid == 0


def test_implicit_parents_are_0755_whatever_the_umask(arena):
    old = os.umask(0o077)
    try:
        apply_layer(arena / "root", io.BytesIO(T().file("a/b/c", b"x", mode=0o644).bytes()))
    finally:
        os.umask(old)
    assert os.stat(arena / "root" / "a").st_mode & 0o7777 == 0o755
    assert os.stat(arena / "root" / "a/b/c").st_mode & 0o7777 == 0o644


def test_target_that_is_a_symlink_or_a_file(arena, tmp_path):
    (tmp_path / "via-link").symlink_to(arena / "root")
    apply_layer(tmp_path / "via-link", io.BytesIO(T().file("f").bytes()))
    assert (arena / "root" / "f").exists()
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(LayerError):
        apply_layer(tmp_path / "plain-file", io.BytesIO(T().file("f").bytes()))
