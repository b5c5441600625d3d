"""``--host-ca``: a RUN trusts what the host trusts, for the duration of the step only.

Behind a TLS-inspecting proxy the host trusts a CA that images do not. With ``--host-ca`` (or
``NBCONTAINER_HOST_CA=1``) each RUN that executes sees:

* the image's own bundles, at their usual paths (``certs.BUNDLE_PATHS`` and the files the
  image's CA variables name), each followed by a marked block of the host's CAs that the
  image lacks; an image without a bundle at a usual path gets one (the host's CAs it lacks)
  at its distribution's usual path.
  They are files of the sandbox's stub lower layer (``sandbox.LowerFile``), not mounts: a
  RUN may replace them (``update-ca-certificates``, installing ``ca-certificates``) and the
  layer then holds the image's own new bundle; a file the RUN leaves alone never reaches it.
* one more copy, read-only in memory at ``/run/nbcontainer/host-ca.crt``, named by
  ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``PIP_CERT``, ``CURL_CA_BUNDLE``,
  ``GIT_SSL_CAINFO`` and ``NODE_EXTRA_CA_CERTS`` (pip, requests and conda, curl, git, npm,
  Python's ``ssl``, Go) unless the image's environment names one of its own bundles, which
  is then presented with the block; and apt's ``Acquire::https::CaInfo`` in a configuration
  file mounted the way the sandbox's own apt setting is.

A RUN that appends to a bundle (or copies one) writes the block with it: after the step every
file of its upper dir that carries the block's marker has the block cut out again, byte for
byte, so the layer holds what the same RUN writes without ``--host-ca``; a file that still
holds one of the host's extra CAs after that (a copy without the marker, a bundle rebuilt from
the presented one) is refused. The variables are the step's environment, not the image's
config or history, and the step's cache key does not depend on ``--host-ca``.

A RUN that fails with a certificate verification error in its output, while the host trusts
CAs the image does not, says so and suggests ``--host-ca`` (``failure``).
"""

from __future__ import annotations

import mmap
import os
import posixpath
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError
from ..sandbox.spec import LowerFile, Mount, RunResult, SecretMount, failure_error
from .certs import BUNDLE_PATHS, CA_VARIABLES, Cert, HostTrust, parse_pem
from .fsview import StackView

PRIVATE = "/run/nbcontainer/host-ca.crt"
APT_CONF = "/etc/apt/apt.conf.d/00nbcontainer-host-ca"
# The block's marker lines; built from parts so that no file (this one included) holds them
# by accident.
MARK = b"# nbcontainer " + b"--host-ca:"
BEGIN = MARK + b" the host's CAs for this RUN only, never part of an image\n"
END = MARK + b" end\n"
_BLOCK = re.compile(rb"\n?" + re.escape(BEGIN) +
                    rb"(?:#[^\n]*\n|-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]*"
                    rb"-----END CERTIFICATE-----\n)*" + re.escape(END))
CERT_ERROR = re.compile(
    r"certificate verif\w* failed|CERTIFICATE_VERIFY_FAILED|SSL certificate problem|"
    r"unable to get local issuer certificate|self[- ]signed certificate in certificate chain|"
    r"SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|"
    r"certificate signed by unknown authority|cannot verify \S+ certificate|"
    r"certificate is NOT trusted|PKIX path building failed|SSLCertVerificationError",
    re.IGNORECASE)


@dataclass(frozen=True)
class Bundle:
    """A CA bundle of the image: where it really is, its bytes and mode."""

    path: str
    data: bytes
    mode: int


@dataclass(frozen=True)
class Presentation:
    """What one RUN gets: files of the stub lower layer, mounts, variables, and the block
    appended to each bundle (what ``scrub`` cuts out of the upper dir again)."""

    lower_files: tuple[LowerFile, ...]
    mounts: tuple[Mount, ...]
    env: Mapping[str, str]
    block: bytes
    extra: tuple[Cert, ...]  # the host's own additions among the CAs presented


def image_bundles(view: StackView, env: Mapping[str, str]) -> list[Bundle]:
    """The image's bundles: at the usual paths and where its CA variables point (symlinks
    resolved, each real file once)."""
    out: dict[str, Bundle] = {}
    paths = [*BUNDLE_PATHS, *(env[v] for v in CA_VARIABLES if env.get(v, "").startswith("/"))]
    for path in paths:
        entry = view.lookup(path)
        if entry is None or not stat.S_ISREG(entry.st.st_mode) or entry.path in out:
            continue
        try:
            data = entry.host.read_bytes()
        except OSError:
            continue
        out[entry.path] = Bundle(entry.path, data, stat.S_IMODE(entry.st.st_mode))
    return list(out.values())


