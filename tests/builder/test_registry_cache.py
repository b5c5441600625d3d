"""The build cache in a registry (issue 7, item 4): ``--cache-to``/``--cache-from`` against a
real ``docker-registry``, stores that share nothing but the registry.

Every RUN below writes a nonce (a random uuid), so a step that executes again produces a
different layer and a different image digest: "identical digest" proves the steps came from
the cache, and the progress events prove each step reported CACHED."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api, cli
from nbcontainer.builder.remote_cache import ARTIFACT_TYPE, CONFIG_TYPE, INLINE_KEY
from nbcontainer.errors import BuildError
from nbcontainer.oci.digest import Digest
from nbcontainer.oci.manifest import parse as parse_manifest
from nbcontainer.progress import Collector, ProgressEvent
from nbcontainer.registry import RegistryClient
from nbcontainer.store import Store, fsck
from nbcontainer.wording import step_title
from tests.support.builds import write
from tests.support.scratch import fixture_dir

STEP = re.compile(r"^\[(?:[\w.-]+ )?(\d+)/(\d+)\] (\S+)")


@pytest.fixture(scope="module")
def registry(request: pytest.FixtureRequest) -> Iterator[object]:
    from tests.support.registry import Registry

    reg = Registry("plain", fixture_dir(request, "cache-registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def base(registry, busybox_rootfs: Path, request: pytest.FixtureRequest) -> str:
    """A busybox base image that lives only in the registry (every store pulls it)."""
    from nbcontainer import registry as reg_api

    st = Store(fixture_dir(request, "seed-store"))
    ref = f"{registry.host}/base/busybox:1"
    api.import_image(busybox_rootfs, ref, store=st)
    reg_api.push(st, ref)
    return ref


def new_store(tmp_path: Path, name: str) -> Store:
    return Store(tmp_path / name)


def steps(events: list[ProgressEvent]) -> dict[str, tuple[str, set[str]]]:
    """Numbered build steps: id → (title, kinds of their ending events)."""
    out: dict[str, tuple[str, set[str]]] = {}
    for e in events:
        if e.kind == "start" and e.id.startswith("#"):
            out[e.id] = (step_title(e), set())
        elif e.id in out and e.kind in ("cached", "done", "error", "log"):
            out[e.id][1].add(e.kind)
    return out


def instruction_steps(events: list[ProgressEvent]) -> dict[str, set[str]]:
    """``[stage n/m] RUN …`` steps (not FROM, not [internal]): title → ending kinds."""
    out = {}
    for title, kinds in steps(events).values():
        m = STEP.match(title)
        if m and m.group(3) != "FROM":
            out[title] = kinds
    return out


def warnings(events: list[ProgressEvent]) -> list[str]:
    return [f"WARNING: {e.text}" for e in events if e.kind == "warning"]


MULTI = """\
FROM {base} AS build
RUN echo built > /built.txt && cat /proc/sys/kernel/random/uuid > /nonce
COPY a.txt /src/a.txt
ENV GREETING=hi
WORKDIR /src
RUN cat a.txt >> /built.txt && cat /proc/sys/kernel/random/uuid >> /nonce
FROM {base}
COPY --from=build /built.txt /nonce /out/
COPY b.txt /b.txt
RUN cat /out/built.txt /b.txt > /final.txt && cat /proc/sys/kernel/random/uuid >> /final.txt
ENV FINAL=1
CMD ["cat", "/final.txt"]
"""


@pytest.fixture
def multi_ctx(tmp_path: Path, base: str) -> Path:
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": MULTI.format(base=base), "a.txt": "alpha\n", "b.txt": "beta\n"})
    return ctx


def cache_doc(registry, ref: str) -> tuple[dict, dict]:
    """(manifest, entries document) of a cache artifact at ``repo:tag``."""
    repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
    with RegistryClient(registry.host) as c:
        data, _, _ = c.get_manifest(repo, tag)
        manifest = json.loads(data)
        doc = json.loads(c.get_blob(repo, parse_manifest(data).config.digest))
    return manifest, doc


# ---------------------------------------------------------------------- acceptance


def test_registry_cache_max_second_store_fully_cached(registry, multi_ctx, tmp_path, capsys):
    """Store A exports (CLI, mode=max); an empty store B imports → every step CACHED, no
    RUN output, the same image digest."""
    ref = f"{registry.host}/cache/app:max"
    rc = cli.main(["--root", str(tmp_path / "A"), "build", "-t", "app:1",
                   "--progress", "plain", "--cache-to", f"type=registry,ref={ref},mode=max",
                   str(multi_ctx)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert f"exporting cache to {ref}" in out.err
    store_a = Store(tmp_path / "A")
    digest_a = store_a.image("app:1").digest

    manifest, doc = cache_doc(registry, ref)
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["config"]["mediaType"] == CONFIG_TYPE
    assert doc["mode"] == "max" and doc["entries"]

    store_b = new_store(tmp_path, "B")
    events = Collector()
    img_b = api.build(multi_ctx / "Dockerfile", multi_ctx, tags=["app:1"], store=store_b,
                      progress=events, cache_from=[ref])
    assert img_b.digest == digest_a
    instr = instruction_steps(events.events)
    assert len(instr) == 7  # RUN, COPY, WORKDIR, RUN; COPY --from, COPY, RUN
    for title, kinds in instr.items():
        assert kinds == {"cached"}, (title, kinds)  # CACHED, and no RUN output (no "log")
    assert not warnings(events.events)
    assert any("importing cache manifest from" in t for t, _ in steps(events.events).values())
    # Lazy, as BuildKit: the build stage's layers, read by no step that ran, stayed remote.
    stage_only = {x["digest"] for x in manifest["layers"]} - \
        {str(d.digest) for d in img_b.manifest.layers}
    assert len(stage_only) == 3  # RUN, COPY, RUN of the build stage
    assert not any(store_b.blobs.has(Digest.parse(d)) for d in stage_only)
    # the image is complete in B: it runs, and the store checks out
    assert fsck(store_b).ok
    out_b = bytearray()
    assert api.run("app:1", store=store_b, output=out_b.extend) == 0
    assert out_b.decode().startswith("built\nalpha\nbeta\n")

    # B's own index now holds the entries whose blobs B has (the final stage's): without
    # --cache-from only the build stage, whose layers stayed remote, runs again.
    again = Collector()
    assert api.build(multi_ctx / "Dockerfile", multi_ctx, store=store_b,
                     progress=again).digest == digest_a
    rerun = instruction_steps(again.events)
    assert all(k == {"cached"} for t, k in rerun.items() if not t.startswith("[build "))
    assert all("done" in k for t, k in rerun.items() if t.startswith("[build "))


def test_reexport_from_a_cached_build(registry, multi_ctx, tmp_path):
    """CI's ``--cache-from X --cache-to Y,mode=max`` in an empty store: the hits' blobs still
    in the registry are fetched for the push; Y holds the same cache as X."""
    x, y = f"{registry.host}/cache/app:x", f"{registry.host}/cache/app:y"
    api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "A"),
              cache_to=[f"type=registry,ref={x},mode=max"])
    img = api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "D"),
                    cache_from=[x], cache_to=[f"type=registry,ref={y},mode=max"])
    mx, dx = cache_doc(registry, x)
    my, dy = cache_doc(registry, y)
    assert dx == dy and mx == my
    assert fsck(img.store).ok


def test_cli_cache_from_bare_ref(registry, multi_ctx, tmp_path, capsys):
    """``--cache-from REF`` (a bare ref means type=registry) through the CLI."""
    ref = f"{registry.host}/cache/app:cli"
    assert api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "A"),
                     cache_to=[f"type=registry,ref={ref},mode=max"]).digest
    rc = cli.main(["--root", str(tmp_path / "B"), "build", "-t", "app:2", "--progress", "plain",
                   "--cache-from", ref, str(multi_ctx)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    lines = [ln for ln in out.err.splitlines() if re.match(r"#\d+ (CACHED|DONE)", ln)]
    titles = re.findall(r"^#\d+ \[[^\]]*\] (RUN|COPY|WORKDIR)", out.err, re.M)
    assert len(titles) == 7
    assert sum(ln.endswith("CACHED") for ln in lines) == 7


def test_dockerfile_magic_cache_flags(registry, multi_ctx, tmp_path, monkeypatch):
    """``%%dockerfile --cache-to/--cache-from`` map to build()'s options."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    start_ipython()
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbcontainer")
    monkeypatch.setenv("NBCONTAINER_HOME", str(tmp_path / "nb-a"))
    monkeypatch.chdir(multi_ctx)
    text = (multi_ctx / "Dockerfile").read_text()
    ref = f"{registry.host}/cache/app:magic"
    r = ip.run_cell(f"%%dockerfile -q --cache-to type=registry,ref={ref},mode=max\n{text}")
    assert r.error_in_exec is None, r.error_in_exec
    digest = r.result.digest
    monkeypatch.setenv("NBCONTAINER_HOME", str(tmp_path / "nb-b"))  # an empty store
    r = ip.run_cell(f"%%dockerfile -q --cache-from {ref}\n{text}")
    assert r.error_in_exec is None, r.error_in_exec
    assert r.result.digest == digest
    assert r.result.store.home == tmp_path / "nb-b"


