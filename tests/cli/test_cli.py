"""The command line: docker-shaped output, one-line errors, exit codes, --help everywhere."""

import json
import subprocess
import sys

import pytest

from nbcontainer.cli import COMMANDS, main
from nbcontainer.store import Store
from tests.support.images import make_image


def cli(store_home, *args, check=True):
    res = subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(store_home), *args],
                         capture_output=True, text=True)
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.mark.parametrize("verb", [c.name for c in COMMANDS])
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    assert "usage: nbcontainer " + verb in capsys.readouterr().out


def test_images_inspect_tag_rmi(tmp_path):
    home = tmp_path / "s"
    dig = make_image(Store(home), [{"a": b"1"}], tag="localhost:5000/app:1")
    out = cli(home, "images").stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:2] == ["localhost:5000/app", "1"]
    image_id = Store(home).image("localhost:5000/app:1").id
    assert cli(home, "images", "-q").stdout.split() == [image_id.hex[:12]]
    doc = json.loads(cli(home, "inspect", "localhost:5000/app:1").stdout)[0]
    assert doc["Id"] == str(image_id) and doc["Digest"] == str(dig)
    assert doc["RepoTags"] == ["localhost:5000/app:1"]
    assert doc["RepoDigests"] == [f"localhost:5000/app@{dig}"]
    assert doc["Config"]["Cmd"] == ["/bin/sh"] and doc["Os"] == "linux"
    assert doc["Manifest"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert cli(home, "inspect", "-f", "{{.Os}}", image_id.hex[:12]).stdout.strip() == "linux"
    assert cli(home, "inspect", "-f", "{{json .Config.Cmd}}", "localhost:5000/app:1").stdout.strip() == '["/bin/sh"]'
    cli(home, "tag", "localhost:5000/app:1", "other:2")
    assert "other" in cli(home, "images").stdout
    out = cli(home, "rmi", "other:2", "localhost:5000/app:1").stdout.splitlines()
    assert out == ["Untagged: other:2", "Untagged: localhost:5000/app:1", f"Deleted: {dig}"]
    assert cli(home, "images", "-q").stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "nope:1"], "Error: no such image: nope:1"),
        (["tag", "nope", "x"], "Error: no such image: nope"),
        (["tag", "x", "Bad Name"], None),
        (["load", "-i", "/nonexistent.tar"], "Error: /nonexistent.tar: no such file or directory"),
        (["import", "/nonexistent", "x"], "Error: import source '/nonexistent' does not exist"),
        (["save", "-o", "/tmp/x.tar", "--format", "oci-archive", "nope"], "Error: no such image"),
        (["inspect", "UPPER"], "must be lowercase"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, args, message):
    home = tmp_path / "s"
    if args[0] == "tag" and args[1] == "x":
        make_image(Store(home), [{"a": b"1"}], tag="x")
    res = cli(home, *args, check=False)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith("Error: ")
    if message:
        assert message in res.stderr
    assert len([line for line in res.stderr.splitlines() if not line.startswith("hint:")]) == 1


def test_debug_shows_the_traceback(tmp_path):
    res = cli(tmp_path / "s", "--debug", "inspect", "nope", check=False)
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_usage_errors_exit_2(tmp_path):
    res = cli(tmp_path / "s", "save", check=False)
    assert res.returncode == 2 and "usage:" in res.stderr
    res = cli(tmp_path / "s", "frobnicate", check=False)
    assert res.returncode == 2


def test_save_to_stdout_and_load(tmp_path):
    home = tmp_path / "s"
    make_image(Store(home), [{"a": b"1"}], tag="app:1")
    archive = tmp_path / "out.tar"
    with open(archive, "wb") as f:
        res = subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(home),
                              "save", "app:1"], stdout=f, stderr=subprocess.PIPE)
    assert res.returncode == 0 and archive.stat().st_size > 0
    out = cli(tmp_path / "t", "load", "-i", str(archive)).stdout
    assert out.strip() == "Loaded image: app:1"


def test_fsck_and_prune_cli(tmp_path):
    home = tmp_path / "s"
    store = Store(home)
    make_image(store, [{"a": b"1"}], tag="app:1")
    store.blobs.put(b"orphan")
    assert "store is consistent" in cli(home, "fsck").stdout
    assert "Deleted 1 unreferenced blob(s)" in cli(home, "prune").stdout
    layer = store.image("app:1").manifest.layers[0].digest
    p = store.blobs.path(layer)
    p.chmod(0o644)
    p.write_bytes(b"bad")
    res = cli(home, "fsck", check=False)
    assert res.returncode == 1 and f"corrupt: {layer}" in res.stdout


def test_info_and_system_reset(tmp_path):
    """``info -f json``: the rung and every rung's status; ``system reset`` deletes the store
    (and asks first unless -f)."""
    home = tmp_path / "s"
    make_image(Store(home), [{"a": b"1"}], tag="localhost:5000/app:1")
    doc = json.loads(cli(home, "info", "-f", "json").stdout)
    box = doc["sandbox"]
    assert box["rung"] in ("full", "reduced", "ptrace", "none")
    assert [r["rung"] for r in box["rungs"]] == ["full", "reduced", "ptrace", "none"]
    assert {"mount namespace", "seccomp", "pids limit"} <= {m["name"] for m in box["measures"]}
    assert doc["store"]["path"] == str(home) and doc["store"]["images"] == 1
    text = cli(home, "info").stdout
    assert "Rung: " in text and "Hardening:" in text and "Probe:" in text
    refused = cli(home, "system", "reset", check=False)
    assert refused.returncode == 1 and "pass -f" in refused.stderr and home.exists()
    assert "Deleted" in cli(home, "system", "reset", "-f").stdout
    assert not home.exists()
    bad = cli(home, "build", "--isolation", "chroot", str(tmp_path), check=False)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
