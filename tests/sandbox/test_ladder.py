"""The ladder's choice from a probe: the strongest rung that works, each replacement and
missing rung with its true cause (unit tests over made-up probes)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nbcontainer.errors import NbcontainerError
from nbcontainer.sandbox.ladder import choose
from nbcontainer.sandbox.probe import Attempt, HostProbe, Proot

OK = Attempt(True)
EPERM = Attempt(False, 1, "Operation not permitted")
ALL_CAPS = (1 << 41) - 1


def probe(**kw: object) -> HostProbe:
    """A host user with a subordinate range where everything works."""
    base = HostProbe(
        uid=1000, gid=1000, user="student", initial_userns=True, cap_eff=0,
        no_new_privs=False, seccomp=0, max_user_namespaces=1000,
        unprivileged_userns_clone=None, subuid=(100000, 65536), subgid=(100000, 65536),
        newidmap_tools=True, store_fs="ext4", userns=OK, mountns=OK, utsns=OK, ipcns=OK,
        netns=OK, pidns=OK, newidmap=OK, overlay_store=OK, overlay_tmpfs=OK, proc_fresh=OK,
        proc_bind=OK, pivot_root=OK, cgroup_delegated=False, proc_masked=[],
        proot=Proot("/usr/bin/proot", "5.1.0", OK))
    return replace(base, **kw)  # type: ignore[arg-type]


def whys(choice) -> str:
    return " | ".join(f.text() for f in choice.replaced)


def test_full_rung_where_everything_works() -> None:
    c = choose(probe())
    assert c.rung == "full" and not c.replaced and not c.missing
    assert c.settings.userns == "parent" and not c.settings.idmap.is_single
    root = choose(probe(uid=0, gid=0, cap_eff=ALL_CAPS, subuid=None, subgid=None))
    assert root.rung == "full" and root.settings.userns is None


def test_no_new_privs_gives_a_single_id_map_and_says_why() -> None:
    c = choose(probe(no_new_privs=True, newidmap=EPERM))
    assert c.rung == "reduced"
    assert c.settings.userns == "self" and c.settings.idmap.is_single
    assert not c.settings.vfs and c.settings.records  # overlayfs works on the store here
    assert "no_new_privs" in whys(c) and "allowPrivilegeEscalation" in whys(c)


def test_no_subordinate_range_names_usermod() -> None:
    c = choose(probe(subuid=None, subgid=None, newidmap=Attempt(False, None, "not tried")))
    assert c.rung == "reduced" and "usermod --add-subuids" in whys(c)


def test_each_missing_piece_replaced() -> None:
    c = choose(probe(utsns=EPERM, proc_fresh=EPERM, pivot_root=EPERM,
                     overlay_store=Attempt(False, 22, "Invalid argument"), store_fs="overlay",
                     proc_masked=["/proc/kcore"]))
    s = c.settings
    assert c.rung == "reduced"
    assert (s.uts, s.proc, s.pivot, s.vfs) == (False, "bind", False, True)
    text = whys(c)
    for words in ("sethostname", "rbind /proc", "/proc/kcore", "chroot", "tree copies",
                  "store's overlay", "emptyDir"):
        assert words in text, words
    assert not c.missing.get("reduced") and "full" in c.missing


def test_root_without_sys_admin_maps_its_own_ids() -> None:
    c = choose(probe(uid=0, gid=0, cap_eff=ALL_CAPS & ~(1 << 21), subuid=None, subgid=None))
    assert c.rung == "reduced" and c.settings.userns == "parent"
    assert not c.settings.records and "CAP_SYS_ADMIN" in whys(c)


def test_seccomp_refusing_unshare_takes_ptrace_and_names_seccomp() -> None:
    c = choose(probe(seccomp=2, userns=EPERM, mountns=Attempt(False, None, "not tried")))
    assert c.rung == "ptrace" and c.settings.records
    assert "seccomp" in c.missing["full"].cause and "seccompProfile" in c.missing["full"].admin_fix
    assert "seccomp" in whys(c)


def test_user_namespaces_disabled_is_named_as_such() -> None:
    c = choose(probe(userns=Attempt(False, 28, "No space left on device"),
                     mountns=Attempt(False, None, "not tried")))
    assert c.rung == "ptrace" and "disabled" in c.missing["full"].cause
    assert "max_user_namespaces" in c.missing["full"].admin_fix
    off = choose(probe(userns=EPERM, unprivileged_userns_clone=0,
                       mountns=Attempt(False, None, "not tried")))
    assert "unprivileged_userns_clone" in off.missing["full"].cause


def test_no_namespaces_and_no_proot_is_the_none_rung() -> None:
    c = choose(probe(seccomp=2, userns=EPERM, mountns=Attempt(False, None, "not tried"),
                     proot=Proot(None)))
    assert c.rung == "none" and "proot" in c.missing["ptrace"].cause


def test_requests() -> None:
    assert choose(probe(), "reduced").rung == "reduced"
    assert choose(probe(), "ptrace").rung == "ptrace"
    assert choose(probe(), "none").rung == "none"
    with pytest.raises(NbcontainerError, match="not available"):
        choose(probe(no_new_privs=True, newidmap=EPERM), "full")
    with pytest.raises(NbcontainerError, match="proot"):
        choose(probe(proot=Proot(None)), "ptrace")
    with pytest.raises(NbcontainerError, match="unknown isolation"):
        choose(probe(), "chroot")


def test_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBCONTAINER_ISOLATION", "ptrace")
    assert choose(probe()).rung == "ptrace"
    assert choose(probe(), "full").rung == "full"  # the flag wins


def test_rung_line_is_one_line() -> None:
    line = choose(probe(utsns=EPERM)).line()
    assert line.startswith("isolation: reduced namespaces") and "\n" not in line
