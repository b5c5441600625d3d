"""The CA certificates this host trusts, and which of them are its own additions.

What the host trusts is what a program started in the notebook's kernel trusts: the system
bundle (the first of the distributions' usual paths that exists) and the files the usual
variables name (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``PIP_CERT``, …), which is where a
site with a TLS-inspecting proxy puts its CA. Its *extra* CAs are those beyond the public set
its distribution ships (Mozilla's, as ``/usr/share/ca-certificates`` or p11-kit's source
holds it, or certifi's copy); where no public set is found, those of the local anchor
directories (``/usr/local/share/ca-certificates`` …).

Certificates are compared by their DER bytes; the subject is read with a few lines of DER
(no third-party parser), only to name a CA to a person.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Where distributions keep the bundle OpenSSL, GnuTLS, curl and Go read (Go's list).
BUNDLE_PATHS = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL, CentOS
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL 7 and later
    "/etc/ssl/cert.pem",  # Alpine, Void
)
# The variables through which programs are told which bundle to trust.
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE",
                "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS")
PUBLIC_SETS = ("/usr/share/ca-certificates", "/usr/share/pki/ca-trust-source")
LOCAL_ANCHORS = ("/usr/local/share/ca-certificates", "/etc/pki/ca-trust/source/anchors",
                 "/etc/ca-certificates/trust-source/anchors")
MAX_FILE = 16 * 1024 * 1024  # a "bundle" larger than this is not read
HOST_CA_ENV = "NBCONTAINER_HOST_CA"  # the default of --host-ca

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----")
_NAMES = {"2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C", "2.5.4.8": "ST",
          "2.5.4.7": "L", "2.5.4.5": "serialNumber", "1.2.840.113549.1.9.1": "emailAddress"}
_STRINGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be",
            0x1C: "utf-32-be"}


@dataclass(frozen=True)
class Cert:
    """One CA certificate (its DER bytes); ``subject`` names it for a person."""

    der: bytes

    @property
    def subject(self) -> str:
        return subject_of(self.der)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    def pem(self) -> bytes:
        import ssl  # (not at import: the driver reads host_ca_default at every build)

        return ssl.DER_cert_to_PEM_cert(self.der).encode()


def parse_pem(data: bytes) -> list[Cert]:
    """The certificates of a PEM bundle, in order, each once (text around them ignored)."""
    seen: set[bytes] = set()
    out: list[Cert] = []
    for m in _PEM.finditer(data):
        try:
            der = base64.b64decode(b"".join(m.group(1).split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        if der and der not in seen:
            seen.add(der)
            out.append(Cert(der))
    return out


def read_pem_file(path: str | os.PathLike[str]) -> list[Cert]:
    """``parse_pem`` of a file; nothing when it is missing, unreadable or huge."""
    try:
        if os.stat(path).st_size > MAX_FILE:
            return []
        with open(path, "rb") as f:
            return parse_pem(f.read())
    except (OSError, ValueError):
        return []


def host_ca_default(environ: Mapping[str, str] | None = None) -> bool:
    """``$NBCONTAINER_HOST_CA`` (1/true/yes/on): whether RUN steps get ``--host-ca`` when
    the flag is not given."""
    value = (os.environ if environ is None else environ).get(HOST_CA_ENV, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


# ------------------------------------------------------------------ the subject, from DER


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        item = _tlv(data, start)
        out.append(item)
        start = item[2]
    return out


def _oid(raw: bytes) -> str:
    parts = [raw[0] // 40, raw[0] % 40]
    value = 0
    for byte in raw[1:]:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def subject_of(der: bytes) -> str:
    """``O=Example, CN=Example Root CA`` (the name's attributes in certificate order); the
    SHA-256 fingerprint when the certificate cannot be read."""
    try:
        _, start, end = _tlv(der, 0)  # Certificate
        _, start, end = _tlv(der, start)  # TBSCertificate
        fields = _children(der, start, end)
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        _, start, end = fields[4]  # serial, signature, issuer, validity, subject
        parts = []
        for _, set_start, set_end in _children(der, start, end):
            for _, seq_start, seq_end in _children(der, set_start, set_end):
                (_, o_start, o_end), (vtag, v_start, v_end) = _children(der, seq_start, seq_end)[:2]
                oid = _oid(der[o_start:o_end])
                value = der[v_start:v_end].decode(_STRINGS.get(vtag, "latin-1"), "replace")
                parts.append(f"{_NAMES.get(oid, oid)}={value}")
        return ", ".join(parts) or hashlib.sha256(der).hexdigest()
    except (IndexError, ValueError):
        return "sha256:" + hashlib.sha256(der).hexdigest()


# ------------------------------------------------------------------ what the host trusts


@dataclass(frozen=True)
class HostTrust:
    """Every CA the host trusts (``certs``), the files they were read from, and the ``extra``
    ones: beyond the public set (``public_set`` says whether one was found to compare with)."""

    certs: tuple[Cert, ...]
    sources: tuple[str, ...]
    extra: tuple[Cert, ...]
    public_set: bool

    def missing_from(self, trusted: Iterable[Cert]) -> list[Cert]:
        """The host's CAs that ``trusted`` lacks."""
        have = {c.der for c in trusted}
        return [c for c in self.certs if c.der not in have]


def _pem_files(root: str) -> Iterable[str]:
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            if name.endswith((".crt", ".pem", ".p11-kit")):
                yield os.path.join(dirpath, name)


def _certifi_bundles() -> list[str]:
    """certifi's copy of Mozilla's set, standalone or as pip vendors it (no import runs)."""
    out = []
    for module, rel in (("certifi", "cacert.pem"), ("pip", "_vendor/certifi/cacert.pem")):
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin:
            path = Path(spec.origin).parent / rel
            if path.is_file():
                out.append(str(path))
    return out


def _files_of(environ: Mapping[str, str]) -> list[str]:
    """The host bundle and the files the CA variables name, each once, existing ones only."""
    files: list[str] = []
    import ssl

    system = next((p for p in BUNDLE_PATHS if os.path.isfile(p)), None)
    default = ssl.get_default_verify_paths().cafile
    for path in (system, default, *(environ.get(v) for v in CA_VARIABLES)):
        if path and os.path.isfile(path) and os.path.realpath(path) not in \
                {os.path.realpath(f) for f in files}:
            files.append(path)
    return files


def _stamp(paths: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((p, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((p, 0, -1))
    return tuple(out)


def host_trust(environ: Mapping[str, str] | None = None) -> HostTrust:
    """What this host trusts now (read again only when one of its files changed)."""
    env = os.environ if environ is None else environ
    files = _files_of(env)
    return _host_trust(_stamp(files), _stamp(PUBLIC_SETS + LOCAL_ANCHORS))


@lru_cache(maxsize=4)
def _host_trust(files: tuple[tuple[str, int, int], ...],
                _dirs: tuple[tuple[str, int, int], ...]) -> HostTrust:
    certs: dict[bytes, Cert] = {}
    for path, _, _ in files:
        for cert in read_pem_file(path):
            certs.setdefault(cert.der, cert)
    public: set[bytes] = set()
    for root in PUBLIC_SETS:
        for path in _pem_files(root):
            public.update(c.der for c in read_pem_file(path))
    for path in _certifi_bundles():
        public.update(c.der for c in read_pem_file(path))
    if public:
        extra = [c for c in certs.values() if c.der not in public]
    else:
        local = {c.der for root in LOCAL_ANCHORS for p in _pem_files(root)
                 for c in read_pem_file(p)}
        extra = [c for c in certs.values() if c.der in local]
    return HostTrust(tuple(certs.values()), tuple(p for p, _, _ in files), tuple(extra),
                     bool(public))


def trust_report(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """For ``info``: whether ``--host-ca`` is on by default, where the host's CAs were read,
    and the subjects of its extra ones (what ``--host-ca`` adds to an image's bundle)."""
    trust = host_trust(environ)
    return {"host_ca_default": host_ca_default(environ), "sources": list(trust.sources),
            "trusted": len(trust.certs), "public_set": trust.public_set,
            "extra": [{"subject": c.subject, "sha256": c.fingerprint} for c in trust.extra]}
