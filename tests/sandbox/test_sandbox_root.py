"""The sandbox as real root: namespaces, overlay, mounts, users, teardown."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbcontainer.errors import BuildError
from nbcontainer.sandbox import (
    BindMount,
    EntitlementError,
    Hardening,
    RunResult,
    RunSpec,
    Sandbox,
    SandboxError,
    SecretMount,
    TmpfsMount,
    check,
    detect_capabilities,
    format_failure,
)
from tests.support.marks import needs_root
from tests.support.sandbox import Scratch

pytestmark = needs_root


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


Runner = Callable[..., tuple[RunResult, Scratch]]


@pytest.fixture
def run(sandbox: Sandbox, rootfs: Path, scratch: Callable[[], Scratch]) -> Runner:
    def go(script: str, *, lowers: list[Path] | None = None, **kw: object) -> tuple[RunResult,
                                                                                    Scratch]:
        s = scratch()
        spec = RunSpec(lowerdirs=lowers or [rootfs], upperdir=s.upper, workdir=s.work,
                       argv=["/bin/sh", "-c", script], **kw)  # type: ignore[arg-type]
        return sandbox.run(spec), s

    return go


def out(result: RunResult) -> str:
    return result.output_tail.decode()


def upper_entries(s: Scratch) -> list[str]:
    return sorted(str(p.relative_to(s.upper)) for p in s.upper.rglob("*"))


def test_capabilities() -> None:
    caps = detect_capabilities()
    assert caps.ok and caps.overlayfs and caps.user_namespaces is None
    caps.require()


@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_exit_codes(run: Runner, code: int) -> None:
    result, _ = run(f"exit {code}")
    assert result.exit_code == code and result.signal is None


def test_killed_by_signal(run: Runner) -> None:
    # As pid 1 (the default, like a BuildKit RUN) the shell is immune to its own SIGKILL...
    result, _ = run("kill -9 $$; echo survived")
    assert (result.exit_code, result.output_tail) == (0, b"survived\n")
    # ...with the minimal init it is an ordinary process and the signal is reported.
    result, _ = run("echo $$; kill -9 $$", init=True)
    assert (result.exit_code, result.signal, result.output_tail) == (137, 9, b"2\n")


def test_failure_message(run: Runner) -> None:
    argv = ["/bin/sh", "-c", "echo one; echo two; exit 7"]
    result, _ = run(argv[2])
    message = format_failure(argv, result)
    assert message.startswith('process "/bin/sh -c echo one; echo two; exit 7" did not complete '
                              "successfully: exit code: 7")
    assert message.endswith("one\ntwo")
    with pytest.raises(BuildError, match="exit code: 7"):
        check(argv, result)


def test_output_is_streamed_live(run: Runner) -> None:
    arrivals: list[tuple[float, bytes]] = []
    start = time.monotonic()
    result, _ = run("echo first; sleep 0.5; echo second >&2",
                    output=lambda b: arrivals.append((time.monotonic() - start, b)))
    assert b"".join(b for _, b in arrivals) == b"first\nsecond\n" == result.output_tail
    assert arrivals[0][1] == b"first\n" and arrivals[-1][0] - arrivals[0][0] > 0.4


def test_stdin_bytes(run: Runner) -> None:
    result, _ = run("cat; echo", stdin=b"fed through stdin")
    assert out(result) == "fed through stdin\n"


def test_env_and_default_path(run: Runner) -> None:
    result, _ = run('echo "$GREETING|$PATH|$HOME"', env={"GREETING": "hi there"})
    assert out(result) == "hi there|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/root\n"


@pytest.mark.parametrize(("user", "expected"), [
    ("", "uid=0(root) gid=0(root)|/root"),  # busybox id omits empty supplementary groups
    ("app", "uid=1000(app) gid=1000(app) groups=2000(extra)|/home/app"),
    ("1000:2000", "uid=1000(app) gid=2000(extra)|/home/app"),  # explicit group: no sgids
    ("4242", "uid=4242 gid=0(root)|/"),
])
def test_user(run: Runner, user: str, expected: str) -> None:
    result, _ = run('echo "$(id)|$HOME"', user=user)
    assert out(result).strip() == expected


def test_unknown_user_is_a_clear_error(run: Runner) -> None:
    with pytest.raises(SandboxError, match="unable to find user ghost"):
        run("true", user="ghost")


def test_cwd_is_created_like_workdir(run: Runner) -> None:
    result, s = run("pwd", cwd="/srv/app/data")
    assert out(result) == "/srv/app/data\n"
    assert (s.upper / "srv/app/data").is_dir()


def test_command_not_found(sandbox: Sandbox, rootfs: Path, scratch: Callable[[], Scratch]) -> None:
    s = scratch()
    result = sandbox.run(RunSpec([rootfs], s.upper, s.work, argv=["no-such-tool", "x"]))
    assert result.exit_code == 127
    assert b"executable file not found in $PATH" in result.output_tail


def test_dev_and_proc(run: Runner) -> None:
    result, s = run("echo x > /dev/null; head -c 4 /dev/zero | wc -c; ls /dev; echo $$; "
                    "ps -o pid | wc -l; test -c /dev/pts/ptmx && test -d /dev/shm && echo ok")
    lines = out(result).split()
    assert lines[0] == "4"
    for name in ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm"):
        assert name in lines
    assert lines[-3] == "1"  # the shell is pid 1 of its own pid namespace
    assert int(lines[-2]) <= 4 and lines[-1] == "ok"
    assert upper_entries(s) == []  # no dev/null file, no mount point artifacts


def test_etc_files_from_host_and_not_in_upper(run: Runner) -> None:
    result, s = run("grep -c nameserver /etc/resolv.conf; grep buildkitsandbox /etc/hosts; "
                    "cat /etc/hostname; hostname; echo new > /etc/newfile; "
                    "echo hack > /etc/hosts || echo read-only")
    text = out(result)
    assert "127.0.0.1\tlocalhost buildkitsandbox" in text and "read-only" in text
    assert text.count("buildkitsandbox") >= 3
    assert upper_entries(s) == ["etc", "etc/newfile"]


def test_missing_mount_targets_use_a_stub_layer(run: Runner, bare_rootfs: Path) -> None:
    etc = os.stat(bare_rootfs / "etc")
    result, s = run("test -s /etc/resolv.conf && ls /proc/self/ >/dev/null && ls /sys >/dev/null"
                    " && echo ok && touch /etc/created", lowers=[bare_rootfs])
    assert out(result) == "ok\n"
    assert upper_entries(s) == ["etc", "etc/created"]
    copied = os.stat(s.upper / "etc")  # the copy-up of /etc keeps the image's metadata
    assert stat.S_IMODE(copied.st_mode) == stat.S_IMODE(etc.st_mode) == 0o750
    result, s = run("true", lowers=[bare_rootfs])
    assert upper_entries(s) == []


def test_network_none_has_only_loopback(run: Runner) -> None:
    result, _ = run("ls /sys/class/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1",
                    network="none")
    assert out(result).split() == ["lo", "lo"]
    result, _ = run("cat /sys/class/net/lo/operstate /sys/class/net/lo/flags", network="none")
    assert int(out(result).split()[1], 16) & 1  # IFF_UP


def test_private_network_by_default(run: Runner) -> None:
    result, _ = run("ls /sys/class/net; cat /etc/resolv.conf")
    assert out(result).split()[:2] == ["lo", "tap0"]  # slirp4netns's device
    assert "nameserver 10.0.2.3" in out(result)


def test_host_network_needs_the_entitlement(run: Runner, rootfs: Path,
                                            scratch: Callable[[], Scratch]) -> None:
    with pytest.raises(EntitlementError, match="network.host"):
        run("true", network="host")
    host = sorted(os.listdir("/sys/class/net"))
    s = scratch()
    with Sandbox(hardening=Hardening.parse(allow=["network.host"])) as box:
        result = box.run(RunSpec(lowerdirs=[rootfs], upperdir=s.upper, workdir=s.work,
                                 argv=["ls", "/sys/class/net"], network="host"))
    assert out(result).split() == host


def test_whiteout_for_deleted_lower_file(run: Runner) -> None:
    result, s = run("rm /bin/ls")
    st = os.lstat(s.upper / "bin/ls")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert upper_entries(s) == ["bin", "bin/ls"]


def test_opaque_dir_for_recreated_lower_dir(run: Runner) -> None:
    result, s = run("rm -rf /usr/sbin && mkdir /usr/sbin && touch /usr/sbin/only")
    assert result.exit_code == 0
    assert os.getxattr(s.upper / "usr/sbin", "trusted.overlay.opaque") == b"y"
    assert upper_entries(s) == ["usr", "usr/sbin", "usr/sbin/only"]


def test_chown_to_other_ids(run: Runner) -> None:
    result, s = run("touch /tmp/f && chown 1000:2000 /tmp/f")
    st = os.lstat(s.upper / "tmp/f")
    assert (st.st_uid, st.st_gid) == (1000, 2000)


def test_several_lowers_top_first(sandbox: Sandbox, rootfs: Path, tmp_path: Path,
                                  scratch: Callable[[], Scratch]) -> None:
    top, middle = tmp_path / "top", tmp_path / "middle"
    (top / "etc").mkdir(parents=True)
    (middle / "etc").mkdir(parents=True)
    (top / "etc/layer").write_text("top\n")
    (middle / "etc/layer").write_text("middle\n")
    (middle / "etc/only-middle").write_text("m\n")
    s = scratch()
    result = sandbox.run(RunSpec([top, middle, rootfs], s.upper, s.work,
                                 argv=["/bin/cat", "/etc/layer", "/etc/only-middle"]))
    assert result.output_tail == b"top\nm\n"


def test_long_layer_paths(sandbox: Sandbox, rootfs: Path, tmp_path: Path,
                          scratch: Callable[[], Scratch]) -> None:
    # 60 lowers with ~150-character paths would overflow the one-page option string.
    layers = []
    for i in range(60):
        layer = tmp_path / ("x" * 120) / f"layer-{i:03d},with:odd-chars"
        (layer / "data").mkdir(parents=True)
        (layer / "data" / f"f{i}").write_text(str(i))
        layers.append(layer)
    s = scratch()
    result = sandbox.run(RunSpec([*layers, rootfs], s.upper, s.work,
                                 argv=["/bin/sh", "-c", "ls /data | wc -l"]))
    assert result.output_tail == b"60\n"


def test_extra_mounts(sandbox: Sandbox, rootfs: Path, tmp_path: Path,
                      scratch: Callable[[], Scratch]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "hit").write_text("cached\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    s = scratch()
    script = ("cat /run/secrets/token; stat -c '%a %u' /run/secrets/token; cat /cache/hit; "
              "echo new > /cache/new; touch /ro/x 2>/dev/null || echo ro-refused; "
              "touch /scratch/t && echo tmpfs-ok")
    result = sandbox.run(RunSpec(
        [rootfs], s.upper, s.work, argv=["/bin/sh", "-c", script],
        mounts=[SecretMount("/run/secrets/token", b"s3cr3t\n"),
                BindMount(cache, "/cache", readonly=False), BindMount(ro, "/ro"),
                TmpfsMount("/scratch")]))
    assert result.output_tail == b"s3cr3t\n400 0\ncached\nro-refused\ntmpfs-ok\n"
    assert (cache / "new").read_text() == "new\n"
    assert upper_entries(s) == []  # neither the secret nor any mount point is in the layer


def test_threaded_caller_and_concurrent_runs(sandbox: Sandbox, rootfs: Path,
                                             scratch: Callable[[], Scratch]) -> None:
    stop = threading.Event()
    idle = [threading.Thread(target=stop.wait) for _ in range(4)]
    for t in idle:
        t.start()
    results: list[RunResult] = []

    def worker(i: int) -> None:
        s = scratch()
        results.append(sandbox.run(RunSpec([rootfs], s.upper, s.work,
                                           argv=["/bin/sh", "-c", f"echo {i}; exit {i}"])))

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    try:
        for t in workers:
            t.start()
        for t in workers:
            t.join(30)
    finally:
        stop.set()
    assert sorted((r.exit_code, r.output_tail) for r in results) == [
        (i, f"{i}\n".encode()) for i in range(4)]


def test_fresh_helper_mode(rootfs: Path, scratch: Callable[[], Scratch]) -> None:
    s = scratch()
    with Sandbox(fork_server=False) as box:
        result = box.run(RunSpec([rootfs], s.upper, s.work, argv=["/bin/sh", "-c", "echo $$"]))
    assert result.output_tail == b"1\n"


def _mount_holders(upper: Path) -> set[str]:
    """Pids whose mount namespace still holds this run's upper dir or a sandbox mount of this
    process (other sessions on the machine have their own ``nbsandbox-<pid>`` mounts)."""
    mounts = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                text = Path(f"/proc/{pid}/mountinfo").read_text()
            except OSError:
                continue
            if str(upper) in text or f"nbsandbox-{os.getpid()} " in text:
                mounts.add(pid)
    return mounts


def _leftovers(marker: str, upper: Path, before: set[str]) -> tuple[list[str], list[str]]:
    """Processes matching ``marker``, and mount holders that appeared since ``before`` (other
    sandboxes alive in the same test session, e.g. the builder's, are not this run's leak)."""
    procs = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    return procs, sorted(_mount_holders(upper) - before)


def test_timeout_kills_everything(sandbox: Sandbox, rootfs: Path,
                                  scratch: Callable[[], Scratch]) -> None:
    s = scratch()
    before = _mount_holders(s.upper)
    spec = RunSpec([rootfs], s.upper, s.work, timeout=0.5,
                   argv=["/bin/sh", "-c", "sleep 31337 & sleep 31338; wait"])
    start = time.monotonic()
    with pytest.raises(BuildError, match="timed out"):
        sandbox.run(spec)
    assert time.monotonic() - start < 5
    assert _leftovers("sleep 3133", s.upper, before) == ([], [])


def test_interrupt_kills_everything(sandbox: Sandbox, rootfs: Path,
                                    scratch: Callable[[], Scratch]) -> None:
    s = scratch()
    before = _mount_holders(s.upper)

    def interrupt(chunk: bytes) -> None:
        raise KeyboardInterrupt

    spec = RunSpec([rootfs], s.upper, s.work, output=interrupt,
                   argv=["/bin/sh", "-c", "sleep 31339 & echo started; sleep 31340"])
    with pytest.raises(KeyboardInterrupt):
        sandbox.run(spec)
    assert _leftovers("sleep 3133", s.upper, before) == ([], [])
    # The sandbox is still usable afterwards.
    s2_result = sandbox.run(RunSpec([rootfs], s.upper.parent / "upper", s.work,
                                    argv=["/bin/true"]))
    assert s2_result.exit_code == 0
