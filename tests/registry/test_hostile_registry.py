"""A hostile registry: the fault proxy serves malformed manifests, configs, indexes, token
responses and challenge headers, truncated and oversized bodies, escape sequences in error
texts, redirects to nowhere (the modes are in ``tests/support/registry.py``).

For every mode, ``nbcontainer pull``/``push``/``login`` end with exit code 1 and one line
of error (plus its hint), never a traceback; the store stays consistent (fsck clean),
nothing is tagged, no credential is saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nbcontainer.store import Store, fsck
from tests.support.images import make_image
from tests.support.registry import HOSTILE_LOGIN, HOSTILE_PULL, HOSTILE_PUSH, FaultProxy, Hostile


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e.pop("NBCONTAINER_DEBUG", None)
    e["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    e["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    e["NBCONTAINER_REGISTRIES_CONF"] = str(tmp_path / "registries.json")
    return e


def cli(env: dict[str, str], home: Path, *args: str, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(home), *args],
                          capture_output=True, text=True, env=env, input=stdin, timeout=120)


def assert_one_line_error(res: subprocess.CompletedProcess[str], expect: str) -> None:
    assert res.returncode == 1, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert "Traceback" not in res.stderr and "bug in nbcontainer" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if not line.startswith("hint: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert expect in lines[0], f"{expect!r} not in {lines[0]!r}"


def assert_untouched(home: Path, tags: dict[str, str] | None = None) -> None:
    store = Store(home)
    report = fsck(store, quarantine=False)
    assert report.ok, report
    assert dict(store.refs.read().tags) == (tags or {})


def _arm(proxy: FaultProxy, mode: Hostile, repo: str) -> None:
    proxy.faults[:0] = mode.faults(proxy, repo)


@pytest.mark.parametrize("mode", HOSTILE_PULL, ids=lambda m: m.name)
def test_pull_from_a_hostile_registry(proxy: FaultProxy, env: dict[str, str], tmp_path: Path,
                                      mode: Hostile) -> None:
    repo = f"hostile/{mode.name}"
    _arm(proxy, mode, repo)
    res = cli(env, tmp_path / "store", "pull", f"{proxy.host}/{repo}:1")
    assert_one_line_error(res, mode.expect)
    assert_untouched(tmp_path / "store")
    assert not Store(tmp_path / "store").refs.read().images


@pytest.mark.parametrize("mode", HOSTILE_PUSH, ids=lambda m: m.name)
def test_push_to_a_hostile_registry(proxy: FaultProxy, env: dict[str, str], tmp_path: Path,
                                    mode: Hostile) -> None:
    repo = f"hostile/push-{mode.name}"
    name = f"{proxy.host}/{repo}:1"
    home = tmp_path / "store"
    make_image(Store(home), [{"a": b"1" * 100}], tag=name)
    tags = dict(Store(home).refs.read().tags)
    _arm(proxy, mode, repo)
    res = cli(env, home, "push", name)
    assert_one_line_error(res, mode.expect)
    assert_untouched(home, tags)


@pytest.mark.parametrize("mode", HOSTILE_LOGIN, ids=lambda m: m.name)
def test_login_to_a_hostile_registry(proxy: FaultProxy, env: dict[str, str], tmp_path: Path,
                                     mode: Hostile) -> None:
    _arm(proxy, mode, "hostile/login")
    res = cli(env, tmp_path / "store", "login", "-u", "someone", "--password-stdin", proxy.host,
              stdin="secret-password")
    assert_one_line_error(res, mode.expect)
    assert "secret-password" not in res.stderr + res.stdout
    config = Path(env["DOCKER_CONFIG"]) / "config.json"
    assert not config.exists() or proxy.host not in json.loads(config.read_text()).get(
        "auths", {})
