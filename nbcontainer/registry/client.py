"""The distribution protocol (OCI distribution-spec v1.1 / Docker registry v2) for one registry.

:class:`RegistryClient` speaks to one host: ping, manifests, blobs, uploads, mounts, tags,
catalog, deletes. It owns the auth handshake (:mod:`.auth`) and turns error responses into
:class:`RegistryError` (:mod:`.errors`); pulling and pushing whole images is built on top of it
in :mod:`.pull` and :mod:`.push`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO
from urllib.parse import urlencode, urlsplit

from ..errors import DigestMismatch, NbcontainerError, RegistryError
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from . import credentials, responses
from .auth import Authenticator, repo_scope
from .credentials import Credential
from .errors import RegistryResponseError, TransportError, redact, response_error
from .hosts import RegistrySettings, api_host
from .mirrors import Endpoint
from .responses import same_origin
from .transport import (
    Response,
    RetryPolicy,
    Timeouts,
    Transport,
    header_int,
    is_plain_http_answer,
    parse_retry_after,
)

log = logging.getLogger("nbcontainer.registry")

# containerd's limit: a manifest or index larger than this is refused before it is parsed.
MAX_MANIFEST_BYTES = 4 << 20
READ_CHUNK = 1 << 20
# Blobs up to this size go up in one PUT; larger ones as PATCH chunks of this size, so a
# dropped connection costs at most one chunk (Quay caps a single PUT, JFrog wants PATCH).
DEFAULT_CHUNK_SIZE = 64 << 20

# A credential argument: an explicit Credential, None for anonymous, or AUTO (look it up).
AUTO = "auto"

# host → scheme that answered: later clients in this process skip the failed HTTPS probe of a
# plain-HTTP loopback registry (a TLS handshake attempt costs ~60 ms).
_SCHEMES: dict[str, str] = {}


class Cancelled(NbcontainerError):
    """Another transfer of the same operation failed; this one stopped early."""


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("transfer cancelled")


class Cancel(threading.Event):
    """The stop flag of one pull or push. Setting it also runs the hooks of the transfers
    in flight, which shut their sockets: a worker blocked reading from a stalled registry
    stops at once on Ctrl-C, not when the read times out a minute later."""

    def __init__(self) -> None:
        super().__init__()
        self._hooks: set[Callable[[], None]] = set()
        self._hooks_lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._hooks_lock:
            hooks = list(self._hooks)
        for hook in hooks:
            try:
                hook()
            except Exception:  # a socket already closed by its own thread
                pass

    @contextlib.contextmanager
    def hook(self, fn: Callable[[], None]) -> Iterator[None]:
        with self._hooks_lock:
            self._hooks.add(fn)
        try:
            if self.is_set():
                fn()
            yield
        finally:
            with self._hooks_lock:
                self._hooks.discard(fn)


def _on_cancel(cancel: threading.Event | None, fn: Callable[[], None]
               ) -> contextlib.AbstractContextManager[None]:
    return cancel.hook(fn) if isinstance(cancel, Cancel) else contextlib.nullcontext()


def _pause(cancel: threading.Event | None, seconds: float) -> None:
    """A retry's back-off, cut short by a cancel."""
    (cancel if cancel is not None else threading.Event()).wait(seconds)
    _check_cancel(cancel)


