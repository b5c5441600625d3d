"""Faults injected by a proxy in front of the real registry: resets, 503, 429 with
Retry-After, stalls, corrupt bytes. Transfers complete with correct digests or fail clearly
after bounded retries; the store stays consistent and nothing half-written is tagged."""

from __future__ import annotations

import os
import time

import pytest

from nbcontainer.errors import DigestMismatch, ImageNotFound, RegistryError
from nbcontainer.registry import RetryPolicy, push
from nbcontainer.registry.pull import pull
from nbcontainer.store import fsck
from tests.support.images import store_image
from tests.support.registry import Fault, proxy_client

BIG = os.urandom(3 << 20)  # incompressible: the gzip layer stays ~3 MB


def _seed(store, reg, repo: str) -> str:
    """Push an image with a 3 MB layer straight to the registry; returns its tag ref."""
    store_image(store, "local/f:1", [{"big.bin": BIG}, {"small": b"s"}])
    push(store, "local/f:1", f"{reg.host}/{repo}:1", credential=None)
    return f"{repo}:1"


def _big(store) -> str:
    """Path pattern of the seeded image's big layer (so faults hit it, not the config)."""
    layer = max(store.image("local/f:1").manifest.layers, key=lambda d: d.size)
    return rf"/blobs/{layer.digest}"


def _assert_consistent(store):
    report = fsck(store)
    assert report.ok, report
    assert not list(store.blobs.tmp_dir.iterdir())  # no temp file left behind


def _pull_via(proxy, store, ref, **kw):
    c = proxy_client(proxy, **kw)
    try:
        return pull(store, f"{proxy.host}/{ref}", client=c)
    finally:
        c.close()


def test_reset_mid_blob_resumes_with_range(plain_registry, proxy, store, store2, repo_name):
    ref = _seed(store, plain_registry, repo_name)
    proxy.faults.append(Fault("GET", _big(store), "reset", times=2, after_bytes=1 << 20))
    digest = _pull_via(proxy, store2, ref)
    assert digest == store.resolve_digest("local/f:1")
    assert [x for x in proxy.log if x[2] == 206], proxy.log
    _assert_consistent(store2)


def test_503_then_success(plain_registry, proxy, store, store2, repo_name):
    ref = _seed(store, plain_registry, repo_name)
    proxy.faults.append(Fault("GET", r"/manifests/", "status", times=2, status=503))
    proxy.faults.append(Fault("GET", r"/blobs/", "status", times=2, status=503))
    assert _pull_via(proxy, store2, ref) == store.resolve_digest("local/f:1")
    _assert_consistent(store2)


def test_429_honours_retry_after(plain_registry, proxy, store, store2, repo_name):
    ref = _seed(store, plain_registry, repo_name)
    proxy.faults.append(Fault("GET", r"/manifests/", "status", times=1, status=429,
                              retry_after="1"))
    t0 = time.monotonic()
    assert _pull_via(proxy, store2, ref) == store.resolve_digest("local/f:1")
    assert time.monotonic() - t0 >= 1.0
    _assert_consistent(store2)


def test_stall_times_out_and_resumes(plain_registry, proxy, store, store2, repo_name):
    ref = _seed(store, plain_registry, repo_name)
    proxy.faults.append(Fault("GET", _big(store), "stall", times=1, after_bytes=1 << 20,
                              stall=3.0))
    t0 = time.monotonic()
    assert _pull_via(proxy, store2, ref) == store.resolve_digest("local/f:1")
    assert time.monotonic() - t0 >= 1.0  # waited for the read timeout, then resumed
    assert [x for x in proxy.log if x[2] == 206], proxy.log
    _assert_consistent(store2)


def test_persistent_failure_is_clear_and_leaves_nothing_tagged(
        plain_registry, proxy, store, store2, repo_name):
    ref = _seed(store, plain_registry, repo_name)
    proxy.faults.append(Fault("GET", _big(store), "reset", times=None, after_bytes=100_000))
    t0 = time.monotonic()
    with pytest.raises(RegistryError) as info:
        _pull_via(proxy, store2, ref, retry=RetryPolicy(attempts=3, backoff=0.05,
                                                       max_backoff=0.1))
    assert time.monotonic() - t0 < 20
    assert "attempt" in str(info.value) and info.value.hint
    with pytest.raises(ImageNotFound):
        store2.resolve_digest(f"{proxy.host}/{ref}")
    _assert_consistent(store2)


