"""The isolation ladder where users are: each environment of the issue (pods simulated with
podman's runc, a host user without subordinate ids, user namespaces disabled) builds A
(COPY+ENV), B (a busybox RUN), C (Debian: apt-get install, useradd, chown) and D (a RUN that
fails after starting a background process), and ``info`` names the rung and the reasons.

After every build, failed or not: ``fsck`` is clean, a failed build left no image, and no
mount or process of the sandbox is left."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support import pods

# The first test also pays for the session's pod world: the test image (cached per source
# tree), the registry and every environment's builds, two at a time.
pytestmark = pytest.mark.timeout(1800)


@dataclass(frozen=True)
class Expect:
    rung: str
    replaced: tuple[str, ...] = ()  # words each in some line of info's "replaced"
    passes: str = "abc"
    missing: dict[str, str] | None = None  # rung → words in its reason
    error: tuple[str, ...] = ()  # words in B's error (when B is expected to fail)


EXPECT = {
    "pod-nnp": Expect("reduced", ("single-id map", "no subordinate id range",
                                  "usermod --add-subuids", "sethostname", "rbind /proc",
                                  "masked")),
    "pod-unconfined": Expect("reduced", ("single-id map", "rbind /proc", "masked")),
    "pod-subuid": Expect("reduced", ("single-id map", "newuidmap refused")),
    "pod-root": Expect("reduced", ("root without CAP_SYS_ADMIN", "tree copies",
                                   "overlayfs refuses an upper dir")),
    "pod-moby": Expect("ptrace", ("seccomp filter refuses unshare",),
                       missing={"full": "seccomp", "reduced": "seccomp"}),
    "pod-moby-noproot": Expect("none", passes="a",
                               missing={"full": "seccomp", "ptrace": "proot"},
                               error=("seccomp filter refuses unshare", "proot",
                                      "seccompProfile")),
    "host-nosubids": Expect("reduced", ("single-id map", "no subordinate id range",
                                        "usermod --add-subuids")),
    "host-nouserns": Expect("ptrace", ("user namespaces are disabled",
                                       "max_user_namespaces"),
                            missing={"full": "max_user_namespaces"}),
}


@pytest.mark.parametrize("name", list(pods.ENVIRONMENTS))
def test_info_names_the_rung_and_reasons(pod_reports: dict[str, dict], name: str) -> None:
    expect, sandbox = EXPECT[name], pod_reports[name]["info"]["sandbox"]
    assert sandbox["rung"] == expect.rung
    replaced = " | ".join(sandbox["replaced"])
    for words in expect.replaced:
        assert words in replaced, (words, replaced)
    rungs = {r["rung"]: r for r in sandbox["rungs"]}
    assert rungs[expect.rung]["available"]
    for rung, words in (expect.missing or {}).items():
        assert not rungs[rung]["available"] and words in rungs[rung]["reason"], rungs[rung]
        assert rungs[rung]["remedy"]
    measures = {m["name"]: m["active"] for m in sandbox["measures"]}
    assert measures["mount namespace"] == (expect.rung in ("full", "reduced"))


@pytest.mark.parametrize("name", list(pods.ENVIRONMENTS))
def test_builds(pod_reports: dict[str, dict], name: str) -> None:
    expect, builds = EXPECT[name], pod_reports[name]["builds"]
    for build, result in builds.items():
        should_pass = build in expect.passes
        assert result["ok"] == should_pass, (build, result.get("error"), result["log"])
        # one line names the rung, once per build that needed a sandbox
        rung_lines = [t for t in result["warnings"] + result["infos"]
                      if t.startswith("isolation: ")]
        assert len(rung_lines) == 1, rung_lines
    if "d" in builds:
        assert "exit code: 3" in builds["d"]["error"]
    if expect.error:
        for words in expect.error:
            assert words in builds["b"]["error"] + builds["b"]["hint"], builds["b"]


@pytest.mark.parametrize("name", list(pods.ENVIRONMENTS))
def test_nothing_left_behind(pod_reports: dict[str, dict], name: str) -> None:
    for build, result in pod_reports[name]["builds"].items():
        assert result["fsck_ok"], build
        assert result["leftover_mounts"] == [], build
        assert result["leftover_procs"] == [], build
        tagged = f"docker.io/pod/{build}:1" in result["images"]
        assert tagged == result["ok"], (build, result["images"])


def test_ownership_per_rung(pod_reports: dict[str, dict]) -> None:
    """Real ids where a range exists (root in a pod maps its own); root elsewhere (the
    single-id map and ptrace say so once per build, as a warning)."""
    assert pod_reports["pod-root"]["builds"]["c"]["owners"]["home/app"] == [1000, 1000]
    for name in ("pod-nnp", "pod-moby", "host-nouserns"):
        c = pod_reports[name]["builds"]["c"]
        assert c["owners"]["home/app"] == [0, 0]
        assert any("not kept" in w or "not recorded" in w for w in c["warnings"])
    for name in pods.ENVIRONMENTS:
        assert pod_reports[name]["builds"]["a"]["owners"]["app/hello.txt"] == [0, 0]
