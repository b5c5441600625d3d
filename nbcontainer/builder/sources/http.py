"""``ADD https://…``: a file downloaded into the step's scratch dir, checked when asked."""

from __future__ import annotations

import hashlib
import os
import posixpath
import urllib.parse
import urllib.request
from email.utils import parsedate_to_datetime
from pathlib import Path

from ...errors import BuildError
from ..copyplan import Item, Source, is_archive


def download(url: str, dest: str, work: Path, *, checksum: str | None,
             unpack: bool | None) -> Source:
    """The file at ``url`` as a COPY source named as BuildKit names it (the URL's last path
    element, or ``dest``'s when ``dest`` names a file); ``Last-Modified`` is its mtime."""
    name = posixpath.basename(urllib.parse.urlparse(url).path) or "__unnamed__"
    if name in (".", "/"):
        name = "__unnamed__"
    path = work / f"dl-{len(os.listdir(work))}"
    h = hashlib.sha256()
    req = urllib.request.Request(url, headers={"User-Agent": "nbcontainer"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp, open(path, "wb") as out:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
            modified = resp.headers.get("Last-Modified")
    except OSError as exc:
        raise BuildError(f"failed to fetch {url}: {exc}") from exc
    digest = f"sha256:{h.hexdigest()}"
    if checksum and checksum != digest:
        raise BuildError(f"checksum mismatch for {url}: expected {checksum}, got {digest}",
                         hint="the file at the URL changed, or the --checksum value is wrong")
    size = path.stat().st_size
    if not dest.endswith("/"):
        name = posixpath.basename(dest)
    # URLs unpack only with --unpack=true (BuildKit 1.17); local archives by default
    archive = unpack is True and is_archive(str(path))
    return Source(name, [Item("", "file", str(path), 0o600, 0, 0, _mtime_ns(modified), size,
                              h.hexdigest())], archive=archive)


def _mtime_ns(last_modified: str | None) -> int:
    if not last_modified:
        return 0
    try:
        return int(parsedate_to_datetime(last_modified).timestamp()) * 1_000_000_000
    except (TypeError, ValueError):
        return 0
