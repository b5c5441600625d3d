"""``--host-ca`` on busybox builds, on each rung: RUN steps see the host's CAs at the usual
path and through the usual variables for the step only; nothing of them reaches a layer, the
config, the history or any file of the store, also when a RUN appends to or copies the
bundle; the step's cache key does not depend on the flag; a RUN failing with a certificate
error is told about the flag; ``run --host-ca``; ``info``. The CA is one of our own that the
host "trusts" through ``SSL_CERT_FILE``, as behind a TLS-inspecting proxy."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.builder.certs import host_trust
from nbcontainer.builder.hostca import MARK, PRIVATE
from nbcontainer.errors import BuildError
from nbcontainer.image import Image
from nbcontainer.progress import Collector
from nbcontainer.store import Store
from nbcontainer.wording import info_lines
from tests.support.builds import layer_members, statuses, write
from tests.support.hostca import TEST_CA_CN, host_bundle_with, make_ca, store_contents, traces
from tests.support.marks import needs_root_busybox
from tests.support.users import ensure_rootless_user, module_argv, user_deps, user_python

pytestmark = needs_root_busybox

BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE",
             "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS")

# Sees the CAs (counted), copies the bundle, appends to it; the next RUN copies it again.
DOCKERFILE = f"""\
FROM busybox
COPY bundle.crt {BUNDLE}
RUN (grep -c "{TEST_CA_CN}" {BUNDLE} "$SSL_CERT_FILE" || true) > /count && \\
    echo {" ".join(f"${v}" for v in VARIABLES)} > /vars && \\
    cp {BUNDLE} /copy.pem && cat {BUNDLE} > /cat.pem && echo appended >> {BUNDLE}
RUN cat {BUNDLE} > /seen.pem && echo second > /second
"""


@pytest.fixture
def host_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The host trusts a CA of ours (``SSL_CERT_FILE``); the DER bytes of every extra CA."""
    ca = tmp_path / "inspecting-ca.pem"
    der = make_ca(ca)
    monkeypatch.setenv("SSL_CERT_FILE", str(host_bundle_with(tmp_path / "host.pem", ca)))
    monkeypatch.delenv("NBCONTAINER_HOST_CA", raising=False)
    extra = [c.der for c in host_trust().extra]
    assert der in extra
    return extra


def files_of(img: Image) -> dict[str, bytes]:
    """The regular files of the image's layers after the base (last writer wins)."""
    out: dict[str, bytes] = {}
    for m, data in layer_members(img)[len(layer_members_of_base(img)):]:
        if m.isfile():
            out[m.name] = data
    return out


def layer_members_of_base(img: Image) -> list:
    base = Image.load(img.store, "busybox:latest")
    return layer_members(base)


def assert_no_trace(store: Store, extra: list[bytes], img: Image) -> None:
    for where, data in store_contents(store):
        assert not traces(data, extra), f"a host CA in {where}"
    shown = json.dumps([img.config.to_dict(), api.inspect([str(img.id)], store=store)])
    assert PRIVATE not in shown and MARK.decode() not in shown
    assert all("--host-ca" not in (h.created_by or "") for h in img.config.history)


@pytest.mark.parametrize("isolation", ["full", "reduced", "ptrace"])
def test_for_the_step_only(bstore: Store, ctx: Path, host_ca: list[bytes],
                           isolation: str) -> None:
    write(ctx, {"bundle.crt": "own bundle\n"})
    img = api.build(DOCKERFILE, ctx, tags=["ca:on"], store=bstore, host_ca=True,
                    isolation=isolation)
    files = files_of(img)
    assert files.pop("count").split() == [f"{BUNDLE}:1".encode(), f"{PRIVATE}:1".encode()]
    assert files.pop("vars").split() == [PRIVATE.encode()] * len(VARIABLES)
    # the copies and the appended bundle hold what the RUN wrote, not the host's CAs
    assert files["copy.pem"] == files["cat.pem"] == b"own bundle\n"
    assert files[BUNDLE[1:]] == files["seen.pem"] == b"own bundle\nappended\n"
    assert_no_trace(bstore, host_ca, img)
    # the same Dockerfile without the flag: the same files (cached or not)
    plain_img = api.build(DOCKERFILE, ctx, tags=["ca:off"], store=bstore,
                          isolation=isolation, no_cache=True)
    plain = files_of(plain_img)
    assert plain.pop("vars") == b"\n" and plain.pop("count") == f"{BUNDLE}:0\n".encode()
    assert plain == files
    assert [h.created_by for h in plain_img.config.history] == \
        [h.created_by for h in img.config.history]


