"""The fuzz targets: every parser that reads data from outside, each with its real seed corpus
and the one error family it may raise.

=================  ===============================================  =========================
target             parser                                           may raise
=================  ===============================================  =========================
dockerfile         syntax, instructions, expansion, plan, lint      DockerfileError
                   (text, then build args after a NUL byte)
shell-words        BuildKit's word expansion (both escapes)         DockerfileError
dockerignore       ``.dockerignore`` reading and matching           DockerfileError
reference          image references, digests, tags                  ReferenceFormatError
platform           ``--platform`` values (one, or a list)           ReferenceFormatError,
                                                                    BuildError
flags              SOURCE_DATE_EPOCH, booleans, --cache-from/to,    NbcontainerError
                   --provenance, --chmod, git URLs, --ssh, login
manifest, index    manifests and indexes (OCI, Docker schema 2)     ImageFormatError
config             image configs                                    ImageFormatError
provenance         what ``inspect`` shows of a pulled in-toto         (nothing: wrong fields
                   statement                                        show as empty)
registry-headers   WWW-Authenticate, Location, Link, Range,         RegistryError
                   Content-Range, Docker-Content-Digest,
                   Content-Length, Retry-After
registry-bodies    token responses, tag/catalog lists, error        RegistryError
                   bodies
layer-tar          tar layers, plain/gzip/zstd (reading)            LayerError
layer-extract      the same, applied to a directory (nothing may    LayerError
                   change outside it)
docker-archive     ``load`` of docker-save archives (no tag may     ImageFormatError,
                   appear on failure)                               StoreError
oci-archive        ``load`` of OCI archives (likewise)              ImageFormatError,
                                                                    StoreError
=================  ===============================================  =========================
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import random
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from nbcontainer import humanize
from nbcontainer.dockerfile import DockerfileError, IgnoreMatcher, Lexer, parse
from nbcontainer.dockerfile.ignore import read_ignore_patterns
from nbcontainer.errors import (
    BuildError,
    ImageFormatError,
    LayerError,
    NbcontainerError,
    ReferenceFormatError,
    RegistryError,
    StoreError,
)
from nbcontainer.layers import TarReader, apply_layer, open_layer
from nbcontainer.oci import Digest, ImageConfig, Platform, Reference, parse_manifest
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.reference import valid_tag
from nbcontainer.registry import auth, responses
from nbcontainer.registry.errors import parse_error_body, response_error
from nbcontainer.registry.transport import RetryPolicy, header_int, parse_retry_after
from nbcontainer.store import Store
from tests.support.layers import outside_state

from . import corpus
from .engine import Target, _mutate_bytes, _mutate_json

DOCKERFILE_TOKENS = [
    b"\\\n", b"`\n", b"\n", b"\r\n", b" ", b"\t", b"<<EOF\n", b"<<-'EOF'\n", b"EOF\n", b"--from=",
    b"--mount=", b"${", b"}", b"$", b'"', b"'", b"[", b"]", b'["a", 1]', b"# escape=`\n",
    b"# check=error=true\n", b"ONBUILD ", b"FROM ", b"AS ", b"COPY ", b"RUN ", b"ENV ", b"ARG ",
    b"=", b":-", b":+", b":?", b"%%", b"##", b"//", b"\x00", b"\xef\xbb\xbf", b"#", b"0", b"-1",
    b"scratch", b"HEALTHCHECK ", b"CMD ", b"--platform=$BUILDPLATFORM ", b"--chmod=",
    b"--chown=", b"--network=", b"--security=", b"type=bind,", b"9" * 30, b"EXPOSE ",
]  # fmt: skip
JSON_TOKENS = [b"null", b"true", b"[]", b"{}", b'""', b"1e999", b"-0", b"9" * 40, b'"\\u0000"',
               b'"\\ud800"', b"[" * 50, b"NaN", b"Infinity"]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------- frontend
def feed_dockerfile(data: bytes) -> None:
    text, _, args = data.partition(b"\x00")
    build_args = dict(line.partition("=")[::2] for line in _text(args).split("\n") if line)
    parse(text, build_platform="linux/amd64", build_args=build_args or {"V": "1"})


def feed_shell_words(data: bytes) -> None:
    env = {"A": "a b", "B": "", "hi": "hi", "space": "abc  def", "NUL": "\x00"}
    for escape in ("\\", "`"):
        lex = Lexer(escape)
        lex.process_words(_text(data), env)
        lex.process_word(_text(data), env)


def feed_dockerignore(data: bytes) -> None:
    matcher = IgnoreMatcher(read_ignore_patterns(data))
    for path in ("a", "src/app/x.pyc", "docs/a/b.md", "node_modules/x", "é/\udcff", ""):
        matcher.matches(path)


# ---------------------------------------------------------------------------- names
def feed_reference(data: bytes) -> None:
    text = _text(data)
    valid_tag(text)
    try:
        Digest.parse(text)
    except ReferenceFormatError:
        pass
    ref = Reference.parse(text)
    again = Reference.parse(str(ref))  # what we print must parse back to the same thing
    assert again == ref, (ref, again)
    ref.familiar  # noqa: B018


def feed_platform(data: bytes) -> None:
    from nbcontainer.builder.platforms import parse_platforms

    text = _text(data)
    try:
        plat = Platform.parse(text)
        assert Platform.parse(str(plat)) == plat, plat  # printed platforms parse back
    except ReferenceFormatError:
        pass
    parse_platforms(text)


def feed_flags(data: bytes) -> None:
    from nbcontainer import api, timestamps
    from nbcontainer.builder.copyplan import parse_chmod
    from nbcontainer.builder.provenance import parse_mode
    from nbcontainer.builder.remote_cache import parse_spec
    from nbcontainer.builder.sources.git import parse_git_url
    from nbcontainer.builder.ssh import parse_ssh
    from nbcontainer.registry.login import registry_domain

    text = _text(data)
    parsers: list[Callable[[str], object]] = [
        lambda t: timestamps.parse_epoch(t, where="--build-arg"),
        lambda t: parse_spec(t, export=True), lambda t: parse_spec(t, export=False),
        parse_mode, parse_chmod, parse_git_url, parse_ssh, registry_domain,
    ]
    for fn in parsers:
        try:
            fn(text)
        except NbcontainerError:
            pass
    try:
        api.parse_bool(text)
    except ValueError:  # its contract: argparse turns it into a usage error
        pass
    if (epoch := _quiet(lambda: timestamps.parse_epoch(text))) is not None:
        timestamps.rfc3339(epoch)  # an accepted epoch must be usable


def _quiet(fn: Callable[[], int | None]) -> int | None:
    try:
        return fn()
    except NbcontainerError:
        return None


# ---------------------------------------------------------------------------- documents
def feed_manifest(data: bytes) -> None:
    hint = (None, mt.OCI_INDEX, mt.DOCKER_MANIFEST, "application/json")[len(data) % 4]
    parsed = parse_manifest(data, hint)
    # Whatever is accepted must serialize and read back as the same thing.
    again = parse_manifest(json.dumps(parsed.to_dict()).encode())
    assert again.to_dict() == parsed.to_dict(), (parsed, again)
    assert parsed.to_bytes() == data


def feed_config(data: bytes) -> None:
    cfg = ImageConfig.from_bytes(data)
    again = ImageConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again.to_dict() == cfg.to_dict(), (cfg, again)
    str(cfg.platform)
    cfg.config.env_dict()
    humanize.ago(cfg.created)
    for h in cfg.history:
        humanize.ago(h.created)


def feed_provenance(data: bytes) -> None:
    from nbcontainer.store.referrers import summary

    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return  # statements() skips what is not JSON
    json.dumps(summary(Digest.parse("sha256:" + "e" * 64), doc))  # shown as JSON by inspect


# ---------------------------------------------------------------------------- registry
_BASE = "http://127.0.0.1:5000"


def _challenge(value: str) -> None:
    for ch in auth.parse_challenges(value):
        auth.merge_scopes(ch.scopes, ("repository:a/b:pull",))
        auth.covers(ch.scopes, ("repository:a/b:pull",))
        if ch.scheme == "bearer" and ch.params.get("realm"):
            responses.resolve_url(ch.params["realm"], ch.params["realm"], "token realm")


def _retry_after(value: str) -> None:
    seconds = parse_retry_after(value)
    delay = RetryPolicy().delay(0, seconds)
    assert math.isfinite(delay) and delay >= 0, delay


HEADER_READERS: dict[str, Callable[[str], object]] = {
    "www-authenticate": _challenge,
    "location": lambda v: responses.location(v, f"{_BASE}/v2/a/blobs/uploads/", "r"),
    "link": lambda v: responses.next_page(v, f"{_BASE}/v2/_catalog?n=2", "r"),
    "range": responses.upload_range,
    "content-range": responses.content_range_start,
    "docker-content-digest": lambda v: responses.content_digest(v, "manifest", "r"),
    "content-length": header_int,
    "retry-after": _retry_after,
}


def feed_registry_header(data: bytes) -> None:
    name, _, value = _text(data).partition(":")
    reader = HEADER_READERS.get(name.strip().lower())
    for fn in [reader] if reader else HEADER_READERS.values():
        try:
            fn(value.strip())
        except RegistryError as exc:
            assert "\n" not in exc.message, exc.message


def feed_registry_body(data: bytes) -> None:
    for status in (400, 401, 404, 429, 500):
        err = response_error(status, data, action="fetching x", registry="r", repo="a/b")
        assert "\n" not in err.message and "\x1b" not in err.message, err.message
    parse_error_body(data)
    for fn in (lambda b: responses.token_response(b, "r"),
               lambda b: responses.name_list(b, "tags", "listing tags")):
        try:
            fn(data)
        except RegistryError as exc:
            assert "\n" not in exc.message, exc.message


# ---------------------------------------------------------------------------- layers
def feed_layer_tar(data: bytes) -> None:
    with open_layer(io.BytesIO(data)) as stream:
        reader = TarReader(stream)
        for i, _entry in enumerate(reader.entries()):
            if i % 2:
                reader.skip()
        reader.drain()


def _scratch_root() -> Path:
    """Fast scratch space for targets that write (tmpfs when there is one)."""
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="nbc-fuzz-", dir=shm if shm.is_dir() else None))


class LayerExtract:
    """Apply each input to a fresh directory inside ``base``; everything else in ``base``
    (a sentinel file, a directory) and beside it must stay as it was."""

    def __init__(self) -> None:
        self.base: Path | None = None
        self.n = 0

    def __call__(self, data: bytes) -> None:
        if self.base is None:
            self.base = _scratch_root() / "base"
            self.base.mkdir()
            (self.base / "sentinel").write_bytes(b"keep")
            (self.base / "dir").mkdir()
        self.n += 1
        target = self.base / f"t{self.n}"
        before = outside_state(self.base, target)
        quiet = logging.getLogger("nbcontainer.layers")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # its warnings (xattrs a tmpfs refuses) are expected here
        try:
            apply_layer(target, io.BytesIO(data))
        finally:
            quiet.setLevel(level)
            after = outside_state(self.base, target)
            _rmtree(target)
            assert before == after, f"a layer changed {self.base} outside its target"

    def close(self) -> None:
        if self.base is not None:
            _rmtree(self.base.parent)


def _rmtree(path: Path) -> None:
    """Remove what a layer wrote, whatever its modes (a directory of mode 000, immutable
    attributes aside, is writable to its owner after a chmod)."""
    def fix(fn: Callable[..., object], p: str, _exc: BaseException) -> None:
        os.chmod(os.path.dirname(p), 0o700)
        if os.path.isdir(p) and not os.path.islink(p):
            os.chmod(p, 0o700)
        fn(p)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=lambda f, p, e: fix(f, p, e[1]))


# ---------------------------------------------------------------------------- archives
class ArchiveLoad:
    """``load`` one archive into a store that persists across inputs: a refused archive
    must leave the tags exactly as they were (and the store consistent: checked by the
    test once the run is over)."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.store: Store | None = None

    def __call__(self, data: bytes) -> None:
        from nbcontainer.store import docker_archive

        if self.root is None:
            self.root = _scratch_root()
            self.store = Store(self.root / "store")
        assert self.store is not None
        path = self.root / "in.tar"
        path.write_bytes(data)
        before = dict(self.store.refs.read().tags)
        try:
            docker_archive.import_archive(self.store, path)
        except (ImageFormatError, StoreError, LayerError):
            assert dict(self.store.refs.read().tags) == before, "a refused archive tagged"
            raise

    def finish(self) -> None:
        from nbcontainer.store import fsck

        if self.store is not None:
            report = fsck(self.store, quarantine=False)
            assert report.ok, f"the store is inconsistent after the run: {report}"

    def close(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------- tar mutator
_NAMES = ["../evil", "/abs/path", "a/../../b", ".", "..", "", "x" * 300, "blobs/sha256/",
          "blobs/sha256/" + "0" * 64, "manifest.json", "index.json", "oci-layout", "a\x00b",
          "d/.wh..wh..opq", ".wh.etc", "é\udcff"]
_TYPES = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
          tarfile.FIFOTYPE, tarfile.CONTTYPE, b"x"]


