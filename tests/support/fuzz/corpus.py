"""Seed corpora for the fuzz targets, from real sources: BuildKit's vendored conformance
Dockerfiles and shell words, images built the way the store and registry tests build (and
push) them, their layers in all three compressions, ``docker save`` and OCI archives written by
nbcontainer, and the headers and bodies real registries (distribution, Docker Hub, GHCR)
send."""

from __future__ import annotations

import base64
import functools
import io
import json
import tarfile
import tempfile
from pathlib import Path

from nbcontainer.oci import (
    ContainerConfig,
    Descriptor,
    Healthcheck,
    History,
    ImageConfig,
    Index,
    Manifest,
    Platform,
)
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.descriptor import EMPTY_DESCRIPTOR
from nbcontainer.oci.digest import Digest
from nbcontainer.store import Store
from tests.support.images import compress, make_image, tar_bytes
from tests.support.layers import TarBuilder

_ROOT = Path(__file__).resolve().parents[3]
BUILDKIT = _ROOT / "tests" / "conformance" / "buildkit" / "frontend" / "dockerfile"


def dockerfiles() -> list[bytes]:
    """BuildKit's parser corpus (positive and negative cases) and a few of our own."""
    out = []
    for sub in ("testfiles", "testfiles-negative"):
        folder = BUILDKIT / "parser" / sub
        if not folder.is_dir():  # a hard error: the fuzz stage must fuzz something real
            raise RuntimeError(f"BuildKit conformance data missing at {folder}")
        out += [(d / "Dockerfile").read_bytes() for d in sorted(folder.iterdir())
                if (d / "Dockerfile").is_file()]
    out.append((BUILDKIT / "parser" / "testfile-line" / "Dockerfile").read_bytes())
    out += [
        b"ARG V=1\nFROM alpine:$V AS b\nRUN --mount=type=cache,target=/c <<EOF\nls\nEOF\n"
        b"FROM scratch\nCOPY --from=b --chmod=644 /a /b\nONBUILD COPY <<X /x\nhi\nX\n",
        b"# escape=`\nFROM a\nRUN a `\n  b\nHEALTHCHECK --interval=5s CMD [\"x\"]\nEXPOSE 80/tcp\n",
        b"# syntax=docker/dockerfile:1\n# check=error=true\nFROM --platform=$BUILDPLATFORM "
        b"busybox AS base\nARG TARGETARCH\nWORKDIR /src\nCOPY --link --chown=1:1 . .\n"
        b"RUN --mount=type=secret,id=tok,required=true --mount=type=ssh --network=none make\n"
        b"ADD --checksum=sha256:" + b"a" * 64 + b" https://example.com/x.tgz /x\n"
        b"ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.12:docs /docs\n"
        b"FROM base\nENV A=1 B=\"two words\" C=${A:-x}\nLABEL a=b \"c d\"=e\nUSER 1000:1000\n"
        b"VOLUME [\"/data\"]\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/sh\", \"-c\"]\n"
        b"HEALTHCHECK --interval=30s --timeout=3s --start-period=1s --retries=3 CMD true\n"
        b"ENTRYPOINT [\"/bin/app\"]\nCMD --help\nEXPOSE 8080/udp 9000-9010\n",
        b"FROM busybox\nONBUILD RUN echo test\nONBUILD ADD . /app\nMAINTAINER someone\n",
    ]
    return out


def shell_words() -> list[bytes]:
    """The words of BuildKit's shell tests (``envVarTest``, ``wordsTest``)."""
    out = []
    for name in ("envVarTest", "wordsTest"):
        for line in (BUILDKIT / "shell" / name).read_bytes().splitlines():
            if line.startswith((b"#", b"ENV ")) or b"|" not in line:
                continue
            parts = line.split(b"|")
            out.append(parts[1].strip() if name == "envVarTest" else parts[0].strip())
    return out


IGNORE_FILES = [
    b"# comment\n**/*.pyc\n!keep.pyc\nnode_modules\n.git\n/build/\n*.md\n!README.md\n",
    b"*\n!src\n!src/**\nsrc/**/*.tmp\n\\#not-a-comment\n  spaced  \n\n",
    b"docs/**/*.md\na[b-d]e\nabc?def\n**/foo/bar\na\\\\\n../outside\n./relative\n//double\n",
    b"\xef\xbb\xbf# BOM first\r\nwin\\path\r\n!\r\n",
]

REFERENCES = [
    b"busybox", b"library/busybox:1.36", b"docker.io/library/busybox:latest",
    b"localhost:5000/a/b:1", b"127.0.0.1:5000/x/y@sha256:" + b"a" * 64,
    b"ghcr.io/owner/repo:v1.2.3-rc.1", b"[::1]:5000/name:tag",
    b"registry.example.com:443/deep/path/to/image:tag@sha256:" + b"b" * 64,
    b"sha256:" + b"c" * 64, b"a" * 64, b"UPPER/case", b"x:" + b"t" * 129,
]

