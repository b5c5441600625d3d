"""``build(provenance=…)``: an in-toto/SLSA provenance statement attached to the image as an
OCI 1.1 referrer artifact (issue 7, item 6): its content, its determinism, its life in the
store (prune keeps it with the image, drops it after rmi), and where it shows (inspect, the
CLI, the notebook's %inspect)."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.builder import provenance as prov
from nbcontainer.errors import BuildError
from nbcontainer.oci.digest import Digest
from nbcontainer.oci.manifest import Manifest
from nbcontainer.store import Store, fsck, prune
from nbcontainer.store.referrers import statements

from .conftest import write

SECRET = "s3cr3t-value-7f2a9c"  # a --secret value: must never be stored or shown
ID_SECRET = "id-secret-value-93be41"  # --secret id=NBC_ID_SECRET: the value of the id's env var
PROXY_PW = "proxy-pw-55d1e0"
EPOCH = "1710000000"

SECRET_SHA = hashlib.sha256(SECRET.encode()).hexdigest()
# the RUN proves the secret was there without writing it into history
DOCKERFILE = f"""\
FROM busybox AS base
ARG VERSION
ARG API_TOKEN_NAME
RUN --mount=type=secret,id=tok test "$(sha256sum < /run/secrets/tok | cut -c1-64)" = \\
    "{SECRET_SHA}" && echo "v$VERSION" > /version