def _decompress(data: bytes) -> tuple[bytes, str]:
    import gzip

    import zstandard

    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data), "gzip"
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 26), "zstd"
    return data, ""


def _member_op(rng: random.Random, members: list[tuple[tarfile.TarInfo, bytes]],
               corpus_: Sequence[bytes]) -> None:
    i = rng.randrange(len(members))
    info, content = members[i]
    op = rng.randrange(9)
    if op == 0:
        info.name = rng.choice(_NAMES + [m.name for m, _ in members])
    elif op == 1:
        info.linkname = rng.choice(_NAMES + [m.name for m, _ in members])
    elif op == 2:
        info.type = rng.choice(_TYPES)
    elif op == 3:
        info.mode, info.uid, info.gid = rng.choice((0, 0o7777, 0o4755)), \
            rng.choice((0, 65534, 2**21 - 1)), rng.choice((0, 2**21 - 1))
    elif op == 4:
        mutated = _mutate_json(rng, content, corpus_) if content[:1] in (b"{", b"[") else None
        members[i] = (info, mutated if mutated is not None else
                      _mutate_bytes(rng, content, corpus_, JSON_TOKENS, 1 << 20))
    elif op == 5:
        del members[i]
    elif op == 6:
        members.insert(rng.randrange(len(members) + 1), members[i])
    elif op == 7:
        info.pax_headers = {rng.choice(("path", "linkpath", "size", "mtime", "uid",
                                        "SCHILY.xattr.user.x", "GNU.sparse.map")):
                            rng.choice(("", "../x", "nan", "-1", "9" * 30, "a\nb"))}
    else:
        j = rng.randrange(len(members))
        members[i], members[j] = members[j], members[i]