def test_tls_registry_with_login(busybox_rootfs, multi_ctx, tmp_path, monkeypatch,
                                 tmp_path_factory):
    """The cache registry's TLS and credentials come from the usual places (certs dirs,
    ``login``); without credentials the import is only a warning, and no event shows the
    password."""
    from nbcontainer import registry as reg_api
    from tests.support.registry import PASSWORD, USER, Registry

    for var in ("REGISTRY_AUTH_FILE", "NBCONTAINER_INSECURE_REGISTRIES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NBCONTAINER_REGISTRIES_CONF", str(tmp_path / "registries.json"))
    reg = Registry("tls", tmp_path_factory.mktemp("cache-tls")).start()
    try:
        monkeypatch.setenv("NBCONTAINER_CERTS_DIR", str(reg.ca_root))
        reg_api.login(reg.host, USER, PASSWORD)
        ref = f"{reg.host}/cache/app:tls"
        img = api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "A"),
                        cache_to=[f"type=registry,ref={ref},mode=max"])
        events = Collector()
        img_b = api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "B"),
                          progress=events, cache_from=[ref])
        assert img_b.digest == img.digest
        assert all(k == {"cached"} for k in instruction_steps(events.events).values())

        reg_api.logout(reg.host)
        anon = Collector()
        api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "C"),
                  progress=anon, cache_from=[ref])
        assert any("not used" in w for w in warnings(anon.events))
        assert not any(PASSWORD in f"{e.text} {e.error}" for e in events.events + anon.events)
    finally:
        reg.stop()


