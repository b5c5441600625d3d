"""The registry verbs of the CLI (pull, push, login, logout, ls) and the Python API, against the
real registries; no password or token ever shows up in any output, including ``inspect``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.store import Store, fsck
from tests.support.images import make_image
from tests.support.registry import PASSWORD, USER


def cli(env, home, *args, stdin=None, check=True):
    res = subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(home), *args],
                         capture_output=True, text=True, env=env, input=stdin)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.fixture
def env(any_registry, tmp_path):
    e = dict(os.environ)
    e["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    e["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    e["NBCONTAINER_REGISTRIES_CONF"] = str(tmp_path / "registries.json")
    if any_registry.ca_root:
        e["NBCONTAINER_CERTS_DIR"] = str(any_registry.ca_root)
    return e


def test_login_push_ls_pull_inspect(any_registry, env, tmp_path):
    reg = any_registry
    src, dst = tmp_path / "src", tmp_path / "dst"
    name = f"{reg.host}/cli/app"
    make_image(Store(src), [{"a": b"1" * 1000}, {"b": b"2"}], tag=f"{name}:1")
    outputs = []
    if reg.mode != "plain":
        res = cli(env, src, "login", "-u", USER, "--password-stdin", reg.host, stdin=PASSWORD)
        assert "Login Succeeded" in res.stdout
        outputs.append(res)
        config = (Path(env["DOCKER_CONFIG"]) / "config.json").read_text()
        assert reg.host in json.loads(config)["auths"]
    digestfile = tmp_path / "digest"
    res = cli(env, src, "push", "--digestfile", str(digestfile), f"{name}:1")
    outputs.append(res)
    digest = digestfile.read_text().strip()
    assert digest == str(Store(src).resolve_digest(f"{name}:1"))
    assert "Pushed" in res.stdout or "digest:" in res.stdout
    res = cli(env, src, "push", f"{name}:1", f"{name}:2")  # re-push under a new tag: all skipped
    outputs.append(res)
    assert "already exists" in res.stdout.lower()
    res = cli(env, src, "ls", name)
    outputs.append(res)
    assert res.stdout.split() == ["1", "2"]
    res = cli(env, dst, "pull", f"{name}:2")
    outputs.append(res)
    assert f"Digest: {digest}" in res.stdout
    res = cli(env, dst, "inspect", f"{name}:2")
    outputs.append(res)
    doc = json.loads(res.stdout)[0]
    assert doc["Digest"] == digest and doc["RepoDigests"] == [f"{name}@{digest}"]
    res = cli(env, dst, "pull", "-q", f"{name}@{digest}")
    outputs.append(res)
    assert fsck(Store(dst)).ok
    if reg.mode != "plain":
        res = cli(env, src, "logout", reg.host)
        outputs.append(res)
        assert "Removing login credentials" in res.stdout
        res = cli(env, tmp_path / "anon", "pull", f"{name}:1", check=False)
        outputs.append(res)
        if reg.mode == "tls":  # htpasswd: nothing without credentials
            assert res.returncode == 1 and "Traceback" not in res.stderr
            assert res.stderr.startswith("Error: ") and "hint:" in res.stderr
        else:  # the token issuer grants anonymous pulls, like Docker Hub
            assert res.returncode == 0
        res = cli(env, tmp_path / "anon", "push", f"{name}:1", check=False)
        outputs.append(res)
        if reg.mode == "token":  # ...but never an anonymous push
            assert res.returncode == 1 and res.stderr.startswith("Error: ")
    for r in outputs:
        assert PASSWORD not in r.stdout + r.stderr
        assert "Bearer " not in r.stdout + r.stderr


def test_api_pull_push_image_objects(plain_registry, tmp_path):
    name = f"{plain_registry.host}/api/app"
    src = Store(tmp_path / "src")
    make_image(src, [{"x": b"y"}], tag=f"{name}:1")
    img = api.image(f"{name}:1", store=src)
    assert img.push() == str(img.digest)
    pulled = api.pull(f"{name}:1", store=Store(tmp_path / "dst"))
    assert pulled.digest == img.digest and pulled.ref is not None
    assert pulled.tags == (f"{name}:1",)


def test_pull_errors_are_one_line(plain_registry, tmp_path, env):
    res = cli(env, tmp_path / "s", "pull", f"{plain_registry.host}/nope/nothing:1", check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("Error: ") and "hint:" in res.stderr