def test_persistent_503_fails_after_bounded_retries(plain_registry, proxy, store2, repo_name):
    proxy.faults.append(Fault("GET", r"/manifests/", "status", times=None, status=503))
    with pytest.raises(RegistryError) as info:
        _pull_via(proxy, store2, f"{repo_name}:nope")
    assert "503" in str(info.value)
    n = len([x for x in proxy.log if "/manifests/" in x[1]])
    assert n == 4  # FAST_RETRY: 4 attempts, no more


def test_corrupt_blob_is_rejected_and_never_stored(plain_registry, proxy, store, store2,
                                                   repo_name):
    ref = _seed(store, plain_registry, repo_name)
    big = max(store.image("local/f:1").manifest.layers, key=lambda d: d.size)
    proxy.faults.append(Fault("GET", rf"/blobs/{big.digest}", "corrupt", times=None))
    with pytest.raises(DigestMismatch):
        _pull_via(proxy, store2, ref)
    assert not store2.blobs.has(big.digest)
    with pytest.raises(ImageNotFound):
        store2.resolve_digest(f"{proxy.host}/{ref}")
    _assert_consistent(store2)


def test_push_survives_reset_and_503(plain_registry, proxy, store, store2, repo_name):
    store_image(store, "local/p:1", [{"big.bin": BIG}])
    proxy.faults.append(Fault("PUT", r"/blobs/uploads/", "reset_request", times=1,
                              after_bytes=500_000))
    proxy.faults.append(Fault("POST", r"/blobs/uploads/", "status", times=1, status=503))
    proxy.faults.append(Fault("PUT", r"/manifests/", "status", times=1, status=503))
    c = proxy_client(proxy)
    digest = push(store, "local/p:1", f"{proxy.host}/{repo_name}:1", client=c)
    c.close()
    assert pull(store2, f"{plain_registry.host}/{repo_name}:1", credential=None) == digest


def test_chunked_push_resumes_from_range(plain_registry, proxy, store, store2, repo_name):
    store_image(store, "local/c:1", [{"big.bin": BIG}])
    proxy.faults.append(Fault("PATCH", r"/blobs/uploads/", "status", times=1, status=503))
    proxy.faults.append(Fault("PATCH", r"/blobs/uploads/", "reset_request", times=1,
                              after_bytes=100_000))
    c = proxy_client(proxy, chunk_size=1 << 20)
    digest = push(store, "local/c:1", f"{proxy.host}/{repo_name}:1", client=c)
    c.close()
    patches = [x for x in proxy.log if x[0] == "PATCH"]
    assert len([x for x in patches if x[2] == 202]) >= 3  # 3 MB in 1 MB chunks
    assert [x for x in proxy.log if x[0] == "GET" and "/uploads/" in x[1]], "asked for Range"
    assert pull(store2, f"{plain_registry.host}/{repo_name}:1", credential=None) == digest
    _assert_consistent(store2)


def test_blob_429_on_download_honours_retry_after(plain_registry, proxy, store, store2,
                                                  repo_name):
    ref = _seed(store, plain_registry, repo_name)
    proxy.faults.append(Fault("GET", _big(store), "status", times=1, status=429,
                              retry_after="1"))
    t0 = time.monotonic()
    assert _pull_via(proxy, store2, ref) == store.resolve_digest("local/f:1")
    assert time.monotonic() - t0 >= 1.0
    _assert_consistent(store2)


def test_redirect_drops_authorization_on_other_host(tmp_path):
    """Blob GETs may redirect to storage/CDN hosts: credentials must not follow."""
    import http.server
    import threading

    from nbcontainer.registry import RegistrySettings
    from nbcontainer.registry.transport import Transport

    seen: dict[str, str | None] = {}

    def server(name: str, redirect_to: str | None):
        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                seen[name] = self.headers.get("Authorization")
                if redirect_to:
                    self.send_response(307)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv

    cdn = server("cdn", None)
    reg = server("registry", f"http://127.0.0.1:{cdn.server_port}/blob")
    try:
        t = Transport(RegistrySettings())
        resp = t.request("GET", f"http://127.0.0.1:{reg.server_port}/v2/x/blobs/y",
                         headers={"Authorization": "Bearer abc"})
        assert resp.status == 200 and resp.data == b"ok"
        assert seen == {"registry": "Bearer abc", "cdn": None}
    finally:
        cdn.shutdown()
        reg.shutdown()