# ---------------------------------------------------------------------- min vs max


def test_mode_min_exports_only_the_result_stages(registry, multi_ctx, tmp_path):
    ref_min = f"{registry.host}/cache/app:min"
    ref_max = f"{registry.host}/cache/app:max2"
    img = api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "A"),
                    cache_to=[f"type=registry,ref={ref_min}",  # mode=min is the default
                              f"type=registry,ref={ref_max},mode=max"])
    _, doc_min = cache_doc(registry, ref_min)
    _, doc_max = cache_doc(registry, ref_max)
    assert doc_min["mode"] == "min" and doc_max["mode"] == "max"
    emin, emax = doc_min["entries"], doc_max["entries"]
    assert set(emin) < set(emax)

    def built_by_stage_build(state: dict) -> bool:
        return any("echo built" in h.get("created_by", "") for h in state["history"])

    assert any(built_by_stage_build(s) for s in emax.values())
    assert not any(built_by_stage_build(s) for s in emin.values())

    # With the min cache the non-final stage runs again; the final stage's steps still hit
    # (COPY --from keys on the source stage's key), so the digest is unchanged.
    events = Collector()
    img_b = api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "B"),
                      progress=events, cache_from=[ref_min])
    instr = instruction_steps(events.events)
    build_stage = {t: k for t, k in instr.items() if t.startswith("[build ")}
    final_stage = {t: k for t, k in instr.items() if not t.startswith("[build ")}
    assert len(build_stage) == 4 and len(final_stage) == 3
    runs = [k for t, k in build_stage.items() if " RUN " in t]
    assert runs and all("done" in k and "cached" not in k for k in runs)
    assert all(k == {"cached"} for k in final_stage.values())
    assert img_b.digest == img.digest


# ---------------------------------------------------------------------- inline


SINGLE = """\
FROM {base}
RUN cat /proc/sys/kernel/random/uuid > /nonce
COPY a.txt /a.txt
ENV X=1
RUN cat /a.txt /nonce > /both
"""


def test_inline_cache_through_the_image(registry, base, tmp_path):
    from nbcontainer import registry as reg_api

    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": SINGLE.format(base=base), "a.txt": "inline\n"})
    ref = f"{registry.host}/inline/app:1"
    store_a = new_store(tmp_path, "A")
    img = api.build(ctx / "Dockerfile", ctx, tags=[ref], store=store_a,
                    cache_to=["type=inline"])
    inline = json.loads(img.config.to_bytes())[INLINE_KEY]
    assert inline["mode"] == "min" and len(inline["entries"]) == 4  # RUN, COPY, ENV, RUN
    reg_api.push(store_a, ref)

    # Off by default: the same (locally cached) build without the option has no such key,
    # and differs from the inline image only by it.
    plain = api.build(ctx / "Dockerfile", ctx, store=store_a)
    plain_cfg = json.loads(plain.config.to_bytes())
    assert INLINE_KEY not in plain_cfg
    assert plain_cfg == {k: v for k, v in json.loads(img.config.to_bytes()).items()
                         if k != INLINE_KEY}
    # BUILDKIT_INLINE_CACHE=1 is the build-arg spelling of --cache-to type=inline
    assert api.build(ctx / "Dockerfile", ctx, store=store_a,
                     build_args={"BUILDKIT_INLINE_CACHE": "1"}).digest == img.digest

    store_c = new_store(tmp_path, "C")
    events = Collector()
    img_c = api.build(ctx / "Dockerfile", ctx, tags=["c:1"], store=store_c, progress=events,
                      cache_from=[ref], cache_to=["type=inline"])
    instr = instruction_steps(events.events)
    assert len(instr) == 3 and all(k == {"cached"} for k in instr.values())
    assert img_c.digest == img.digest
    assert fsck(store_c).ok


