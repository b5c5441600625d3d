"""``--host-ca`` on this machine, which is behind a TLS-inspecting proxy (its bundle and
``SSL_CERT_FILE`` carry a CA images do not trust), with the debootstrap Debian: ``curl``,
``pip download`` and apt over https fail without the flag, with the hint, and work with it;
an image that installs ``ca-certificates`` under the flag has the same bundle as without;
no blob and no file of the store holds the host's extra CAs; a CONNECT proxy on 127.0.0.1
named by ``HTTPS_PROXY`` carries a RUN's traffic, and the image does not record it.

Network-dependent (Debian's mirror over http, PyPI over https)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbcontainer import api
from nbcontainer.builder import proxies
from nbcontainer.builder.certs import host_trust
from nbcontainer.builder.hostca import MARK, PRIVATE
from nbcontainer.errors import BuildError
from nbcontainer.image import Image
from nbcontainer.store import Store
from tests.support.connect_proxy import connect_proxy
from tests.support.hostca import store_contents, traces
from tests.support.marks import needs_services
from tests.support.scratch import fixture_dir

pytestmark = needs_services

BUNDLE = "etc/ssl/certs/ca-certificates.crt"
APT = "apt-get -o Acquire::Retries=3"
CURL = "curl -sSf --retry 2 https://pypi.org/simple/six/ -o /dev/null"
PIP = "pip download --no-deps --no-cache-dir --retries 0 --timeout 60 -d /wheels six"
HINT = "this host trusts"


@pytest.fixture(scope="module")
def extra() -> list[bytes]:
    """The host's extra CAs (the inspecting proxy's): the premise of this module."""
    found = [c.der for c in host_trust().extra]
    assert found, "this machine trusts no CA beyond the public set: no TLS inspection here"
    return found


@pytest.fixture(scope="module")
def dstore(request: pytest.FixtureRequest) -> Store:
    return Store(fixture_dir(request, "hostca-debian") / "store")


@pytest.fixture(scope="module")
def dctx(request: pytest.FixtureRequest) -> Path:
    return fixture_dir(request, "hostca-ctx")


@pytest.fixture(scope="module", autouse=True)
def no_ambient_proxy() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in proxies.NAMES:
            mp.delenv(name, raising=False)
            mp.delenv(name.lower(), raising=False)
        mp.delenv("NBCONTAINER_HOST_CA", raising=False)
        yield


def build(dockerfile: str, ctx: Path, store: Store, **kw: Any) -> Image:
    img = api.build(dockerfile, ctx, store=store, **kw)
    assert isinstance(img, Image)
    return img


@pytest.fixture(scope="module")
def with_certs(debian_ref: str, dstore: Store, dctx: Path) -> dict[str, Image]:
    """Debian with ca-certificates installed (over http), with --host-ca and without."""
    dockerfile = (f"FROM {debian_ref}\nRUN {APT} update && "
                  f"{APT} install -y --no-install-recommends ca-certificates\n")
    off = build(dockerfile, dctx, dstore, tags=["certs:off"])
    on = build(dockerfile, dctx, dstore, tags=["certs:on"], host_ca=True, no_cache=True,
               provenance="mode=max")
    return {"off": off, "on": on}


@pytest.fixture(scope="module")
def tools(with_certs: dict[str, Image], dstore: Store, dctx: Path) -> str:
    build(f"FROM certs:off\nRUN {APT} install -y --no-install-recommends curl python3-pip\n",
          dctx, dstore, tags=["tools:1"])
    return "tools:1"


def layer_files(img: Image, index: int = -1) -> dict[str, tuple[int, bytes]]:
    """name → (mode, data) of the files and symlinks of one layer of ``img``."""
    import gzip
    import io
    import tarfile

    raw = img.store.blobs.path(img.manifest.layers[index].digest).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        for m in tf.getmembers():
            data = tf.extractfile(m).read() if m.isfile() else m.linkname.encode()  # type: ignore[union-attr]
            out[m.name] = (m.mode, data)
    return out


def assert_clean(store: Store, extra: list[bytes], *imgs: Image) -> None:
    for where, data in store_contents(store, files=False):
        assert not traces(data, extra), f"a host CA in {where}"
    for img in imgs:
        shown = json.dumps(api.inspect([str(img.id)], store=store))
        assert PRIVATE not in shown and MARK.decode() not in shown


def test_ca_certificates_gives_the_images_own_bundle(with_certs: dict[str, Image],
                                                     dstore: Store,
                                                     extra: list[bytes]) -> None:
    on, off = layer_files(with_certs["on"]), layer_files(with_certs["off"])
    assert on[BUNDLE] == off[BUNDLE] and len(off[BUNDLE][1]) > 100_000
    assert not traces(on[BUNDLE][1], extra)
    # (the same tree; without the flag /etc/ssl is new in the layer, which overlayfs may
    # mark opaque: nothing below it to hide either way)
    certs = sorted(n for n in off if n.startswith("etc/ssl/") and ".wh..wh..opq" not in n)
    assert sorted(n for n in on if n.startswith("etc/ssl/") and ".wh..wh..opq" not in n) == \
        certs
    assert {n: on[n] for n in certs} == {n: off[n] for n in certs}
    assert "etc/apt/apt.conf.d/00nbcontainer-host-ca" not in on
    assert_clean(dstore, extra, with_certs["on"])


@pytest.mark.parametrize("command", [CURL, PIP], ids=["curl", "pip"])
def test_fails_with_the_hint_and_works_with_the_flag(tools: str, dstore: Store, dctx: Path,
                                                     extra: list[bytes], command: str) -> None:
    dockerfile = f"FROM {tools}\nRUN {command}\n"
    with pytest.raises(BuildError) as exc:
        build(dockerfile, dctx, dstore)
    assert HINT in exc.value.message and "--host-ca" in (exc.value.hint or "")
    img = build(dockerfile, dctx, dstore, host_ca=True, provenance=True)
    if command == PIP:
        assert any(n.startswith("wheels/six-") for n in layer_files(img))
    assert_clean(dstore, extra, img)


def test_apt_over_https(with_certs: dict[str, Image], dstore: Store, dctx: Path,
                        extra: list[bytes]) -> None:
    dockerfile = ("FROM certs:off\nRUN sed -i s,http://deb,https://deb, /etc/apt/sources.list"
                  f" && {APT} update > /tmp/apt.log 2>&1; cat /tmp/apt.log;"
                  " ! grep -q '^[WE]:' /tmp/apt.log && rm -rf /tmp/apt.log /var/lib/apt/lists\n")
    with pytest.raises(BuildError) as exc:
        build(dockerfile, dctx, dstore)
    assert HINT in exc.value.message
    img = build(dockerfile, dctx, dstore, host_ca=True)
    assert_clean(dstore, extra, img)


def test_connect_proxy_sees_the_traffic(tools: str, dstore: Store, dctx: Path,
                                        extra: list[bytes], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """RUN reaches the proxy on the host's loopback: the host network (with the sandbox's
    own network, ``RUN --network=host`` and the ``network.host`` entitlement)."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no proxies of a config.json
    kw: dict[str, Any] = {}
    if "allow" in inspect.signature(api.build).parameters:
        kw["allow"] = ["network.host"]
    with connect_proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        img = build(f"FROM {tools}\nRUN --network=host {CURL} && touch /done\n", dctx,
                    dstore, host_ca=True, provenance="mode=max", **kw)
    assert "CONNECT pypi.org:443 HTTP/1.1" in proxy.seen
    needle = f"127.0.0.1:{proxy.port}"
    assert needle not in json.dumps([img.config.to_dict(), api.inspect([str(img.id)],
                                                                       store=dstore)])
    for where, data in store_contents(dstore, files=False):
        assert needle.encode() not in data, f"the proxy in {where}"
    assert "done" in layer_files(img)
