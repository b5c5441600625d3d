"""The API functions that hold what used to live in the CLI only, so both skins share it:
``images()`` rows (an index's platform manifests under the index), ``export``/``OutputSpec``
(``build --output``), ``inspect_field`` (``inspect -f``), names as docker prints them, and
``login --password-env``."""

from __future__ import annotations

import json
import tarfile

import pytest

from nbcontainer import api
from nbcontainer.cli import main
from nbcontainer.errors import NbcontainerError
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.descriptor import Descriptor
from nbcontainer.oci.manifest import Index
from nbcontainer.oci.platform import Platform
from nbcontainer.store import Store
from tests.support.images import make_image


def make_index(store: Store, tag: str) -> tuple:
    amd = make_image(store, [{"a": b"amd"}], arch="amd64")
    arm = make_image(store, [{"a": b"arm"}], arch="arm64")
    descs = tuple(Descriptor(mt.OCI_MANIFEST, d, len(store.blobs.read(d)),
                             platform=Platform.parse(p))
                  for d, p in ((amd, "linux/amd64"), (arm, "linux/arm64")))
    index = store.add_image(Index(descs).to_bytes(), tags=[tag])
    return index, amd, arm


def test_images_rows(tmp_path) -> None:
    st = Store(tmp_path / "s")
    one = make_image(st, [{"a": b"1"}], tag="localhost:5000/app:1")
    st.tag("localhost:5000/app:1", "app:2")
    loose = make_image(st, [{"b": b"2"}])
    index, amd, arm = make_index(st, "multi:1")
    rows = api.images(store=st)
    names = {(r.repository, r.tag, r.name) for r in rows}
    assert names == {("localhost:5000/app", "1", "localhost:5000/app:1"),
                     ("app", "2", "docker.io/library/app:2"),
                     ("<none>", "<none>", None),
                     ("multi", "1", "docker.io/library/multi:1")}
    by_digest = {r.digest: r for r in rows}
    assert amd not in by_digest and arm not in by_digest  # listed under the index row
    assert by_digest[index].id == index  # an index is its own id
    assert by_digest[loose].id == st.image(str(loose)).id  # an image's id is its config
    assert {r.digest for r in rows if r.repository != "multi"} == {one, loose}
    # the index's platform images are rows again once they are tagged themselves
    st.tag(str(arm), "arm:1")
    assert arm in {r.digest for r in api.images(store=st)}


def test_names_as_docker_prints_them() -> None:
    assert api.familiar_name("docker.io/library/app:1") == "app:1"
    assert api.familiar_name("localhost:5000/x/y:2") == "localhost:5000/x/y:2"
    assert api.canonical_name("app") == "docker.io/library/app:latest"


@pytest.mark.parametrize(("spec", "message"), [
    ("type=tar,dest=x", "unknown output type 'tar'"),
    ("type=oci", "needs dest=PATH"),
    ("dest=", "needs dest=PATH"),
])
def test_output_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(NbcontainerError, match=message):
        api.OutputSpec.parse(spec)


def test_export_oci_docker_local(tmp_path) -> None:
    st = Store(tmp_path / "s")
    make_image(st, [{"a/b.txt": b"hello"}], tag="app:1")
    img = api.image("app:1", store=st)
    api.export(img, f"type=oci,dest={tmp_path / 'o.tar'}")
    with tarfile.open(tmp_path / "o.tar") as tar:
        assert json.load(tar.extractfile("index.json"))["manifests"][0]["digest"] == \
            str(img.digest)
    api.export(img, api.OutputSpec("docker", tmp_path / "d.tar"))
    with tarfile.open(tmp_path / "d.tar") as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] == ["app:1"]
    api.export(img, f"type=local,dest={tmp_path / 'fs'}")
    assert (tmp_path / "fs/a/b.txt").read_bytes() == b"hello"


def test_export_local_index_one_dir_per_platform(tmp_path) -> None:
    st = Store(tmp_path / "s")
    make_index(st, "multi:1")
    api.export(api.ImageIndex.load(st, "multi:1"), f"dest={tmp_path / 'out'}")
    assert (tmp_path / "out/linux_amd64/a").read_bytes() == b"amd"
    assert (tmp_path / "out/linux_arm64/a").read_bytes() == b"arm"


def test_inspect_field(tmp_path) -> None:
    doc = {"Os": "linux", "Config": {"Cmd": ["sh"], "User": None}}
    assert api.inspect_field(doc, "{{.Os}}") == "linux"
    assert api.inspect_field(doc, "{{ json .Config.Cmd }}") == '["sh"]'
    assert api.inspect_field(doc, "{{.Config}}") == '{"Cmd": ["sh"], "User": null}'
    assert api.inspect_field(doc, "{{.Config.User}}") == ""
    with pytest.raises(NbcontainerError, match="no field 'Nope'"):
        api.inspect_field(doc, "{{.Nope}}")
    with pytest.raises(NbcontainerError, match="unsupported --format"):
        api.inspect_field(doc, ".Os")


def test_login_password_env(tmp_path, monkeypatch, capsys) -> None:
    from nbcontainer import registry

    seen: list = []
    monkeypatch.setattr(registry, "login", lambda reg, user, pw, **kw: seen.append(
        (reg, user, pw)) or "config.json")
    monkeypatch.setenv("NBC_PW", "from-env")
    root = str(tmp_path / "s")
    assert main(["--root", root, "login", "-u", "bob", "--password-env", "NBC_PW",
                 "r.example"]) == 0
    assert seen == [("r.example", "bob", "from-env")]
    assert capsys.readouterr().out == "Login Succeeded (config.json)\n"
    monkeypatch.delenv("NBC_PW")
    assert main(["--root", root, "login", "-u", "bob", "--password-env", "NBC_PW"]) == 1
    assert "environment variable NBC_PW is empty or unset" in capsys.readouterr().err