class RegistryClient:
    """One registry host. Thread-safe: pull/push share one client across worker threads."""

    def __init__(
        self, domain: str, *, credential: Credential | str | None = AUTO,
        settings: RegistrySettings | None = None, tls_verify: bool | None = None,
        retry: RetryPolicy | None = None, timeouts: Timeouts | None = None,
        endpoint: Endpoint | None = None, pool_size: int = 8,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.domain = domain
        self.settings = settings or RegistrySettings.load()
        self.endpoint = endpoint or Endpoint(api_host(domain))
        self.host = self.endpoint.host
        self.chunk_size = chunk_size
        self.transport = Transport(self.settings, tls_verify=tls_verify, retry=retry,
                                   timeouts=timeouts, pool_size=pool_size)
        if credential == AUTO:
            lookup_domain = self.host if self.endpoint.mirror else domain

            def cred_fn() -> Credential | None:
                return credentials.lookup(lookup_domain)
        else:
            explicit = credential if isinstance(credential, Credential) else None

            def cred_fn() -> Credential | None:
                return explicit
        self.auth = Authenticator(self.transport, self.host, cred_fn)
        self._base: str | None = None
        self._ping_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RegistryClient({self.host!r})"

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ connection
    @property
    def base_url(self) -> str:
        if self._base is None:
            self.ping()
        assert self._base is not None
        return self._base

    def ping(self) -> None:
        """``GET /v2/``: decide https or (where allowed) http, and learn the auth challenge."""
        with self._ping_lock:
            if self._base is not None:
                return
            schemes = [self.endpoint.scheme] if self.endpoint.scheme else ["https"]
            if not self.endpoint.scheme and self.settings.allows_http(self.host):
                schemes.append("http")
                if _SCHEMES.get(self.host) == "http":
                    schemes = ["http", "https"]
            last: BaseException | None = None
            for i, scheme in enumerate(schemes):
                base = f"{scheme}://{self.host}"
                more = i + 1 < len(schemes)
                try:
                    resp = self.transport.request(
                        "GET", base + "/v2/", retry=not more, what=f"connecting to {self.host}")
                except TransportError as exc:
                    if more and ("TLS certificate" not in exc.message
                                 or is_plain_http_answer(exc)):
                        last = exc
                        continue
                    raise
                body = resp.snippet()
                if resp.status == 401:
                    self.auth.set_challenge(resp.header("WWW-Authenticate"))
                elif resp.status != 200:
                    if more and resp.status == 400:  # "client sent an HTTP request to HTTPS"
                        continue
                    raise response_error(resp.status, body, action="checking the registry API",
                                         registry=self.host)
                self._base = base
                _SCHEMES[self.host] = scheme
                log.debug("registry %s reached at %s", self.host, scheme)
                return
            assert last is not None
            raise last

    # ------------------------------------------------------------------ requests
    def request(
        self, method: str, path: str, *, scopes: tuple[str, ...] = (),
        headers: dict[str, str] | None = None, body: bytes | Callable[[], object] | None = None,
        ok: tuple[int, ...] = (200,), action: str = "request", repo: str = "",
        retry: bool = True, follow_redirects: bool = True,
    ) -> Response:
        url = path if "://" in path else self.base_url + path
        # Credentials go to the registry itself only, never to a host a Location or Link
        # header named (redirects drop them in the transport for the same reason).
        ours = "://" not in path or same_origin(url, self.base_url)
        for _ in range(3):
            sent = self.auth.headers(scopes) if ours else {}
            resp = self.transport.request(
                method, url, headers={**(headers or {}), **sent}, body=body,  # type: ignore[arg-type]
                retry=retry, follow_redirects=follow_redirects, what=action)
            if resp.status == 401:
                www = resp.header("WWW-Authenticate")
                data = resp.snippet()
                if ours and self.auth.retry_after_401(www, scopes, sent):
                    continue
                raise response_error(401, data, action=action, registry=self.domain, repo=repo)
            if resp.status in ok:
                return resp
            if method == "HEAD":
                resp.close()
            data = resp.snippet() if method != "HEAD" else b""
            raise response_error(resp.status, data, action=action, registry=self.domain,
                                 repo=repo,
                                 retry_after=parse_retry_after(resp.header("Retry-After")))
        raise response_error(401, b"", action=action, registry=self.domain, repo=repo)

    # ------------------------------------------------------------------ manifests
    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, Digest]:
        """Bytes exactly as served, their media type and digest (verified)."""
        action = f"fetching manifest {repo}:{ref}" if ":" not in ref else \
            f"fetching manifest {repo}@{ref}"
        resp = self.request(
            "GET", f"/v2/{repo}/manifests/{ref}", scopes=(repo_scope(repo, "pull"),),
            headers={"Accept": ", ".join(mt.MANIFEST_ACCEPT)}, action=action, repo=repo)
        what = f"manifest {repo}@{ref}" if ":" in ref else f"manifest {repo}:{ref}"
        data = resp.read(MAX_MANIFEST_BYTES, what)
        media_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        digest = self._verify_manifest(data, ref, resp.header("Docker-Content-Digest"), what)
        if media_type not in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
            media_type = _sniff_media_type(data) or media_type
        return data, media_type, digest

    @staticmethod
    def _verify_manifest(data: bytes, ref: str, header: str | None, what: str = "") -> Digest:
        want: Digest | None = None
        if ref.startswith("sha") and ":" in ref:
            want = Digest.parse(ref)
        elif header:
            try:
                want = Digest.parse(header)
            except NbcontainerError:
                want = None
        actual = Digest.of(data, want.algorithm if want else "sha256")
        if want is not None and actual != want:
            raise DigestMismatch(
                f"{what or 'manifest ' + ref} does not match its digest: expected {want}, got "
                f"{actual}",
                hint="the registry or a proxy altered the manifest; nothing was stored")
        return actual if actual.algorithm == "sha256" else Digest.of(data)

    def head_manifest(self, repo: str, ref: str) -> Descriptor | None:
        try:
            resp = self.request(
                "HEAD", f"/v2/{repo}/manifests/{ref}", scopes=(repo_scope(repo, "pull"),),
                headers={"Accept": ", ".join(mt.MANIFEST_ACCEPT)},
                action=f"checking manifest {repo}:{ref}", repo=repo)
        except RegistryResponseError as e:
            if e.status == 404:
                return None
            raise
        resp.close()
        digest = responses.content_digest(resp.header("Docker-Content-Digest"),
                                          f"{repo}:{ref}", self.domain)
        size = header_int(resp.header("Content-Length"))
        media_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        if digest is None or size is None:  # some registries omit them on HEAD: fetch to know
            data, media_type, dig = self.get_manifest(repo, ref)
            return Descriptor(media_type, dig, len(data))
        return Descriptor(media_type, digest, size)

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> Digest:
        resp = self.request(
            "PUT", f"/v2/{repo}/manifests/{ref}", scopes=(repo_scope(repo, "pull", "push"),),
            headers={"Content-Type": media_type}, body=data, ok=(200, 201, 202),
            action=f"pushing manifest {repo}:{ref}", repo=repo)
        resp.close()
        digest = Digest.of(data)
        header = resp.header("Docker-Content-Digest")
        if header and header != str(digest) and header.startswith("sha256:"):
            raise RegistryError(
                f"registry stored manifest {repo}:{ref} as {header}, expected {digest}",
                hint="the registry rewrote the manifest; it may not support this media type")
        return digest

    def delete_manifest(self, repo: str, digest: Digest | str) -> None:
        self.request(
            "DELETE", f"/v2/{repo}/manifests/{digest}", scopes=(repo_scope(repo, "delete"),),
            ok=(200, 202), action=f"deleting {repo}@{digest}", repo=repo).close()

    # ------------------------------------------------------------------ blobs
    def head_blob(self, repo: str, digest: Digest, *, push: bool = False) -> int | None:
        """Size of the blob if the repository has it, else None."""
        actions = ("pull", "push") if push else ("pull",)
        try:
            resp = self.request(
                "HEAD", f"/v2/{repo}/blobs/{digest}", scopes=(repo_scope(repo, *actions),),
                action=f"checking blob {digest.short}", repo=repo)
        except RegistryResponseError as e:
            if e.status == 404:
                return None
            raise
        resp.close()
        return header_int(resp.header("Content-Length")) or 0

    def open_blob(self, repo: str, digest: Digest, offset: int = 0, *,
                  retry: bool = True) -> Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self.request(
            "GET", f"/v2/{repo}/blobs/{digest}", scopes=(repo_scope(repo, "pull"),),
            headers=headers, ok=(200, 206), action=f"fetching blob {digest.short}", repo=repo,
            retry=retry)

    def get_blob(self, repo: str, digest: Digest) -> bytes:
        """Small blobs (configs) whole, verified."""
        data = self.open_blob(repo, digest).data
        if Digest.of(data, digest.algorithm) != digest:
            raise DigestMismatch(f"blob {digest} from {self.domain}/{repo} does not match its digest")
        return data

    def download_blob(
        self, repo: str, digest: Digest, size: int, sink: BinaryIO,
        on_position: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> int:
        """Stream a blob into ``sink`` (a BlobWriter: it hashes), resuming with ``Range``
        after a drop. Returns bytes written; the caller verifies by committing the sink."""
        written = 0
        failures = 0
        attempts = self.transport.retry.attempts
        while True:
            _check_cancel(cancel)
            try:
                # One retry loop (this one) for connects, statuses and drops alike.
                resp = self.open_blob(repo, digest, written, retry=False)
                skip = 0
                if written and resp.status == 200:
                    skip = written  # the server ignored Range: discard what we already have
                else:
                    _check_content_range(resp, written, digest)
                with _on_cancel(cancel, resp.shutdown):
                    for chunk in resp.chunks(READ_CHUNK):
                        if skip:
                            cut = min(skip, len(chunk))
                            chunk, skip = chunk[cut:], skip - cut
                            if not chunk:
                                continue
                        if written + len(chunk) > size:
                            resp.close()
                            raise DigestMismatch(
                                f"blob {digest} from {self.domain}/{repo} is larger than its "
                                f"declared {size} bytes", hint="the registry or a proxy served the "
                                "wrong content; nothing was stored")
                        sink.write(chunk)
                        written += len(chunk)
                        if on_position:
                            on_position(written)
                        _check_cancel(cancel)
                if written >= size:
                    return written
                raise TransportError(f"blob {digest.short} ended after {written} of {size} bytes")
            except (TransportError, RegistryResponseError, OSError, _http_errors()) as exc:
                _check_cancel(cancel)  # a read broken by the cancel's shutdown: no retry
                _raise_if_final(exc)
                failures += 1
                if failures >= attempts:
                    if isinstance(exc, RegistryError):
                        raise
                    raise TransportError(
                        f"fetching blob {digest.short} failed after {failures} attempts at "
                        f"byte {written} of {size}: {redact(str(exc))[:200]}",
                        hint="check the network; re-running the pull resumes what is missing")
                delay = self.transport.retry.delay(failures - 1, getattr(exc, "retry_after", None))
                log.info("blob %s: transfer broke at %d/%d; resuming in %.1fs",
                         digest.short, written, size, delay)
                _pause(cancel, delay)

    # ------------------------------------------------------------------ uploads
    def _location(self, resp: Response, current: str) -> str:
        return responses.location(resp.header("Location"), current, self.domain)

    def start_upload(
        self, repo: str, digest: Digest | None = None, mount_from: str | None = None,
    ) -> tuple[str | None, bool]:
        """POST an upload; returns (session URL, mounted). A refused mount yields a normal
        session (202), as the spec says."""
        scopes = [repo_scope(repo, "pull", "push")]
        path = f"/v2/{repo}/blobs/uploads/"
        if mount_from and digest is not None and mount_from != repo:
            scopes.append(repo_scope(mount_from, "pull"))
            path += "?" + urlencode({"mount": str(digest), "from": mount_from})
        resp = self.request("POST", path, scopes=tuple(scopes), ok=(201, 202),
                            headers={"Content-Length": "0"}, body=b"",
                            action=f"starting upload to {repo}", repo=repo)
        resp.close()
        if resp.status == 201:
            return None, True
        return self._location(resp, self.base_url + path), False

    def upload_blob(
        self, repo: str, digest: Digest, size: int, open_fn: Callable[[], BinaryIO], *,
        mount_from: str | None = None, on_position: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> str:
        """Upload a blob unless mounted; returns ``"mounted"`` or ``"uploaded"``. Retries a
        broken transfer from the server's ``Range`` (chunked) or from scratch (single PUT)."""
        scopes = (repo_scope(repo, "pull", "push"),)
        attempts = self.transport.retry.attempts
        failures = 0
        location: str | None = None
        offset = 0
        while True:
            _check_cancel(cancel)
            try:
                if location is None:
                    location, mounted = self.start_upload(repo, digest, mount_from)
                    if mounted:
                        return "mounted"
                    mount_from = None  # refused once: don't ask again
                    offset = 0
                assert location is not None
                if size <= self.chunk_size and offset == 0:
                    self._put_final(repo, location, digest, open_fn, 0, size, scopes,
                                    on_position, cancel)
                    return "uploaded"
                while offset < size:
                    end = min(offset + self.chunk_size, size)
                    resp = self.request(
                        "PATCH", location, scopes=scopes, ok=(202, 204),
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Range": f"{offset}-{end - 1}",
                                 "Content-Length": str(end - offset)},
                        body=_file_body(open_fn, offset, end, on_position, cancel),
                        action=f"uploading blob {digest.short}", repo=repo, retry=False)
                    resp.close()
                    location = self._location(resp, location)
                    offset = end
                self._put_final(repo, location, digest, None, 0, 0, scopes, None, cancel)
                return "uploaded"
            except Cancelled:
                raise
            except (TransportError, RegistryResponseError, OSError, _http_errors()) as exc:
                _raise_if_final(exc)
                failures += 1
                if failures >= attempts:
                    if isinstance(exc, RegistryError):
                        raise
                    raise TransportError(
                        f"uploading blob {digest.short} failed after {failures} attempts: "
                        f"{redact(str(exc))[:200]}", hint="check the network and re-run the push; "
                        "blobs already uploaded are skipped",
                    ) from None  # the cause may show the upload URL's state; the text is redacted
                retry_after = getattr(exc, "retry_after", None)
                delay = self.transport.retry.delay(failures - 1, retry_after)
                log.info("upload of %s broke (%s); retrying in %.1fs", digest.short,
                         type(exc).__name__, delay)
                _pause(cancel, delay)
                resumed = self._upload_offset(location, scopes) if location and \
                    size > self.chunk_size else None
                if resumed is None:
                    location, offset = None, 0  # start over with a fresh session
                else:
                    location, offset = resumed

    def _upload_offset(self, location: str, scopes: tuple[str, ...]) -> tuple[str, int] | None:
        """Where an interrupted chunked upload stands (``GET <location>`` → ``Range``)."""
        try:
            resp = self.request("GET", location, scopes=scopes, ok=(204, 200),
                                action="checking upload progress")
        except (RegistryError, OSError):
            return None
        resp.close()
        end = responses.upload_range(resp.header("Range")) or 0
        try:
            where = self._location(resp, location) if resp.header("Location") else location
        except RegistryError:
            return None  # a broken Location: start over with a fresh session
        return where, end

    def _put_final(
        self, repo: str, location: str, digest: Digest, open_fn: Callable[[], BinaryIO] | None,
        start: int, end: int, scopes: tuple[str, ...],
        on_position: Callable[[int], None] | None, cancel: threading.Event | None,
    ) -> None:
        sep = "&" if urlsplit(location).query else "?"
        url = f"{location}{sep}{urlencode({'digest': str(digest)})}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(end - start)}
        body = _file_body(open_fn, start, end, on_position, cancel) if open_fn and end > start \
            else b""
        self.request("PUT", url, scopes=scopes, headers=headers, body=body, ok=(201, 204),
                     action=f"uploading blob {digest.short}", repo=repo, retry=False).close()

    def mount_blob(self, repo: str, digest: Digest, from_repo: str) -> bool:
        location, mounted = self.start_upload(repo, digest, from_repo)
        if not mounted and location:
            # Close the session the registry opened instead of mounting.
            try:
                self.request("DELETE", location, scopes=(repo_scope(repo, "pull", "push"),),
                             ok=(200, 202, 204, 404), action="cancelling upload").close()
            except RegistryError:
                pass
        return mounted

    def delete_blob(self, repo: str, digest: Digest) -> None:
        self.request("DELETE", f"/v2/{repo}/blobs/{digest}", scopes=(repo_scope(repo, "delete"),),
                     ok=(200, 202), action=f"deleting blob {digest.short}", repo=repo).close()

    # ------------------------------------------------------------------ listing
    def _paged(self, path: str, key: str, scopes: tuple[str, ...], action: str,
               repo: str = "") -> Iterator[str]:
        url: str | None = self.base_url + path
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            resp = self.request("GET", url, scopes=scopes, action=action, repo=repo)
            link = resp.header("Link")
            yield from responses.name_list(resp.read(responses.MAX_LIST_BODY, action), key,
                                           action)
            url = responses.next_page(link, url, self.domain)

    def list_tags(self, repo: str, page_size: int | None = None) -> list[str]:
        path = f"/v2/{repo}/tags/list" + (f"?n={page_size}" if page_size else "")
        return list(self._paged(path, "tags", (repo_scope(repo, "pull"),),
                                f"listing tags of {repo}", repo))

    def catalog(self, page_size: int | None = None) -> list[str]:
        path = "/v2/_catalog" + (f"?n={page_size}" if page_size else "")
        return list(self._paged(path, "repositories", ("registry:catalog:*",),
                                "listing repositories"))


def _http_errors() -> type[BaseException]:
    from urllib3.exceptions import HTTPError
    return HTTPError


def _raise_if_final(exc: BaseException) -> None:
    """Errors no retry can fix (a refused request, an untrusted TLS certificate) go up at once;
    the blob transfer loops retry the rest."""
    if isinstance(exc, RegistryResponseError) and not _retryable(exc):
        raise exc
    if isinstance(exc, TransportError) and "TLS certificate" in exc.message:
        raise exc


def _retryable(exc: RegistryResponseError) -> bool:
    return exc.status in (408, 429, 500, 502, 503, 504) or exc.code in (
        "BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "TOOMANYREQUESTS")


def _check_content_range(resp: Response, offset: int, digest: Digest) -> None:
    if resp.status != 206:
        return
    rng = resp.header("Content-Range") or ""
    if responses.content_range_start(rng) != offset:
        resp.close()
        raise TransportError(f"blob {digest.short}: server resumed at the wrong offset ({rng!r})")


def _file_body(
    open_fn: Callable[[], BinaryIO] | None, start: int, end: int,
    on_position: Callable[[int], None] | None, cancel: threading.Event | None,
) -> Callable[[], Iterator[bytes]]:
    """A re-startable body: every call reopens the file at ``start`` (auth retries resend)."""
    def gen() -> Iterator[bytes]:
        assert open_fn is not None
        with open_fn() as f:
            f.seek(start)
            left = end - start
            while left > 0:
                _check_cancel(cancel)
                chunk = f.read(min(READ_CHUNK, left))
                if not chunk:
                    raise OSError(f"blob file ended {left} bytes early")
                left -= len(chunk)
                if on_position:
                    on_position(end - left)
                yield chunk
    return gen


def _sniff_media_type(data: bytes) -> str | None:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    if doc.get("mediaType"):
        return str(doc["mediaType"])
    if "manifests" in doc:
        return mt.OCI_INDEX
    cfg = doc.get("config")
    if isinstance(cfg, dict) and cfg.get("mediaType") == mt.DOCKER_CONFIG:
        return mt.DOCKER_MANIFEST
    return mt.OCI_MANIFEST


def env_jobs(default: int = 4) -> int:
    try:
        return max(1, int(os.environ.get("NBCONTAINER_REGISTRY_JOBS", default)))
    except ValueError:
        return default