PLATFORMS = [b"linux/amd64", b"linux/arm64/v8", b"linux/arm/v7", b"arm64", b"windows/amd64",
             b"linux/amd64,linux/arm64", b"linux/386", b"linux/ppc64le", b"darwin/arm64/v8.2"]

FLAGS = [
    b"0", b"1700000000", b"true", b"false", b"yes", b"off", b"mode=max", b"mode=min,version=v1",
    b"disabled=true", b"type=registry,ref=localhost:5000/cache,mode=max",
    b"type=inline", b"localhost:5000/cache:latest", b"ignore-error=true,type=registry,ref=x",
    b"u+x,g-w", b"0755", b"https://github.com/moby/buildkit.git#v0.12:docs",
    b"git@github.com:owner/repo.git?ref=main&subdir=x&keep-git-dir=true",
    b"https://index.docker.io/v1/", b"localhost:5000", b"default", b"id=/tmp",
]


def _digest(i: int) -> str:
    return f"sha256:{i:064x}"


@functools.cache
def image_documents() -> dict[str, list[bytes]]:
    """Manifests, indexes and configs: those of images built as the store and registry tests
    build and push them (``make_image``), in OCI and Docker flavours, and documents shaped
    like what public registries serve (multi-arch indexes with attestations, artifacts)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store")
        digests = [make_image(store, [{"a": b"1" * 100}, {"d": None, "d/b": b"2"}], tag="x:1"),
                   make_image(store, [], tag="x:empty", arch="arm64")]
        manifests = [store.blobs.read(d) for d in digests]
        configs = [store.blobs.read(store.read_manifest(d).config.digest)  # type: ignore[union-attr]
                   for d in digests]
    layers = tuple(Descriptor(mt.DOCKER_LAYER_GZIP, Digest.parse(_digest(i)), 1000 + i,
                              urls=("https://example.com/l",) if i == 2 else ())
                   for i in range(3))
    docker = Manifest(Descriptor(mt.DOCKER_CONFIG, Digest.parse(_digest(9)), 1500), layers,
                      media_type=mt.DOCKER_MANIFEST)
    artifact = Manifest(EMPTY_DESCRIPTOR, (Descriptor("application/vnd.in-toto+json",
                                                      Digest.parse(_digest(7)), 77),),
                        subject=Descriptor(mt.OCI_MANIFEST, Digest.parse(_digest(8)), 500),
                        artifact_type="application/vnd.in-toto+json",
                        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"})
    entries = tuple(
        Descriptor(mt.OCI_MANIFEST, Digest.parse(_digest(20 + i)), 900 + i,
                   platform=Platform.parse(p) if p else Platform("unknown", "unknown"),
                   annotations={"vnd.docker.reference.type": "attestation-manifest"} if not p
                   else {})
        for i, p in enumerate(["linux/amd64", "linux/arm64", "linux/arm/v7", ""]))
    indexes = [Index(entries).to_bytes(),
               Index(entries[:2], media_type=mt.DOCKER_MANIFEST_LIST).to_bytes(),
               json.dumps({"schemaVersion": 2, "manifests": [
                   {"mediaType": mt.OCI_MANIFEST, "digest": _digest(1), "size": 1,
                    "annotations": {"org.opencontainers.image.ref.name": "1"}}]}).encode()]
    debian = ImageConfig(
        architecture="amd64", os="linux", variant=None, created="2024-01-01T00:00:00.123456789Z",
        author="someone",
        config=ContainerConfig(
            user="1000:1000", exposed_ports=("80/tcp", "53/udp"), env=("PATH=/bin", "A="),
            entrypoint=("/bin/sh", "-c"), cmd=None, volumes=("/data",), working_dir="/srv",
            labels={"a": "b"}, stop_signal="SIGTERM", args_escaped=True,
            healthcheck=Healthcheck(("CMD-SHELL", "true"), 30_000_000_000, 3_000_000_000,
                                    0, 0, 3),
            on_build=("RUN true",), shell=("/bin/bash", "-c")),
        diff_ids=tuple(Digest.parse(_digest(i)) for i in range(3)),
        history=tuple(History(created="2024-01-01T00:00:00Z", created_by=f"RUN step {i}",
                              empty_layer=i % 2 == 1, comment="buildkit.dockerfile.v0")
                      for i in range(6)),
    ).to_bytes()
    return {
        "manifest": manifests + [docker.to_bytes(), artifact.to_bytes()],
        "index": indexes,
        "config": configs + [debian, b'{"architecture":"","os":"","rootfs":{"type":"layers",'
                             b'"diff_ids":[]},"config":{},"created":"0001-01-01T00:00:00Z"}'],
    }


def _tars() -> list[bytes]:
    plain = tar_bytes({"etc": None, "etc/hosts": b"127.0.0.1 localhost\n",
                       "bin": None, "bin/sh": b"\x7fELF" + bytes(100)})
    tricky = (TarBuilder().dir("d").file("d/f", b"x" * 700, mode=0o4755, uid=1000, gid=1000)
              .symlink("d/link", "../d/f").hardlink("d/hard", "d/f").file("d/.wh.gone", b"")
              .file("d/.wh..wh..opq", b"").file("é/ü" * 20, b"long pax name").bytes())
    gnu = TarBuilder(tarfile.GNU_FORMAT).file("n" * 150, b"gnu long name").symlink(
        "l" * 120, "t" * 120).bytes()
    ustar = TarBuilder(tarfile.USTAR_FORMAT).file("a/b", b"ustar").bytes()
    return [plain, tricky, gnu, ustar]


@functools.cache
def layers() -> list[bytes]:
    """Layers as images carry them: plain, gzip and zstd tars, with the entry kinds real
    layers hold (whiteouts, links, PAX and GNU long names, set-uid)."""
    return [compress(t, how) for t in _tars() for how in ("", "gzip", "zstd")]


@functools.cache
def archives() -> dict[str, list[bytes]]:
    """``docker save`` and OCI archives of two images, written by nbcontainer's exporters."""
    from nbcontainer.store import docker_archive, oci_layout

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store")
        a = make_image(store, [{"a": b"1" * 100}], tag="localhost:5000/fuzz/a:1")
        make_image(store, [{"b": b"2"}, {"c": None}], tag="fuzz/b:2", arch="arm64")
        items = [store.image("localhost:5000/fuzz/a:1"), store.image("fuzz/b:2")]
        docker = Path(tmp) / "docker.tar"
        docker_archive.export_archive(
            store, [(img, [_ref(t)]) for img, t in zip(items, ["localhost:5000/fuzz/a:1",
                                                                "fuzz/b:2"], strict=True)],
            docker)
        oci = Path(tmp) / "oci.tar"
        oci_layout.export_archive(store, [oci_layout.ExportItem(a, _ref("localhost:5000/fuzz/a:1"))],
                                  oci)
        return {"docker": [docker.read_bytes()], "oci": [oci.read_bytes()]}


