"""What the host trusts and which CAs are its own (``certs.py``), what a RUN over an image
tree is shown (``hostca.present``), the clean-up of its upper dir (``hostca.scrub``) and the
hint (``hostca.failure``), on directories and certificates made here."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from nbcontainer.builder import certs, hostca
from nbcontainer.builder.fsview import StackView
from nbcontainer.errors import BuildError
from nbcontainer.layers.idmap import IdMap
from nbcontainer.sandbox.spec import RunResult
from tests.support.hostca import TEST_CA_CN, host_bundle_with, make_ca
from tests.support.marks import needs_root
from tests.support.scratch import fixture_dir

BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(scope="module")
def ca(request: pytest.FixtureRequest) -> tuple[Path, bytes]:
    path = fixture_dir(request, "ca") / "ca.pem"
    return path, make_ca(path)


@pytest.fixture
def trust(ca: tuple[Path, bytes], tmp_path: Path) -> certs.HostTrust:
    bundle = host_bundle_with(tmp_path / "host.pem", ca[0])
    return certs.host_trust({"SSL_CERT_FILE": str(bundle)})


def test_parse_and_subject(ca: tuple[Path, bytes]) -> None:
    path, der = ca
    broken = b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"
    text = b"junk\n" + path.read_bytes() + b"\n" + path.read_bytes() + broken
    found = certs.parse_pem(text)
    assert [c.der for c in found] == [der]  # each once, the broken one skipped
    assert found[0].subject == f"CN={TEST_CA_CN}"
    assert certs.subject_of(b"\x30\x03\x02\x01").startswith("sha256:")


def test_extra_is_beyond_the_public_set(trust: certs.HostTrust,
                                        ca: tuple[Path, bytes]) -> None:
    assert trust.public_set and ca[1] in {c.der for c in trust.extra}
    assert len(trust.certs) > 50 > len(trust.extra)  # the system's public CAs are not extra
    report = certs.trust_report({"SSL_CERT_FILE": str(trust.sources[-1]),
                                 "NBCONTAINER_HOST_CA": "yes"})
    assert report["host_ca_default"] is True
    assert f"CN={TEST_CA_CN}" in [e["subject"] for e in report["extra"]]  # type: ignore[union-attr]


def test_default() -> None:
    for value, on in (("1", True), ("on", True), ("0", False), ("", False), ("no", False)):
        assert certs.host_ca_default({"NBCONTAINER_HOST_CA": value}) is on
    assert certs.host_ca_default({}) is False


def image(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, data in files.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):  # a symlink
            path.symlink_to(data)
        else:
            path.write_bytes(data)
    return root


def test_present_the_images_bundles(tmp_path: Path, trust: certs.HostTrust,
                                    ca: tuple[Path, bytes]) -> None:
    root = image(tmp_path / "img", {"/etc/ssl/certs/real.crt": b"own\n",
                                    BUNDLE: "real.crt", "/etc/apt/apt.conf.d/x": b""})
    view = StackView([root])
    shown = hostca.present(view, hostca.image_bundles(view, {}), trust, {})
    assert shown is not None
    [file] = shown.lower_files  # the real file behind the symlink, with the block
    assert file.target == "/etc/ssl/certs/real.crt" and file.data.startswith(b"own\n")
    assert TEST_CA_CN.encode() in file.data and shown.block in file.data
    assert set(shown.env) == set(certs.CA_VARIABLES)
    targets = {m.target for m in shown.mounts}
    assert targets == {hostca.PRIVATE, hostca.APT_CONF}
    assert ca[1] in {c.der for c in shown.extra}


def test_present_without_a_bundle_and_with_its_own_variable(
        tmp_path: Path, trust: certs.HostTrust) -> None:
    root = image(tmp_path / "img", {"/opt/own.pem": b"own\n", "/etc/pki/x": b""})
    view = StackView([root])
    env = {"SSL_CERT_FILE": "/opt/own.pem"}
    shown = hostca.present(view, hostca.image_bundles(view, env), trust, env)
    assert shown is not None
    assert [f.target for f in shown.lower_files] == ["/opt/own.pem",
                                                     "/etc/pki/tls/certs/ca-bundle.crt"]
    assert "SSL_CERT_FILE" not in shown.env and shown.env["PIP_CERT"] == hostca.PRIVATE
    assert all(m.target != hostca.APT_CONF for m in shown.mounts)  # no apt here


def test_nothing_to_present_when_the_image_trusts_it_all(tmp_path: Path,
                                                         trust: certs.HostTrust) -> None:
    everything = b"".join(c.pem() for c in trust.certs)
    root = image(tmp_path / "img", {BUNDLE: everything})
    view = StackView([root])
    assert hostca.present(view, hostca.image_bundles(view, {}), trust, {}) is None


def test_scrub(tmp_path: Path, trust: certs.HostTrust) -> None:
    root = image(tmp_path / "img", {BUNDLE: b"own\n"})
    view = StackView([root])
    shown = hostca.present(view, hostca.image_bundles(view, {}), trust, {})
    assert shown is not None
    presented = shown.lower_files[0].data
    upper = image(tmp_path / "upper", {BUNDLE: presented + b"added\n",
                                       "/copy.pem": presented, "/other": b"untouched\n",
                                       "/empty": b""})
    os.utime(upper / "copy.pem", ns=(10**18, 10**18))
    assert sorted(hostca.scrub(upper, shown)) == ["copy.pem", BUNDLE[1:]]
    assert (upper / BUNDLE[1:]).read_bytes() == b"own\nadded\n"
    assert (upper / "copy.pem").read_bytes() == b"own\n"
    assert os.stat(upper / "copy.pem").st_mtime_ns == 10**18
    # a copy of one of the host's own CAs without the marker: refused
    mine = next(c for c in shown.extra if c.subject == f"CN={TEST_CA_CN}")
    (upper / "leak.pem").write_bytes(mine.pem())
    with pytest.raises(BuildError, match="must not reach the image"):
        hostca.scrub(upper, shown)


CURL = b"curl: (60) SSL certificate problem: unable to get local issuer certificate\n"


def test_the_hint(tmp_path: Path, trust: certs.HostTrust) -> None:
    root = image(tmp_path / "img", {BUNDLE: b"own\n"})
    bundles = hostca.image_bundles(StackView([root]), {})
    failed = RunResult(60, 0.1, b"...\n" + CURL, IdMap.identity())
    error = hostca.failure(["sh", "-c", "curl"], failed, bundles, trust)
    assert "this host trusts" in error.message and "--host-ca" in (error.hint or "")
    other = RunResult(1, 0.1, b"no such file\n", IdMap.identity())
    assert "this host trusts" not in hostca.failure(["x"], other, bundles, trust).message
    every = [hostca.Bundle(BUNDLE, b"".join(c.pem() for c in trust.certs), 0o644)]
    assert "this host trusts" not in hostca.failure(["x"], failed, every, trust).message


@needs_root
def test_scrub_names_what_it_cannot_read(trust: certs.HostTrust) -> None:
    """As a user who may not read a file of the upper dir (rootless, another container
    user's private file): named, not skipped in silence."""
    base = Path(tempfile.mkdtemp(prefix="nbhostca-"))
    try:
        os.chmod(base, 0o755)
        root = image(base / "img", {BUNDLE: b"own\n"})
        view = StackView([root])
        shown = hostca.present(view, hostca.image_bundles(view, {}), trust, {})
        assert shown is not None
        upper = image(base / "upper", {"/private": b"secret\n", "/open": b"open\n"})
        for p in (upper, *upper.iterdir()):
            os.chown(p, 65534, 65534)
        os.chmod(upper / "private", 0o000)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: nobody (never returns into pytest)
            try:
                os.setgid(65534)
                os.setuid(65534)
                unchecked: list[str] = []
                hostca.scrub(upper, shown, unchecked)
                os.write(write, "\n".join(unchecked).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as f:
            got = f.read().decode()
        assert os.waitpid(pid, 0)[1] == 0
        assert got == "private"
    finally:
        shutil.rmtree(base, ignore_errors=True)