# ---------------------------------------------------------------------- failures


def test_missing_cache_is_a_warning(registry, multi_ctx, tmp_path):
    from tests.support.registry import free_port

    events = Collector()
    img = api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "B"),
                    progress=events,
                    cache_from=[f"{registry.host}/cache/nothing:here",
                                f"type=registry,ref=127.0.0.1:{free_port()}/gone:1"])
    assert img.digest
    warned = warnings(events.events)
    assert len(warned) == 2, warned
    assert all("not used" in w for w in warned)
    assert all(k == {"done"} or "done" in k for k in instruction_steps(events.events).values())


def test_plain_image_without_inline_cache_is_a_warning(registry, base, tmp_path):
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": f"FROM {base}\nENV A=1\n"})
    events = Collector()
    api.build(ctx / "Dockerfile", ctx, store=new_store(tmp_path, "B"), progress=events,
              cache_from=[base])
    assert any("has no inline cache" in w for w in warnings(events.events))


@pytest.mark.parametrize("flag,spec,message", [
    ("--cache-to", "type=local,dest=/tmp/x", "not supported"),
    ("--cache-to", "type=registry", "needs ref="),
    ("--cache-to", "type=registry,ref=127.0.0.1:5000/c:x,mode=all", "mode must be min or max"),
    ("--cache-to", "type=inline,mode=max", "only supports mode=min"),
    ("--cache-to", "127.0.0.1:5000/c:x", "expected type="),
    ("--cache-from", "type=registry,ref=Bad Ref", "cache-from"),
    ("--cache-from", "type=registry,ref=127.0.0.1:5000/c:x,colour=red", "unknown attribute"),
])
def test_bad_spec_is_a_clear_error(multi_ctx, tmp_path, capsys, flag, spec, message):
    rc = cli.main(["--root", str(tmp_path / "A"), "build", flag, spec, str(multi_ctx)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("Error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "A" / "build" / "cache").exists() or \
        not any((tmp_path / "A" / "build" / "cache").rglob("*.json"))  # nothing was built
    with pytest.raises(BuildError):
        api.build(multi_ctx / "Dockerfile", multi_ctx, store=new_store(tmp_path, "B"),
                  **{flag[2:].replace("-", "_"): [spec]})


def test_failed_cache_push_fails_unless_ignore_error(base, tmp_path):
    from tests.support.registry import free_port

    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": f"FROM {base}\nENV A=1\n"})
    dead = f"127.0.0.1:{free_port()}/c:x"
    with pytest.raises(BuildError, match="exporting cache to"):
        api.build(ctx / "Dockerfile", ctx, store=new_store(tmp_path, "A"),
                  cache_to=[f"type=registry,ref={dead}"])
    events = Collector()
    assert api.build(ctx / "Dockerfile", ctx, store=new_store(tmp_path, "A"), progress=events,
                     cache_to=[f"type=registry,ref={dead},ignore-error=true"]).digest
    assert any("ignore-error" in w for w in warnings(events.events))


# ---------------------------------------------------------------------- secrets


def test_secret_never_reaches_the_cache_artifact(registry, base, tmp_path):
    secret = b"s3cr3t-Value-7f1c9e"
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": f"FROM {base}\n"
                              "ARG TOKEN_NAME=tok\n"
                              "RUN --mount=type=secret,id=tok wc -c /run/secrets/tok > /len\n"
                              "RUN --mount=type=secret,id=tok,env=TOK test -n \"$TOK\"\n"})
    ref = f"{registry.host}/cache/secret:max"
    img = api.build(ctx / "Dockerfile", ctx, store=new_store(tmp_path, "A"),
                    secrets={"tok": secret}, cache_to=[f"type=registry,ref={ref},mode=max"])
    repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
    with RegistryClient(registry.host) as c:
        data, _, _ = c.get_manifest(repo, tag)
        manifest = parse_manifest(data)
        blobs = [data] + [c.get_blob(repo, d.digest) for d in (manifest.config,
                                                               *manifest.layers)]
    assert len(manifest.layers) == len(img.manifest.layers)  # base + the /len layer
    for blob in blobs:
        raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        assert secret not in raw and secret.hex().encode() not in raw
    # the one place the secret's id shows up is the RUN's mount key material, by id only
    assert b"tok" in blobs[1]
