"""Proxy settings for RUN steps: the environment and ``proxies`` of docker's config.json
reach RUN as BuildKit's predefined proxy args (both cases), ``--build-arg`` over the config
over the environment; never in a layer, the config, the history, provenance or any file of
the store; they do not change a step's cache key; ``info`` shows them without passwords."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.builder import proxies
from nbcontainer.progress import Collector
from nbcontainer.store import Store
from tests.support.builds import statuses
from tests.support.hostca import store_contents
from tests.support.marks import needs_root_busybox

PW_ENV = "env-pw-4b1f0c"
PW_CONFIG = "config-pw-9e2d71"
PW_ARG = "arg-pw-77a3e5"


def config_file(tmp_path: Path, proxies_doc: dict) -> Path:
    path = tmp_path / "docker-config" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"auths": {}, "proxies": {"default": proxies_doc}}))
    return path


# ------------------------------------------------------------------ unit: the sources


def test_environment_both_cases() -> None:
    env = {"HTTPS_PROXY": "http://a:3128", "no_proxy": "localhost", "ftp_proxy": "",
           "HTTP_PROXY": "http://UP:1", "http_proxy": "http://low:1", "PATH": "/bin"}
    assert proxies.from_environment(env) == {
        "HTTPS_PROXY": "http://a:3128", "https_proxy": "http://a:3128",
        "NO_PROXY": "localhost", "no_proxy": "localhost",
        "HTTP_PROXY": "http://UP:1", "http_proxy": "http://low:1"}


def test_docker_config(tmp_path: Path) -> None:
    path = config_file(tmp_path, {"httpsProxy": "http://cfg:3128", "noProxy": "*.local",
                                  "ftpProxy": 7})
    assert proxies.from_docker_config(path) == {
        "HTTPS_PROXY": "http://cfg:3128", "https_proxy": "http://cfg:3128",
        "NO_PROXY": "*.local", "no_proxy": "*.local"}
    for text in ("not json", '{"proxies": []}', '{"proxies": {"default": 3}}'):
        path.write_text(text)
        assert proxies.from_docker_config(path) == {}
    assert proxies.from_docker_config(tmp_path / "missing.json") == {}


def test_precedence(tmp_path: Path) -> None:
    """The config over the environment, per name and for both cases of it."""
    path = config_file(tmp_path, {"httpsProxy": "http://cfg:1"})
    env = {"https_proxy": "http://env:1", "HTTP_PROXY": "http://env:2"}
    assert proxies.ambient(env, path) == {
        "HTTPS_PROXY": "http://cfg:1", "https_proxy": "http://cfg:1",
        "HTTP_PROXY": "http://env:2", "http_proxy": "http://env:2"}
    # --build-arg over both: only the case given (as docker passes it)
    assert proxies.overlay(proxies.ambient(env, path), {"https_proxy": "http://arg:1"}) == {
        "https_proxy": "http://arg:1", "HTTP_PROXY": "http://env:2",
        "http_proxy": "http://env:2"}


def test_redact() -> None:
    assert proxies.redact("http://user:pw@proxy:3128") == "http://user:***@proxy:3128"
    assert proxies.redact("http://proxy:3128") == "http://proxy:3128"
    assert proxies.redact("user:pw@proxy:3128") == "user:***@proxy:3128"
    assert proxies.redact("localhost,.local") == "localhost,.local"


# ------------------------------------------------------------------ builds

def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def same(name: str, value: str) -> str:
    """A shell test that ``$name`` is ``value``, without ``value`` in the Dockerfile."""
    return f'[ "$(printf %s "${name}" | md5sum | cut -c1-32)" = {md5(value)} ]'


# Each name from its source (the passwords stay out of the Dockerfile, hence the history).
DOCKERFILE = f"""\
FROM busybox
RUN {same("HTTPS_PROXY", f"http://u:{PW_ENV}@envproxy:3128")} && \\
    [ "$https_proxy" = "$HTTPS_PROXY" ] && \\
    {same("HTTP_PROXY", f"http://u:{PW_CONFIG}@cfgproxy:3128")} && \\
    [ "$http_proxy" = "$HTTP_PROXY" ] && [ "$no_proxy" = localhost ] && \\
    {same("FTP_PROXY", f"http://u:{PW_ARG}@argproxy:21")} && env > /dev/null && touch /ok
"""


@pytest.fixture
def proxied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Proxies in the environment (HTTPS, FTP, NO) and in docker's config.json (HTTP, FTP);
    the build args to give (FTP)."""
    for name in proxies.NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://u:{PW_ENV}@envproxy:3128")
    monkeypatch.setenv("FTP_PROXY", f"http://u:{PW_ENV}@envproxy:21")
    monkeypatch.setenv("no_proxy", "localhost")
    path = config_file(tmp_path, {"httpProxy": f"http://u:{PW_CONFIG}@cfgproxy:3128",
                                  "ftpProxy": f"http://u:{PW_CONFIG}@cfgproxy:21"})
    monkeypatch.setenv("DOCKER_CONFIG", str(path.parent))
    return {"FTP_PROXY": f"http://u:{PW_ARG}@argproxy:21"}


@needs_root_busybox
def test_reach_run_and_nothing_else(bstore: Store, ctx: Path, proxied: dict[str, str]
                                    ) -> None:
    img = api.build(DOCKERFILE, ctx, tags=["p:1"], store=bstore, build_args=proxied,
                    provenance="mode=max")
    shown = json.dumps([img.config.to_dict(), api.inspect(["p:1"], store=bstore)])
    found = json.dumps(api.info(store=bstore).to_dict()["host"]["proxies"])
    for pw in (PW_ENV, PW_CONFIG, PW_ARG):
        assert pw not in shown and pw not in found
        for where, data in store_contents(bstore):
            assert pw.encode() not in data, f"a proxy password in {where}"
    assert "http://u:***@envproxy:3128" in found


@needs_root_busybox
def test_not_in_the_cache_key(bstore: Store, ctx: Path, proxied: dict[str, str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    dockerfile = "FROM busybox\nRUN echo one > /one\n"
    first = api.build(dockerfile, ctx, store=bstore)
    monkeypatch.setenv("HTTPS_PROXY", "http://other:3128")  # (also a miss of the memo)
    events = Collector()
    again = api.build(dockerfile, ctx, store=bstore, progress=events)
    assert again.id == first.id and statuses(events) == ["cached"]


@needs_root_busybox
def test_a_declared_arg_is_an_ordinary_build_arg(bstore: Store, ctx: Path,
                                                 proxied: dict[str, str]) -> None:
    """As with docker: ``ARG HTTPS_PROXY`` without a --build-arg has no value from the
    environment (the predefined arg still reaches RUN, the ARG's default wins)."""
    img = api.build("FROM busybox\nARG HTTPS_PROXY=http://declared:1\n"
                    'RUN [ "$HTTPS_PROXY" = http://declared:1 ] && touch /ok\n', ctx,
                    store=bstore)
    assert any("HTTPS_PROXY=http://declared:1" in (h.created_by or "")
               for h in img.config.history)
