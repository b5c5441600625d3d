"""``import``: a root filesystem becomes a one-layer image (like ``docker import``)."""

import json
import os
import subprocess
import sys
import tarfile

import pytest

from nbcontainer import api
from nbcontainer.errors import NbcontainerError
from nbcontainer.store import Store


def tree(root):
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("box\n")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"\x7fELF" + b"x" * 1000)
    os.chmod(root / "bin" / "tool", 0o755)
    (root / "bin" / "alias").symlink_to("tool")
    return root


def test_import_dir_with_changes(tmp_path):
    store = Store(tmp_path / "s")
    img = api.import_image(tree(tmp_path / "r"), "me/box:1", store=store, changes=[
        'ENV PATH=/bin D=/etc', 'CMD ["tool"]', "WORKDIR $D", "EXPOSE 8080", "USER 1000",
        'LABEL org.opencontainers.image.title="box"', "ENTRYPOINT /bin/tool $PATH"],
        message="first")
    c = img.config.config
    assert c.env == ("PATH=/bin", "D=/etc")
    # shell-form ENTRYPOINT is left for the shell (BuildKit doesn't expand it); WORKDIR is
    assert c.entrypoint == ("/bin/sh", "-c", "/bin/tool $PATH")
    assert c.cmd == ("tool",)  # set by a --change of the same import, so ENTRYPOINT keeps it
    assert c.working_dir == "/etc" and c.exposed_ports == ("8080/tcp",) and c.user == "1000"
    assert c.labels == {"org.opencontainers.image.title": "box"}
    assert img.history[0].comment == "first"
    assert len(img.layers) == 1
    names = {n for n, _ in img.layers[0].files()}
    assert {"etc/hostname", "bin/tool", "bin/alias"} <= names


@pytest.mark.parametrize(("change", "msg"), [
    ("RUN echo hi", "RUN is not supported"),
    ("FROMM x", "FROMM is not supported"),
    ("CMD a\nCMD b", "exactly one instruction"),
    ("EXPOSE 90-80", "invalid containerPort: 90-80"),
])
def test_bad_changes_are_clear_errors_and_store_nothing(tmp_path, change, msg):
    store = Store(tmp_path / "s")
    with pytest.raises(NbcontainerError, match=msg):
        api.import_image(tree(tmp_path / "r"), "x:1", store=store, changes=[change])
    assert store.list_images() == []


def test_import_is_reproducible_with_source_date_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    root = tree(tmp_path / "r")
    a = api.import_image(root, "x:1", store=Store(tmp_path / "a"))
    os.utime(root / "etc" / "hostname", (1800000000, 1800000000))  # newer mtime: clamped
    b = api.import_image(root, "x:1", store=Store(tmp_path / "b"))
    assert a.digest == b.digest and a.config.created == "2023-11-14T22:13:20Z"


@pytest.mark.parametrize("compress", ["", "gz", "zst"])
def test_import_tarball(tmp_path, compress):
    root = tree(tmp_path / "r")
    tarball = tmp_path / f"rootfs.tar{'.' + compress if compress else ''}"
    flag = {"": [], "gz": ["-z"], "zst": ["--zstd"]}[compress]
    subprocess.run(["tar", "-C", str(root), *flag, "-cf", str(tarball), "."], check=True)
    store = Store(tmp_path / "s")
    img = api.import_image(tarball, "tb:1", store=store)
    names = {n.lstrip("./") for n, _ in img.layers[0].files()}
    assert {"etc/hostname", "bin/tool", "bin/alias"} <= names
    with tarfile.open(fileobj=img.layers[0].open(), mode="r|") as tar:
        assert sum(1 for _ in tar) >= 5
    # diff_id is the digest of the uncompressed tar we stored
    assert img.layers[0].diff_id == img.config.diff_ids[0]


def test_cli_import_prints_the_image_id(tmp_path):
    root = tree(tmp_path / "r")
    res = subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(tmp_path / "s"),
                          "import", str(root), "cli/box:2", "-c", "CMD [\"x\"]"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    doc = json.loads(subprocess.run(
        [sys.executable, "-m", "nbcontainer.cli", "--root", str(tmp_path / "s"), "inspect",
         "cli/box:2"], capture_output=True, text=True).stdout)[0]
    assert res.stdout.strip() == doc["Id"] and doc["Config"]["Cmd"] == ["x"]
