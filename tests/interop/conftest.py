import shutil

import pytest

from nbcontainer.rootfs import make_busybox_rootfs

TOOLS = ("skopeo", "umoci", "oci-image-tool", "podman")


@pytest.fixture(scope="session", autouse=True)
def _tools_installed():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:  # never skip: CI installs these (scripts/setup.sh)
        pytest.fail(f"interop tools missing: {missing}; run scripts/setup.sh")


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory):
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="session")
def arm64_rootfs(tmp_path_factory):
    from tests.support.rootfs import make_arm64_rootfs

    return make_arm64_rootfs(tmp_path_factory.mktemp("busybox-arm64") / "rootfs")