def test_cache_key_does_not_depend_on_it(bstore: Store, ctx: Path,
                                         host_ca: list[bytes]) -> None:
    dockerfile = "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n"
    first = api.build(dockerfile, ctx, tags=["k:1"], store=bstore)
    events = Collector()
    again = api.build(dockerfile, ctx, tags=["k:2"], store=bstore, host_ca=True,
                      no_cache=False, progress=events)
    assert again.id == first.id and statuses(events) == ["cached", "cached"]
    # and the other way round, past the build memo (a new context)
    other = ctx.parent / "other"
    other.mkdir()
    on = api.build(dockerfile + "RUN echo three > /three\n", other, store=bstore,
                   host_ca=True)
    events = Collector()
    off = api.build(dockerfile + "RUN echo three > /three\n", ctx, store=bstore,
                    progress=events)
    assert off.id == on.id and statuses(events) == ["cached"] * 3


def test_default_from_the_environment(bstore: Store, ctx: Path, host_ca: list[bytes],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBCONTAINER_HOST_CA", "1")
    img = api.build(f'FROM busybox\nRUN grep -q "{TEST_CA_CN}" {BUNDLE}\n', ctx,
                    store=bstore)
    assert_no_trace(bstore, host_ca, img)
    with pytest.raises(BuildError):  # --no-host-ca wins over the default
        api.build(f'FROM busybox\nRUN grep -q "{TEST_CA_CN}" {BUNDLE} # off\n', ctx,
                  store=bstore, host_ca=False)
    info = api.info(store=bstore).to_dict()
    found = info["host"]["ca"]
    assert found["host_ca_default"] is True
    assert TEST_CA_CN in [e["subject"].removeprefix("CN=") for e in found["extra"]]
    text = "\n".join(info_lines(info))  # `nbcontainer info`, %nbcontainer_info
    assert "--host-ca by default: on" in text and f"  CN={TEST_CA_CN}" in text


CERT_ERROR = ("echo 'curl: (60) SSL certificate problem: unable to get local issuer "
              "certificate' >&2; exit 60")


def test_the_hint(bstore: Store, ctx: Path, host_ca: list[bytes]) -> None:
    with pytest.raises(BuildError) as exc:
        api.build(f"FROM busybox\nRUN {CERT_ERROR}\n", ctx, store=bstore)
    assert "this host trusts" in exc.value.message and "certificate verification" in \
        exc.value.message
    assert TEST_CA_CN in exc.value.message or "more" in exc.value.message
    assert "--host-ca" in (exc.value.hint or "")
    # not for other failures, nor with the flag on
    for dockerfile, flag in (("FROM busybox\nRUN echo other >&2; exit 3\n", False),
                             (f"FROM busybox\nRUN {CERT_ERROR}\n", True)):
        with pytest.raises(BuildError) as exc:
            api.build(dockerfile, ctx, store=bstore, host_ca=flag)
        assert "this host trusts" not in exc.value.message
        assert "--host-ca" not in (exc.value.hint or "")


def test_no_hint_when_the_image_trusts_the_same(bstore: Store, ctx: Path,
                                                host_ca: list[bytes]) -> None:
    write(ctx, {"bundle.crt": Path(os.environ["SSL_CERT_FILE"]).read_bytes()})
    with pytest.raises(BuildError) as exc:
        api.build(f"FROM busybox\nCOPY bundle.crt {BUNDLE}\nRUN {CERT_ERROR}\n", ctx,
                  store=bstore)
    assert "this host trusts" not in exc.value.message


def test_a_copy_without_the_marker_is_refused(bstore: Store, ctx: Path,
                                              host_ca: list[bytes]) -> None:
    with pytest.raises(BuildError, match="must not reach the image") as exc:
        api.build(f"FROM busybox\nRUN grep -v '^#' {BUNDLE} > /stripped.pem\n", ctx,
                  store=bstore, host_ca=True)
    assert "without --host-ca" in (exc.value.hint or "")


def test_the_image_bundle_and_its_variable(bstore: Store, ctx: Path,
                                           host_ca: list[bytes]) -> None:
    """An image whose ENV names its own bundle: that file is presented with the host's CAs,
    the variable keeps its value; the image's bundle stays as it was."""
    write(ctx, {"own.pem": "own bundle\n"})
    img = api.build(
        "FROM busybox\nCOPY own.pem /opt/own.pem\nENV SSL_CERT_FILE=/opt/own.pem\n"
        f'RUN [ "$SSL_CERT_FILE" = /opt/own.pem ] && grep -q "{TEST_CA_CN}" /opt/own.pem '
        f'&& grep -q "{TEST_CA_CN}" {BUNDLE} && grep -q "{TEST_CA_CN}" "$PIP_CERT" && touch /ok\n',
        ctx, store=bstore, host_ca=True)
    files = files_of(img)
    assert files["opt/own.pem"] == b"own bundle\n" and "ok" in files
    assert BUNDLE[1:] not in files
    assert_no_trace(bstore, host_ca, img)


def test_run_with_host_ca(bstore: Store, host_ca: list[bytes]) -> None:
    seen: list[bytes] = []
    script = f'grep -c "{TEST_CA_CN}" {BUNDLE} "$SSL_CERT_FILE"'
    code = api.run("busybox:latest", ["sh", "-c", script], store=bstore, host_ca=True,
                   output=seen.append)
    assert code == 0 and b"".join(seen).split() == [f"{BUNDLE}:1".encode(),
                                                    f"{PRIVATE}:1".encode()]
    seen.clear()
    assert api.run("busybox:latest", ["sh", "-c", script], store=bstore,
                   output=seen.append) != 0


def test_rootless(busybox_rootfs: Path, host_ca: list[bytes]) -> None:
    """As an unprivileged user (a user namespace over its subordinate ids): the stub's files
    are the user's to write, the copies its to clean."""
    user = ensure_rootless_user()
    python = user_python(deps := user_deps())
    base = Path(tempfile.mkdtemp(prefix="nbbuild-hostca-"))
    try:
        os.chmod(base, 0o755)
        (base / "ctx").mkdir()
        (base / "host.pem").write_bytes(Path(os.environ["SSL_CERT_FILE"]).read_bytes())
        api.import_image(busybox_rootfs, "busybox:latest", store=Store(base / "store"))
        subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(base)], check=True)
        dockerfile = (f'FROM busybox\nRUN grep -q "{TEST_CA_CN}" {BUNDLE} && '
                      f"cp {BUNDLE} /copy.pem && echo x >> {BUNDLE}\n"
                      'CMD ["cat", "/copy.pem", "' + BUNDLE + '"]\n')
        req = {"store": str(base / "store"), "context": str(base / "ctx"),
               "dockerfile": dockerfile, "host_ca": True}
        argv = module_argv(python, "tests.builder.rootless_build", paths=(deps,),
                           env=(f"HOME={base}", f"SSL_CERT_FILE={base / 'host.pem'}"))
        proc = subprocess.run(argv, input=json.dumps(req).encode(), capture_output=True,
                              timeout=300, cwd="/")
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        answer = json.loads(proc.stdout)
        assert answer["same"] and answer["code"] == 0 and answer["output"] == "x\n"
        for digest in answer["layers"]:
            data = (Path(answer["blobs"]) / digest.split(":")[1]).read_bytes()
            assert not traces(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data,
                              host_ca)
    finally:
        subprocess.run(["runuser", "-u", "nbtest", "--", "rm", "-rf", str(base)],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
