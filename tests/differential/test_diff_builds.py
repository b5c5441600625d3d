"""Every case of cases.py built by nbcontainer and by each peer: ``docker build`` (the
reference: BuildKit, as the Docker engine 20.10 embeds it) and ``buildah bud --isolation chroot
--layers --network host`` (the second). The flattened trees (files, modes, owners, xattrs,
links) and the image configs must match, up to the peer's own list of accepted differences
(IGNORES in tests/support/docker.py and tests/support/buildah.py); the suite's summary prints
the count per peer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential.cases import CASES, GAPS, SECRETS, write_context
from tests.support import buildah, docker
from tests.support.buildah import buildah_result
from tests.support.differential import check, our_result
from tests.support.docker import docker_result

# buildah's OCI format drops ONBUILD (an IGNORES entry); its Docker format keeps it.
BUILDAH_FLAGS = {"onbuild-stage": ("--format", "docker"), "stages-independent": ("--jobs", "2")}
# nbcontainer's own gaps (cases.GAPS) are expected failures, strict: the fix turns them
# into a failure that asks to remove the entry.
NAMES = [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=GAPS[n])) if n in GAPS
         else n for n in sorted(CASES)]


def _secret_flags(tmp_path: Path, name: str) -> tuple[str, ...]:
    flags: tuple[str, ...] = ()
    for sid, value in SECRETS.get(name, {}).items():  # outside the context, like a real one
        (tmp_path / f"secret-{sid}").write_bytes(value)
        flags += ("--secret", f"id={sid},src={tmp_path / f'secret-{sid}'}")
    return flags


@pytest.mark.parametrize("name", NAMES)
def test_same_as_docker(docker_peer, diff_env, tmp_path: Path, name: str) -> None:
    ctx = tmp_path / "ctx"
    write_context(ctx, name)
    ours = our_result(diff_env.store, diff_env.work, ctx, name, secrets=SECRETS.get(name, {}))
    theirs = docker_result(docker_peer, diff_env.work, ctx, name, _secret_flags(tmp_path, name))
    check(docker.PEER, name, docker.IGNORES, ours, theirs)


@pytest.mark.parametrize("name", NAMES)
def test_same_as_buildah(diff_env, tmp_path: Path, name: str) -> None:
    ctx = tmp_path / "ctx"
    write_context(ctx, name)
    ours = our_result(diff_env.store, diff_env.work, ctx, name, secrets=SECRETS.get(name, {}))
    flags = BUILDAH_FLAGS.get(name, ()) + _secret_flags(tmp_path, name)
    theirs = buildah_result(diff_env, ctx, name, flags)
    check(buildah.PEER, name, buildah.IGNORES, ours, theirs)


def test_enough_cases() -> None:
    assert len(CASES) >= 20