def mutate_tar(rng: random.Random, data: bytes, corpus_: Sequence[bytes]) -> bytes | None:
    """Mutate a tar member by member (names, link targets, types, modes, PAX records, the
    JSON inside), then write it again, compressed as it was."""
    try:
        plain, how = _decompress(data)
        members = corpus.tar_members(plain)
    except Exception:  # noqa: BLE001 - an already-broken input: leave it to the byte mutator
        return None
    if not members:
        return None
    for _ in range(rng.choice((1, 1, 2, 3))):
        if not members:
            break
        _member_op(rng, members, corpus_)
    buf = io.BytesIO()
    try:
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for info, content in members:
                info.size = len(content) if info.isreg() else 0
                tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    except (ValueError, tarfile.TarError, UnicodeError):
        return None
    from tests.support.images import compress

    return compress(buf.getvalue(), how)


# ---------------------------------------------------------------------------- the table
def all_targets() -> dict[str, Target]:
    docs = corpus.image_documents
    layer_extract, docker_load, oci_load = LayerExtract(), ArchiveLoad(), ArchiveLoad()
    targets = [
        Target("dockerfile", corpus.dockerfiles, feed_dockerfile, (DockerfileError,),
               tokens=DOCKERFILE_TOKENS, weight=2.0),
        Target("shell-words", corpus.shell_words, feed_shell_words, (DockerfileError,),
               tokens=DOCKERFILE_TOKENS, max_len=4096),
        Target("dockerignore", lambda: list(corpus.IGNORE_FILES), feed_dockerignore,
               (DockerfileError,), tokens=[b"**", b"*", b"?", b"[", b"]", b"^", b"\\", b"!",
                                           b"/", b"../", b"\n", b"#"]),
        Target("reference", lambda: list(corpus.REFERENCES), feed_reference,
               (ReferenceFormatError,), tokens=[b":", b"@", b"/", b"sha256:", b"[", b"]",
                                                b"localhost", b"..", b"__", b"-"],
               one_line=True, weight=0.5, max_len=600),
        Target("platform", lambda: list(corpus.PLATFORMS), feed_platform,
               (ReferenceFormatError, BuildError), tokens=[b"/", b",", b"v", b"linux"],
               one_line=True, weight=0.5, max_len=600),
        Target("flags", lambda: list(corpus.FLAGS), feed_flags, (),
               tokens=[b"=", b",", b"type=", b"ref=", b"mode=", b"#", b"?", b":", b"~"],
               weight=0.5, max_len=600),
        Target("manifest", lambda: docs()["manifest"], feed_manifest, (ImageFormatError,),
               tokens=JSON_TOKENS, json=True, one_line=True, weight=1.5),
        Target("index", lambda: docs()["index"], feed_manifest, (ImageFormatError,),
               tokens=JSON_TOKENS, json=True, one_line=True),
        Target("config", lambda: docs()["config"], feed_config, (ImageFormatError,),
               tokens=JSON_TOKENS, json=True, one_line=True, weight=1.5),
        Target("provenance", lambda: list(corpus.STATEMENTS), feed_provenance, (),
               tokens=JSON_TOKENS, json=True, weight=0.5),
        Target("registry-headers", lambda: list(corpus.HEADERS), feed_registry_header, (),
               tokens=[b'"', b",", b"=", b"<", b">", b";", b"[", b"]", b"://", b"\\"],
               max_len=4096),
        Target("registry-bodies", lambda: list(corpus.BODIES), feed_registry_body, (),
               tokens=JSON_TOKENS, json=True, max_len=1 << 16),
        Target("layer-tar", corpus.layers, feed_layer_tar, (LayerError,), mutator=mutate_tar,
               weight=1.5, max_len=1 << 20),
        Target("layer-extract", corpus.layers, layer_extract, (LayerError,), mutator=mutate_tar,
               weight=1.5, max_len=1 << 20, close=layer_extract.close),
        Target("docker-archive", lambda: corpus.archives()["docker"], docker_load,
               (ImageFormatError, StoreError), mutator=mutate_tar, one_line=True, weight=1.5,
               max_len=1 << 22, close=docker_load.close, finish=docker_load.finish),
        Target("oci-archive", lambda: corpus.archives()["oci"], oci_load,
               (ImageFormatError, StoreError), mutator=mutate_tar, one_line=True, weight=1.0,
               max_len=1 << 22, close=oci_load.close, finish=oci_load.finish),
    ]
    return {t.name: t for t in targets}
