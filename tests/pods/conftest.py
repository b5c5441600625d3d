"""The pod world, once per session: the test image in podman's storage, a registry on
127.0.0.1 with the busybox and Debian bases, and every environment's report, gathered two at
a time (each is one podman container or host command running builds A, B, C and D)."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
from collections.abc import Iterator

import pytest

from nbcontainer.localregistry import LocalRegistry
from tests.support import pods
from tests.support.scratch import fixture_dir
from tests.support.users import user_deps


@pytest.fixture(scope="session")
def pod_reports(request: pytest.FixtureRequest) -> Iterator[dict[str, dict]]:
    if os.geteuid() != 0 or not shutil.which("podman") or not pods.MOBY_SECCOMP.is_file():
        pytest.skip("needs root, podman and golang-github-docker-docker-dev (scripts/setup.sh)")
    tmp = fixture_dir(request, "pods")
    os.chmod(tmp, 0o755)
    image = pods.pod_image(tmp)
    user_deps()
    pods.ensure_user_without_subids()
    with LocalRegistry(tmp / "registry") as reg:
        bases = pods.push_bases(tmp, reg.host)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = {name: pool.submit(pods.run_env, env, image, bases, tmp)
                       for name, env in pods.ENVIRONMENTS.items()}
            yield {name: f.result() for name, f in futures.items()}
