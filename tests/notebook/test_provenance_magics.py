"""``%%dockerfile --provenance`` and ``%inspect`` showing the attached provenance (JSON view,
the HTML fallback, ``--provenance`` for the full statement), in IPython's test shell."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nbcontainer import api
from tests.support.marks import needs_root_busybox

DOCKERFILE = "FROM busybox\nARG WHO\nCOPY hello.txt /app/\n"


def bundle(ip, obj) -> tuple[dict, dict]:
    return ip.display_formatter.format(obj)


@needs_root_busybox
def test_dockerfile_provenance_and_inspect(ip, bb_store, monkeypatch) -> None:
    monkeypatch.setenv("NBC_NB_SECRET", "nb-secret-value-0c9d")
    Path("hello.txt").write_text("hi\n")
    r = ip.run_cell("%%dockerfile -q -t prov/app:1 --build-arg WHO=nb --provenance "
                    "--secret id=s,env=NBC_NB_SECRET\n" + DOCKERFILE)
    assert r.error_in_exec is None, r.error_in_exec
    img = r.result
    (artifact,) = img.store.referrers(img.digest)
    assert artifact.artifact_type == "application/vnd.in-toto+json"

    data, meta = bundle(ip, ip.run_cell("%inspect prov/app:1").result)
    assert set(data) == {"application/json", "text/plain"}
    (section,) = data["application/json"]["Provenance"]
    assert section["Digest"] == str(artifact.digest)
    assert section["Dockerfile"]["Digest"] == \
        "sha256:" + hashlib.sha256(DOCKERFILE.encode()).hexdigest()
    assert section["BuildArgs"] == {"WHO": "nb"}
    assert section["BaseImages"][0]["Digest"] == str(api.image("busybox").digest)
    assert '"Provenance"' in data["text/plain"]

    html, _ = bundle(ip, ip.run_cell("%inspect prov/app:1 --html").result)
    assert set(html) == {"text/plain", "text/html"}
    assert "Provenance" in html["text/html"] and str(artifact.digest) in html["text/html"]
    assert "https://slsa.dev/provenance/v1" in html["text/html"]

    full, _ = bundle(ip, ip.run_cell("%inspect prov/app:1 --provenance").result)
    (statement,) = full["application/json"]["statements"]
    assert statement["subject"][0]["digest"]["sha256"] == img.digest.hex
    for shown in (data["text/plain"], html["text/html"], full["text/plain"]):
        assert "nb-secret-value-0c9d" not in shown

    # an image without provenance: no section, and --provenance says so in one line
    r = ip.run_cell("%%dockerfile -q -t prov/plain:1\n" + DOCKERFILE.replace("/app/", "/p/"))
    assert r.error_in_exec is None
    plain, _ = bundle(ip, ip.run_cell("%inspect prov/plain:1").result)
    assert "Provenance" not in plain["application/json"]
    r = ip.run_cell("%inspect prov/plain:1 --provenance")
    assert r.error_in_exec is not None and "no provenance attached" in str(r.error_in_exec)