def _ref(text: str):  # noqa: ANN202 - a Reference
    from nbcontainer.oci import Reference

    return Reference.parse(text)


# What registries send: one header value per line of the form ``Name: value``.
HEADERS = [
    b'WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    b'scope="repository:library/busybox:pull"',
    b'WWW-Authenticate: Basic realm="Registry Realm"',
    b'WWW-Authenticate: Bearer realm="https://ghcr.io/token",service="ghcr.io",'
    b'scope="repository:user/image:pull",error="insufficient_scope"',
    b"Location: /v2/a/b/blobs/uploads/0b5b6c4e-1?_state=abc%3D%3D",
    b"Location: http://127.0.0.1:5000/v2/a/b/blobs/uploads/x?_state=1",
    b'Link: </v2/_catalog?last=b&n=2>; rel="next"',
    b"Link: <https://other.example/v2/_catalog?n=2>; rel=next",
    b"Range: 0-1048575", b"Range: bytes=0-0", b"Content-Range: bytes 100-199/200",
    b"Content-Range: bytes 0-0/*", b"Docker-Content-Digest: sha256:" + b"d" * 64,
    b"Content-Length: 4194304", b"Retry-After: 120", b"Retry-After: Wed, 21 Oct 2015 07:28:00 GMT",
]

BODIES = [
    b'{"token":"eyJhbGciOiJSUzI1NiJ9.eyJ4Ijp0cnVlfQ.c2ln","expires_in":300,'
    b'"issued_at":"2024-01-01T00:00:00Z"}',
    b'{"access_token":"abc.def-ghi_jkl~mno+pqr/stu==","refresh_token":"r-1","expires_in":60}',
    b'{"tags":["1","2","latest"],"name":"a/b"}', b'{"repositories":["a/b","c"]}',
    b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}',
    b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
    b'{"details":"incorrect username or password"}', b"404 page not found\n",
    b"<html><body>502 Bad Gateway</body></html>",
    b'{"error":"invalid_grant","error_description":"bad refresh token"}',
]


STATEMENTS = [json.dumps({
    "_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1",
    "subject": [{"name": "x", "digest": {"sha256": "a" * 64}}],
    "predicate": {
        "buildDefinition": {
            "buildType": "https://nbcontainer.dev/build/v1",
            "externalParameters": {
                "configSource": {"path": "Dockerfile", "digest": {"sha256": "b" * 64}},
                "context": {"digest": {"sha256": "c" * 64}},
                "request": {"target": "final", "platform": "linux/amd64", "args": {"A": "1"}}},
            "resolvedDependencies": [{"uri": "docker.io/library/busybox",
                                      "digest": {"sha256": "d" * 64}}]},
        "runDetails": {"builder": {"id": "nbcontainer"},
                       "metadata": {"startedOn": "2024-01-01T00:00:00Z",
                                    "finishedOn": "2024-01-01T00:00:01Z",
                                    "nbcontainer": {"mode": "max"}}}},
}).encode()]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tar_members(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    """The members of a tar (for the member-level mutator)."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isfile() else None
            out.append((m, f.read() if f else b""))
    return out
