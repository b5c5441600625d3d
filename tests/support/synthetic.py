"""Synthetic layers for the analysis and view tests: entries made by hand (content hashes
included), layers with a Dockerfile line in their history, and a stack with every kind of
waste the junk rules know."""

from __future__ import annotations

import hashlib

from nbcontainer.analysis import LayerEntry, LayerRef
from nbcontainer.builder.history import source_comment
from nbcontainer.oci.digest import Digest


def f(path: str, size: int = 0, content: bytes | None = None, mode: int = 0o644) -> LayerEntry:
    """A regular file; its content hash is that of ``content`` (default: unique per path)."""
    data = content if content is not None else path.encode()
    return LayerEntry(path, "f", size, mode, 0, 0, 0, "", hashlib.sha256(data).digest()[:16])


def d(path: str) -> LayerEntry:
    return LayerEntry(path, "d", 0, 0o755, 0, 0, 0)


def layer(entries, cmd: str = "RUN x", line: int | None = None):
    comment = source_comment("Dockerfile", line, line) if line else ""
    return (LayerRef(Digest.of(cmd.encode()), Digest.of(b"diff " + cmd.encode()), 100, cmd,
                     comment), entries)


def junk_stack():
    base = layer([d("var"), d("var/lib"), f("var/lib/apt/lists/Packages", 50_000),
                  f("usr/bin/python", 7_000), f("etc/conf", 100)], "FROM debian")
    install = layer([f("var/cache/apt/pkgcache.bin", 39_000), f("var/lib/apt/lists/Tr", 30_000),
                     f("usr/lib/libpy.so", 20_000), f("etc/conf", 120, b"new")], "RUN apt-get install",
                    line=2)
    pip = layer([f("root/.cache/pip/http/a", 5_000), f("usr/lib/site/x.py", 1_000),
                 f("srv/data.bin", 8_000, b"same")], "RUN pip install", line=3)
    copy = layer([f("opt/data.bin", 8_000, b"same"), f("usr/lib/.wh.site")], "COPY data",
                 line=4)
    return [base, install, pip, copy]
