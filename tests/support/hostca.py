"""For ``--host-ca`` tests: a CA of our own that the host trusts (a stand-in for a
TLS-inspecting proxy's), and a search for traces of certificates in what a store holds."""

from __future__ import annotations

import base64
import gzip
import os
import ssl
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from nbcontainer.builder.certs import BUNDLE_PATHS
from nbcontainer.store import Store

TEST_CA_CN = "nbcontainer test inspecting CA"


def make_ca(dest: Path, cn: str = TEST_CA_CN) -> bytes:
    """A self-signed CA certificate (openssl) at ``dest`` (PEM); its DER bytes."""
    key = dest.with_suffix(".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                    "-out", str(dest), "-days", "30", "-subj", f"/CN={cn}"],
                   check=True, capture_output=True)
    return ssl.PEM_cert_to_DER_cert(dest.read_text())


def host_bundle_with(dest: Path, ca_pem: Path) -> Path:
    """The host's system bundle plus ``ca_pem``: what ``SSL_CERT_FILE`` names behind a
    proxy that inspects TLS with that CA."""
    system = next(Path(p) for p in BUNDLE_PATHS if os.path.isfile(p))
    dest.write_bytes(system.read_bytes() + b"\n" + ca_pem.read_bytes())
    return dest


def pem_lines(der: bytes) -> list[bytes]:
    """The full 64-character base64 lines of a certificate's PEM (any copy of it has them)."""
    text = base64.encodebytes(der).replace(b"\n", b"")
    return [text[i:i + 64] for i in range(64, len(text) - 128, 64)]


def traces(data: bytes, ders: Iterable[bytes]) -> list[bytes]:
    """The certificates of ``ders`` of which ``data`` holds the DER bytes or a PEM line."""
    return [d for d in ders if d in data or any(line in data for line in pem_lines(d))]


def store_contents(store: Store, *, files: bool = True) -> Iterator[tuple[str, bytes]]:
    """Every blob (layers decompressed) and (``files``) every other file under the store."""
    for digest in store.blobs:
        data = store.blobs.read(digest)
        yield str(digest), data
        if data[:2] == b"\x1f\x8b":
            yield f"{digest} (decompressed)", gzip.decompress(data)
    if not files:
        return
    for dirpath, _, names in os.walk(store.home):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path) and \
                    os.path.getsize(path) < 64 * 1024 * 1024:
                with open(path, "rb") as f:
                    yield path, f.read()
