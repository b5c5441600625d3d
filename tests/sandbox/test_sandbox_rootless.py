"""The sandbox as an unprivileged user (``nbtest``, driven through ``runuser``)."""

from __future__ import annotations

import os
import stat

from tests.support.marks import needs_root
from tests.support.sandbox import RootlessEnv

pytestmark = needs_root  # root creates the user and prepares the shifted rootfs


def request(env: RootlessEnv, name: str, script: str, **kw: object) -> tuple[dict, str]:
    upper, work = env.scratch(name)
    answer = env.run({"lowers": [str(env.rootfs)], "upper": str(upper), "work": str(work),
                      "argv": ["/bin/sh", "-c", script], **kw})
    return answer, str(upper)


def entries(upper: str) -> list[str]:
    found = []
    for dirpath, dirs, files in os.walk(upper):
        found += [os.path.relpath(os.path.join(dirpath, n), upper) for n in dirs + files]
    return sorted(found)


def test_capabilities(rootless: RootlessEnv) -> None:
    answer = rootless.run({"probe": True})
    assert answer == {"ok": True, "problem": None, "subordinate_ids": True}


def test_full_subordinate_range(rootless: RootlessEnv) -> None:
    answer, upper = request(rootless, "ids", "id -u; cat /proc/self/uid_map; echo $$; "
                            "echo x > /dev/null; cat /etc/resolv.conf >/dev/null; exit 5")
    assert "error" not in answer, answer
    assert answer["exit_code"] == 5
    assert answer["uid_map"] == [[0, rootless.uid, 1], [1, rootless.subuid, 65536]]
    lines = answer["output"].split("\n")
    assert lines[0] == "0" and lines[-2] == "1"
    assert entries(upper) == []


def test_whiteout_opaque_and_chown(rootless: RootlessEnv) -> None:
    answer, upper = request(rootless, "changes",
                            "rm /bin/ls && rm -rf /usr/sbin && mkdir /usr/sbin && "
                            "touch /usr/sbin/x /tmp/owned && chown 1000:2000 /tmp/owned")
    assert answer.get("exit_code") == 0, answer
    st = os.lstat(f"{upper}/bin/ls")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(f"{upper}/usr/sbin", "user.overlay.opaque") == b"y"
    owned = os.lstat(f"{upper}/tmp/owned")
    # container id n >= 1 lives at subuid_start + n - 1 on the host
    assert (owned.st_uid, owned.st_gid) == (rootless.subuid + 999, rootless.subuid + 1999)
    assert os.lstat(f"{upper}/usr/sbin/x").st_uid == rootless.uid  # container root


def test_user_from_passwd(rootless: RootlessEnv) -> None:
    answer, upper = request(rootless, "user", "id -u; id -G; touch /tmp/mine", user="app")
    assert answer.get("output") == "1000\n1000 2000\n", answer
    assert os.lstat(f"{upper}/tmp/mine").st_uid == rootless.subuid + 999


def test_network_none(rootless: RootlessEnv) -> None:
    answer, _ = request(rootless, "net", "ls /sys/class/net", network="none")
    assert answer.get("output") == "lo\n", answer


def test_threaded_caller(rootless: RootlessEnv) -> None:
    answer, _ = request(rootless, "threads", "echo ok", threads=4)
    assert answer["threads"] == 5 and answer.get("output") == "ok\n", answer


def test_single_id_map(rootless: RootlessEnv) -> None:
    answer, upper = request(rootless, "single", "id -u; cat /proc/self/uid_map; "
                            "touch /tmp/f; chown 1000 /tmp/f || echo refused", single=True)
    assert answer.get("uid_map") == [[0, rootless.uid, 1]], answer
    assert "refused" in answer["output"]
    answer, _ = request(rootless, "single-user", "true", single=True, user="app")
    assert "subordinate id range" in answer.get("error", ""), answer


def test_remove_upper_in_userns(rootless: RootlessEnv) -> None:
    answer, upper = request(rootless, "remove", "touch /tmp/x && chown 1000 /tmp/x")
    assert answer.get("exit_code") == 0, answer
    answer = rootless.run({"remove": upper})
    assert answer == {"threads": 1, "rm": 0, "exists": False}