def _default_path(view: StackView) -> str:
    """Where an image without a bundle would have one: Red Hat's path where /etc/pki is."""
    pki = view.lookup("/etc/pki")
    path = BUNDLE_PATHS[1] if pki is not None and pki.is_dir else BUNDLE_PATHS[0]
    return view.realpath(path)


def make_block(certs: Sequence[Cert]) -> bytes:
    parts = [b"\n", BEGIN]
    for cert in certs:
        subject = cert.subject.replace("\n", " ").encode("utf-8", "replace")
        parts += [b"# " + subject + b"\n", cert.pem()]
    parts.append(END)
    return b"".join(parts)


def present(view: StackView, bundles: Sequence[Bundle], trust: HostTrust,
            env: Mapping[str, str]) -> Presentation | None:
    """What ``--host-ca`` gives a RUN over ``view`` (whose bundles are ``bundles``) with the
    environment ``env``; None when the image already trusts every CA the host does."""
    added = trust.missing_from(c for b in bundles for c in parse_pem(b.data))
    if not added:
        return None
    block = make_block(added)
    shown = list(bundles)
    if not any(view.realpath(p) in {b.path for b in bundles} for p in BUNDLE_PATHS):
        # none at a usual path (none at all, or only where the image's ENV points)
        shown.append(Bundle(_default_path(view), b"", 0o644))
    files = tuple(LowerFile(b.path, b.data + block, b.mode) for b in shown)
    mounts: list[Mount] = [SecretMount(PRIVATE, shown[0].data + block, 0o444)]
    apt = view.lookup(posixpath.dirname(APT_CONF))
    if apt is not None and apt.is_dir:
        conf = f'Acquire::https::CaInfo "{PRIVATE}";\n'.encode()
        mounts.append(SecretMount(APT_CONF, conf, 0o644))
    own = {b.path for b in bundles}
    variables = {}
    for name in CA_VARIABLES:
        value = env.get(name, "")
        entry = view.lookup(value) if value.startswith("/") else None
        if entry is None or entry.path not in own:
            variables[name] = PRIVATE
    extra = {c.der for c in trust.extra}
    return Presentation(files, tuple(mounts), variables, block,
                        tuple(c for c in added if c.der in extra))


class ForRun:
    """``--host-ca`` around one RUN over ``lowers`` (top first) with environment ``env``:
    ``on`` presents the host's CAs (``trust`` is asked only then or on a failure). The
    image's bundles are read when presenting, else only if a failure's hint needs them:
    the lowers are still there then, unless the step runs in them (a tree-copy rung:
    ``eager`` reads them before the step). Reading them is a lookup through every layer,
    which costs more than the rest of a RUN's own bookkeeping."""

    def __init__(self, lowers: Sequence[Path], env: Mapping[str, str],
                 trust: Callable[[], HostTrust], *, on: bool, eager: bool = False) -> None:
        self._view = StackView(lowers)
        self.env = dict(env)
        self._bundles = image_bundles(self._view, env) if on or eager else None
        self.trust = trust
        self.presentation = present(self._view, self.bundles, trust(), env) if on else None
        self.on = on

    @property
    def bundles(self) -> list[Bundle]:
        if self._bundles is None:
            self._bundles = image_bundles(self._view, self.env)
        return self._bundles

    @property
    def variables(self) -> Mapping[str, str]:
        return self.presentation.env if self.presentation else {}

    @property
    def mounts(self) -> tuple[Mount, ...]:
        return self.presentation.mounts if self.presentation else ()

    @property
    def lower_files(self) -> tuple[LowerFile, ...]:
        return self.presentation.lower_files if self.presentation else ()

    def scrub(self, upper: Path, tree: Path | None = None,
              unchecked: list[str] | None = None) -> list[str]:
        """After a successful step: see ``scrub``. ``tree``: a tree-copy rung's full tree
        (the next step's snapshot), cleaned at the same paths."""
        if self.presentation is None:
            return []
        cleaned = scrub(upper, self.presentation, unchecked)
        for rel in cleaned if tree is not None else ():
            path = os.path.join(tree or "", rel)  # (mostly the upper's file, hard-linked)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                _cut(path, st, self.presentation, rel)
        return cleaned

    def failure(self, argv: Sequence[str], result: RunResult) -> BuildError:
        """The error of the failed step, with the hint when it applies."""
        if self.on or not CERT_ERROR.search(result.tail(400)):
            return failure_error(argv, result)
        return failure(argv, result, self.bundles, self.trust())