COPY app.txt /app.txt
"""


def _build(do_build, ctx: Path, monkeypatch, *, mode: bool | str = True, tags=("app:1",),
           **kw):
    write(ctx, {"app.txt": "hello\n", "ignored.log": "noise\n", ".dockerignore": "*.log\n",
                "Dockerfile": DOCKERFILE})
    monkeypatch.setenv("NBC_TEST_TOK", SECRET)
    monkeypatch.setenv("NBC_ID_SECRET", ID_SECRET)
    args = {"VERSION": "1.2", "API_TOKEN_NAME": "public-name",
            "HTTP_PROXY": f"http://user:{PROXY_PW}@proxy:3128"}
    return do_build(ctx / "Dockerfile", tags=list(tags), build_args=args,
                    secrets=["id=tok,env=NBC_TEST_TOK", "id=NBC_ID_SECRET"], provenance=mode,
                    **kw)


def _statement(img) -> tuple[Digest, dict]:
    found = statements(img.store, img.digest)
    assert len(found) == 1
    return found[0]


def _all_bytes(store: Store) -> list[bytes]:
    out = []
    for d in store.blobs:
        data = store.blobs.read(d)
        out.append(data)
        if data[:2] == b"\x1f\x8b":
            out.append(gzip.decompress(data))
    for p in store.home.glob("*.json"):
        out.append(p.read_bytes())
    return out


def test_statement_content(do_build, bstore: Store, ctx: Path, monkeypatch) -> None:
    img = _build(do_build, ctx, monkeypatch)
    artifact, doc = _statement(img)
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == "https://slsa.dev/provenance/v1"
    assert doc["subject"][0]["digest"] == {"sha256": img.digest.hex}
    assert doc["subject"][0]["name"].startswith("pkg:docker/app@1?platform=")
    bdef = doc["predicate"]["buildDefinition"]
    ext = bdef["externalParameters"]
    assert ext["configSource"] == {
        "path": "Dockerfile",
        "digest": {"sha256": hashlib.sha256(DOCKERFILE.encode()).hexdigest()}}
    # the context digest covers what COPY can see: .dockerignore'd files do not count
    before = ext["context"]["digest"]["sha256"]
    (ctx / "other.log").write_text("more noise\n")
    from nbcontainer.builder.sources.context import BuildContext, StatCache
    assert prov.context_digest(BuildContext.open(ctx, "Dockerfile", StatCache(None))) == before
    (ctx / "app.txt").write_text("changed\n")
    assert prov.context_digest(BuildContext.open(ctx, "Dockerfile", StatCache(None))) != before
    args = ext["request"]["args"]
    assert args == {"VERSION": "1.2", "API_TOKEN_NAME": "public-name"}  # proxy args dropped
    base = bstore.image("busybox:latest")
    plat = f"{img.config.os}%2F{img.config.architecture}"
    assert bdef["resolvedDependencies"] == [
        {"uri": f"pkg:docker/busybox@latest?platform={plat}",
         "digest": {"sha256": base.digest.hex}}]
    assert "internalParameters" not in bdef and "secrets" not in ext["request"]  # mode=min
    run = doc["predicate"]["runDetails"]
    assert run["builder"]["id"].startswith("https://nbcontainer.dev/builder@v")
    assert run["metadata"]["startedOn"] <= run["metadata"]["finishedOn"]

    # the artifact: an OCI manifest with the in-toto artifactType, empty config, subject
    manifest = bstore.read_manifest(artifact)
    assert isinstance(manifest, Manifest)
    assert manifest.artifact_type == "application/vnd.in-toto+json"
    assert manifest.config.media_type == "application/vnd.oci.empty.v1+json"
    assert bstore.blobs.read(manifest.config.digest) == b"{}"
    assert manifest.subject is not None and manifest.subject.digest == img.digest
    assert manifest.subject.size == len(bstore.blobs.read(img.digest))
    (layer,) = manifest.layers
    assert layer.media_type == "application/vnd.in-toto+json"
    assert layer.annotations["in-toto.io/predicate-type"] == "https://slsa.dev/provenance/v1"
    assert [d.digest for d in bstore.referrers(img.digest)] == [artifact]
    assert [d.artifact_type for d in bstore.referrers(img.digest)] == [prov.IN_TOTO]
    assert bstore.referrers(img.digest, "application/x-other") == []
    # an artifact is not an image
    assert artifact not in {r.digest for r in bstore.list_images()}
    assert fsck(bstore).ok

    # no secret value anywhere: blobs (layers decompressed), the store's JSON files
    for data in _all_bytes(bstore):
        for value in (SECRET, ID_SECRET, PROXY_PW):
            assert value.encode() not in data
    shown = json.dumps(api.inspect(["app:1"], store=bstore))
    for value in (SECRET, ID_SECRET, PROXY_PW):
        assert value not in shown


def test_mode_max_adds_dockerfile_and_stages(do_build, ctx: Path, monkeypatch) -> None:
    img = _build(do_build, ctx, monkeypatch, mode="mode=max")
    _, doc = _statement(img)
    bdef = doc["predicate"]["buildDefinition"]
    cfg = bdef["internalParameters"]["buildConfig"]
    assert cfg["dockerfile"] == DOCKERFILE
    assert [s["name"] for s in cfg["stages"]] == ["base"]
    assert cfg["stages"][0]["base"] == "busybox"
    assert cfg["stages"][0]["instructions"][-1] == "COPY app.txt /app.txt"
    # secret ids, never values
    assert bdef["externalParameters"]["request"]["secrets"] == [{"id": "NBC_ID_SECRET"},
                                                                {"id": "tok"}]
    assert SECRET not in json.dumps(doc) and ID_SECRET not in json.dumps(doc)
    assert doc["predicate"]["runDetails"]["metadata"]["nbcontainer"]["mode"] == "max"


def test_no_provenance_by_default(do_build, ctx: Path) -> None:
    write(ctx, {"a": "x"})
    img = do_build("FROM busybox\nCOPY a /a\n")
    assert img.store.referrers(img.digest) == []
    assert "Provenance" not in api.inspect_image(img)
    img2 = do_build("FROM busybox\nCOPY a /b\n", provenance="false")
    assert img2.store.referrers(img2.digest) == []


@pytest.mark.parametrize("value,mode", [
    (True, "min"), ("true", "min"), ("", "min"), ("mode=min", "min"), ("mode=max", "max"),
    ("max", "max"), (False, None), ("false", None), (None, None), ("0", None),
    ("mode=max,version=v1", "max"), ("disabled=true", None),
])
def test_parse_mode(value, mode) -> None:
    assert prov.parse_mode(value) == mode


def test_bad_mode_is_a_clear_error(do_build, ctx: Path) -> None:
    with pytest.raises(BuildError, match="invalid --provenance value") as exc:
        do_build("FROM busybox\n", provenance="mode=huge")
    assert exc.value.hint


def test_deterministic_with_source_date_epoch(do_build, bstore: Store, ctx: Path,
                                              monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    img = _build(do_build, ctx, monkeypatch)
    artifact, doc = _statement(img)
    meta = doc["predicate"]["runDetails"]["metadata"]
    assert meta["startedOn"] == meta["finishedOn"] == "2024-03-09T16:00:00Z"
    again = _build(do_build, ctx, monkeypatch, no_cache=True)
    assert again.digest == img.digest
    artifact2, doc2 = _statement(again)
    assert artifact2 == artifact and doc2 == doc
    # a second store, the same inputs: the same bytes
    other = Store(bstore.home.parent / "store-b")
    for d in bstore.blobs_of(bstore.resolve_digest("busybox:latest")):
        other.blobs.put(bstore.blobs.read(d))
    other.add_image(bstore.blobs.read(bstore.resolve_digest("busybox:latest")),
                    tags=["busybox:latest"])
    third = _build(do_build, ctx, monkeypatch, store=other)
    assert statements(other, third.digest)[0][0] == artifact


def test_prune_keeps_it_with_the_image_and_drops_it_after_rmi(do_build, bstore: Store,
                                                               ctx: Path, monkeypatch) -> None:
    img = _build(do_build, ctx, monkeypatch)
    artifact, _ = _statement(img)
    manifest = bstore.read_manifest(artifact)
    assert isinstance(manifest, Manifest)
    statement_blob = manifest.layers[0].digest
    prune(bstore)
    assert bstore.blobs.has(artifact) and bstore.blobs.has(statement_blob)
    assert [d.digest for d in bstore.referrers(img.digest)] == [artifact]
    api.rmi(["app:1"], store=bstore)
    report = prune(bstore)
    assert report.blobs_removed >= 2
    assert not bstore.blobs.has(artifact) and not bstore.blobs.has(statement_blob)
    assert bstore.referrers(img.digest) == []
    assert str(img.digest) not in bstore.referrers_db.read()
    assert fsck(bstore).ok


def test_fsck_reports_a_missing_artifact(do_build, bstore: Store, ctx: Path,
                                         monkeypatch) -> None:
    img = _build(do_build, ctx, monkeypatch)
    artifact, _ = _statement(img)
    bstore.blobs.delete(artifact)
    assert bstore.referrers(img.digest) == []  # hidden from readers…
    report = fsck(bstore)
    assert (img.digest, artifact) in report.missing and not report.ok  # …not from fsck


def test_inspect_shows_it(do_build, bstore: Store, ctx: Path, monkeypatch) -> None:
    img = _build(do_build, ctx, monkeypatch)
    artifact, _ = _statement(img)
    doc = api.inspect(["app:1"], store=bstore)[0]
    (section,) = doc["Provenance"]
    assert section["Digest"] == str(artifact)
    assert section["PredicateType"] == "https://slsa.dev/provenance/v1"
    assert section["Dockerfile"]["Digest"] == \
        "sha256:" + hashlib.sha256(DOCKERFILE.encode()).hexdigest()
    assert section["BaseImages"][0]["Digest"] == str(bstore.image("busybox:latest").digest)
    assert section["BuildArgs"]["VERSION"] == "1.2"
    assert section["Context"]["Digest"].startswith("sha256:")

    def cli(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root",
                              str(bstore.home), *args], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return res.stdout

    out = json.loads(cli("inspect", "app:1"))[0]
    assert out["Provenance"][0]["Digest"] == str(artifact)
    for args in (("inspect", "app:1"), ("inspect", "--provenance", "app:1")):
        out_text = cli(*args)
        assert SECRET not in out_text and ID_SECRET not in out_text
    full = json.loads(cli("inspect", "--provenance", "app:1"))
    assert full["predicateType"] == "https://slsa.dev/provenance/v1"
    assert full["subject"][0]["digest"]["sha256"] == img.digest.hex
    assert cli("inspect", "-f", "{{json .Provenance}}", "app:1").strip().startswith("[")
    res = subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(bstore.home),
                          "inspect", "--provenance", "busybox:latest"],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "no provenance attached" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_build_flag(bstore: Store, ctx: Path, monkeypatch) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY a /a\n", "a": "x",
                "Other.Dockerfile": "FROM busybox\nCOPY a /b\n",
                "Third.Dockerfile": "FROM busybox\nCOPY a /c\n"})

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root",
                               str(bstore.home), *args], capture_output=True, text=True)

    res = cli("build", "-q", "-t", "c:1", "--provenance", str(ctx))
    assert res.returncode == 0, res.stderr
    res = cli("build", "-q", "-t", "c:2", "--provenance=mode=max", "--build-arg", "X=1",
              "-f", str(ctx / "Other.Dockerfile"), str(ctx))
    assert res.returncode == 0, res.stderr
    img1, img2 = api.image("c:1", store=bstore), api.image("c:2", store=bstore)
    modes = [statements(bstore, i.digest)[0][1]["predicate"]["runDetails"]["metadata"]
             ["nbcontainer"]["mode"] for i in (img1, img2)]
    assert modes == ["min", "max"]
    assert statements(bstore, img2.digest)[0][1]["predicate"]["buildDefinition"][
        "externalParameters"]["configSource"]["path"] == "Other.Dockerfile"
    outside = ctx.parent / "elsewhere" / "Out.Dockerfile"
    write(outside.parent, {outside.name: "FROM busybox\nCOPY a /out\n"})
    res = cli("build", "-q", "-t", "c:4", "--provenance", "-f", str(outside), str(ctx))
    assert res.returncode == 0, res.stderr
    (_, doc), = statements(bstore, api.image("c:4", store=bstore).digest)
    # a Dockerfile outside the context: its name only, no host path in the statement
    assert doc["predicate"]["buildDefinition"]["externalParameters"]["configSource"][
        "path"] == "Out.Dockerfile"
    res = cli("build", "-q", "--provenance=bogus=1", str(ctx))
    assert res.returncode != 0 and "invalid --provenance value" in res.stderr
    assert "Traceback" not in res.stderr
    res = cli("build", "-q", "-t", "c:3", "-f", str(ctx / "Third.Dockerfile"), str(ctx),
              "--provenance=false")
    assert res.returncode == 0, res.stderr
    assert bstore.referrers(api.image("c:3", store=bstore).digest) == []