# ------------------------------------------------------------------ after the RUN


def scrub(upper: Path, presentation: Presentation, unchecked: list[str] | None = None
          ) -> list[str]:
    """Cut the block out of every file of ``upper`` that carries its marker (a bundle the
    RUN appended to, a copy of one), in place and with its times kept; the paths cleaned.
    A file that holds one of the host's extra CAs otherwise (a copy without the marker, the
    block cut apart) is refused (BuildError). Files this process may not read (rootless: a
    container user's private file) are added to ``unchecked``."""
    cleaned = []
    for dirpath, _, names in os.walk(upper):
        for name in names:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or not st.st_size:
                continue
            found = _search(path, presentation.extra)
            if found is None and unchecked is not None:
                unchecked.append(os.path.relpath(path, upper))
            elif found:
                _cut(path, st, presentation, os.path.relpath(path, upper))
                cleaned.append(os.path.relpath(path, upper))
    return cleaned


def _search(path: str, extra: Sequence[Cert]) -> bool | None:
    """Whether the file holds the block's marker or one of ``extra`` (its DER, or lines of
    its PEM): mapped, not read (a layer's files are many, the patterns few); None when it
    cannot be read."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return m.find(MARK) >= 0 or any(m.find(p) >= 0 for c in extra
                                            for p in _patterns(c))
    except PermissionError:
        return None
    except (OSError, ValueError):
        return False  # gone, or not mappable (a file of a special filesystem): not a copy


def _patterns(cert: Cert) -> list[bytes]:
    """The DER bytes and a few full base64 lines from the middle of its PEM."""
    lines = [line for line in cert.pem().splitlines()[3:-3] if len(line) == 64]
    return [cert.der, *lines[:3]]


def _cut(path: str, st: os.stat_result, presentation: Presentation, rel: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    clean = _BLOCK.sub(b"", data.replace(presentation.block, b""))
    leaked = [c for c in presentation.extra if _contains(clean, c)]
    if leaked:
        raise BuildError(
            f"/{rel}, written by the RUN, holds {len(leaked)} of the host's CAs that "
            f"--host-ca presented for the step only ({leaked[0].subject}): they must not "
            "reach the image", hint="let the RUN rebuild the bundle from the image's own sources "
            "(update-ca-certificates), COPY a CA the image should trust, or build this step "
            "without --host-ca")
    if clean == data:
        return
    try:
        with open(path, "r+b") as f:
            f.write(clean)
            f.truncate()
    except PermissionError:
        raise BuildError(f"/{rel} holds the CA certificates --host-ca presented for the step "
                         "and cannot be cleaned here", hint="build this step without "
                         "--host-ca") from None
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _contains(data: bytes, cert: Cert) -> bool:
    """Whether ``data`` holds ``cert`` (as DER, or PEM lines from its middle)."""
    return any(p in data for p in _patterns(cert))


# ------------------------------------------------------------------ the hint


def failure(argv: Sequence[str], result: RunResult, bundles: Sequence[Bundle],
            trust: HostTrust) -> BuildError:
    """The error of a failed RUN; when its output shows a certificate verification error
    and the host trusts CAs the image (whose bundles are ``bundles``) does not, it says so
    and suggests ``--host-ca``."""
    error = failure_error(argv, result)
    if not CERT_ERROR.search(result.tail(400)):
        return error
    missing = trust.missing_from(c for b in bundles for c in parse_pem(b.data))
    if not missing:
        return error
    extra = {c.der for c in trust.extra}
    own = [c for c in missing if c.der in extra]
    if own:
        what = f"{_cas(own)} of its own that the image does not: {_names(own)}"
        if len(missing) > len(own):
            what += f" (and {_cas(missing[len(own):])} of the public set the image lacks)"
    else:
        what = f"{_cas(missing)} that the image does not: {_names(missing)}"
    message = (f"{error.message}\nthe output shows a TLS certificate verification error, and "
               f"this host trusts {what}")
    hint = ("build with --host-ca (or set NBCONTAINER_HOST_CA=1): RUN steps then trust the "
            "host's CAs for the step only, without adding them to the image")
    if not own:  # only public CAs: the image has none
        hint = "install the image's CA certificates (ca-certificates) first, or " + hint
    return BuildError(message, hint=hint)


def _cas(certs: Sequence[Cert]) -> str:
    return f"{len(certs)} CA{'s' if len(certs) != 1 else ''}"


def _names(certs: Sequence[Cert]) -> str:
    more = f" and {len(certs) - 3} more" if len(certs) > 3 else ""
    return "; ".join(c.subject for c in certs[:3]) + more
