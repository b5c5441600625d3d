"""The Docker engine as a test peer: a private ``dockerd`` (Debian's docker.io 20.10 and the
BuildKit it embeds) started for one test session, the ``docker`` command bound to it, the
BuildKit side of the differential harness, and probes run under ``docker run``'s security
profiles.

The daemon never touches a system-wide socket, data root or network setting: everything it
writes is under its own directory (socket, data root, exec root, pidfile, its trust key and
an empty daemon.json, so /etc/docker/daemon.json cannot configure it); ``--bridge=none
--iptables=false --ip-masq=false --ip-forward=false`` keep it off the host's network
configuration. Builds therefore use ``--network host`` and containers ``--network none``.
What it cannot be told to put elsewhere (/run/docker/plugins, containerd's shim socket dir
/run/containerd/s) is removed on stop when it was not there before. ``leftovers()`` lists
whatever remains, and the tests assert it is empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nbcontainer.errors import NbcontainerError
from tests.support.differential import Ignore, flatten

# Debian's client: the first ``docker`` on PATH on these machines is a newer client without
# buildx, which refuses BuildKit builds against this daemon.
DOCKER = Path("/usr/bin/docker")
DOCKERD = Path("/usr/sbin/dockerd")
# Hard-coded by dockerd/containerd 20.10/1.6 whatever the flags say (see the module doc).
SYSTEM_DIRS = (Path("/run/docker/plugins"), Path("/run/docker"), Path("/run/containerd/s"),
               Path("/run/containerd"))
SYSTEM_FILES = (Path("/etc/docker/key.json"), Path("/var/run/docker.sock"),
                Path("/var/run/docker.pid"), Path("/run/containerd/containerd.sock"))
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")

# ``docker run`` profiles the security and isolation tests compare with: Docker's default
# (moby's seccomp profile, default capabilities; no AppArmor on these machines) and the
# closest stand-in for a Kubernetes pod with RuntimeDefault under the "restricted" standard.
PROFILES: dict[str, tuple[str, ...]] = {
    "default": (),
    "pod": ("--user", "1000", "--security-opt", "no-new-privileges"),
}


class DockerdError(NbcontainerError):
    """The private Docker daemon did not start, or a docker command failed."""


def _ip_forward() -> str:
    return IP_FORWARD.read_text().strip()


def _docker_chains() -> list[str]:
    """iptables chains and links Docker would have created (it must create none)."""
    found = []
    for tool in ("iptables-save", "ip6tables-save"):
        if shutil.which(tool):
            out = subprocess.run([tool], capture_output=True, text=True).stdout
            found += [f"{tool}: {line}" for line in out.splitlines()
                      if line.startswith(":DOCKER") or "docker0" in line]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [f"link: {line.split(':')[1].strip()}" for line in links.splitlines()
              if line.split(":")[1].strip().startswith(("docker0", "br-"))]
    return found


@dataclass
class Dockerd:
    """A private dockerd under ``home``; ``start()``, then ``docker(...)``, then ``stop()``."""

    home: Path
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    # what existed before start: system paths it may create, and ip_forward's value
    _existed: list[Path] = field(default_factory=list)
    _ip_forward: str = ""

    @property
    def sock(self) -> Path:
        return self.home / "docker.sock"

    @property
    def env(self) -> dict[str, str]:
        """The environment of a ``docker`` client talking to this daemon with BuildKit."""
        return {**os.environ, "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_BUILDKIT": "1",
                "DOCKER_CONFIG": str(self.home / "client"), "DOCKER_CLI_EXPERIMENTAL": "enabled"}

    @property
    def command(self) -> Path:
        """A ``docker`` executable bound to this daemon (a shell wrapper), for tests that
        need a command rather than ``docker()``."""
        return self.home / "bin" / "docker"

    def argv(self) -> list[str]:
        h = self.home
        return [str(DOCKERD), "--host", f"unix://{self.sock}", "--data-root", str(h / "root"),
                "--exec-root", str(h / "exec"), "--pidfile", str(h / "docker.pid"),
                "--iptables=false", "--ip-masq=false", "--bridge=none", "--ip-forward=false",
                "--config-file", str(h / "daemon.json"), *self.extra_args]

    def start(self, timeout: float = 60.0) -> Dockerd:
        for exe in (DOCKER, DOCKERD):
            if not exe.is_file():
                raise DockerdError(f"{exe} is missing", hint="run scripts/setup.sh (docker.io)")
        self.home.mkdir(parents=True, exist_ok=True)
        # the trust key (default /etc/docker/key.json) has no flag, only this config key
        (self.home / "daemon.json").write_text(json.dumps(
            {"deprecated-key-path": str(self.home / "key.json")}))
        self.command.parent.mkdir(exist_ok=True)
        self.command.write_text(
            "#!/bin/sh\n" + "".join(f"export {k}='{self.env[k]}'\n" for k in
                                    ("DOCKER_HOST", "DOCKER_BUILDKIT", "DOCKER_CONFIG"))
            + f'exec {DOCKER} "$@"\n')
        self.command.chmod(0o755)
        self._existed = [p for p in (*SYSTEM_DIRS, *SYSTEM_FILES) if p.exists()]
        self._ip_forward = _ip_forward()
        log = open(self.home / "dockerd.log", "wb")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.sock.exists() and self.docker("version", check=False, timeout=10).returncode == 0:
                return self
            time.sleep(0.1)
        tail = (self.home / "dockerd.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise DockerdError(f"dockerd under {self.home} did not start:\n{tail}",
                           hint="see the log above; the daemon needs root and overlayfs")

    def docker(self, *args: str | Path, check: bool = True, timeout: float = 300,
               input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([str(DOCKER), *map(str, args)], env=self.env, input=input,
                              capture_output=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise DockerdError(f"docker {' '.join(map(str, args))} failed "
                               f"({proc.returncode}):\n{proc.stderr.decode()[-3000:]}",
                               hint=f"the daemon's log: {self.home / 'dockerd.log'}")
        return proc

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, wait; SIGKILL the session if it hangs. Then unmount anything left under
        home and remove the system dirs this daemon created (only when empty)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for pid in self.processes():  # containerd and shims it left, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mnt in reversed(self.mounts()):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        for sock in self.sockets():  # containerd does not remove its ttrpc/debug sockets
            sock.unlink(missing_ok=True)
        for d in SYSTEM_DIRS:
            if d not in self._existed:
                with contextlib.suppress(OSError):
                    d.rmdir()

    # ------------------------------------------------------------------ what is left
    def processes(self) -> list[int]:
        """Processes whose command line names this daemon's directory."""
        out = []
        needle = str(self.home).encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if needle in (entry / "cmdline").read_bytes():
                        out.append(int(entry.name))
                except OSError:
                    continue
        return out

    def mounts(self) -> list[str]:
        prefix = str(self.home)
        out = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                out.append(point)
        return out

    def sockets(self) -> list[Path]:
        return [p for p in (self.sock, *(self.home / "exec").rglob("*")) if p.is_socket()]

    def leftovers(self) -> list[str]:
        """Everything this daemon left on the machine after stop(); empty when clean."""
        left = [f"process {pid}" for pid in self.processes()]
        left += [f"mount {m}" for m in self.mounts()]
        left += [f"socket {p}" for p in self.sockets()]
        left += [f"created {p}" for p in (*SYSTEM_DIRS, *SYSTEM_FILES)
                 if p.exists() and p not in self._existed]
        if _ip_forward() != self._ip_forward:
            left.append(f"net.ipv4.ip_forward changed to {_ip_forward()}")
        return left + _docker_chains()

    # ------------------------------------------------------------------ images
    def load(self, archive: Path) -> None:
        self.docker("load", "-i", archive)

    def build(self, ctx: Path, tag: str, *flags: str, dockerfile: Path | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
        """``docker build`` with BuildKit on the host network (there is no bridge)."""
        extra = ("-f", str(dockerfile)) if dockerfile else ()
        return self.docker("build", "--network", "host", "--progress", "plain", *extra,
                           *flags, "-t", tag, ctx, timeout=timeout)

    def save_layers(self, ref: str, dest: Path) -> tuple[list[Path], dict]:
        """``docker save`` of one image, unpacked under ``dest``: (layer tars, config)."""
        dest.mkdir(parents=True, exist_ok=True)
        archive = dest / "image.tar"
        self.docker("save", "-o", archive, ref)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
        entry = json.loads((dest / "manifest.json").read_text())[0]
        config = json.loads((dest / entry["Config"]).read_text())
        return [dest / layer for layer in entry["Layers"]], config

    def probe(self, image: str, command: Sequence[str], profile: str = "default",
              *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        """Run ``command`` in ``image`` under one of PROFILES (no network), unchecked."""
        return self.docker("run", "--rm", "--network", "none", *PROFILES[profile], *extra,
                           image, *command, check=False, timeout=timeout)


# ---------------------------------------------------------------------------- differential
PEER = "docker 20.10 (BuildKit)"

# Every difference we accept from ``docker build`` (BuildKit as vendored by moby 20.10.24),
# each with its reason and, where it is a bug of that BuildKit, the upstream fix.
IGNORES: tuple[Ignore, ...] = (
    Ignore("setuid/setgid dropped by COPY --chmod",
           "this BuildKit (v0.8) turns --chmod=4755/2750 into 0755/0750: the special bits are "
           "lost converting the octal value to Go's os.FileMode; nbcontainer and buildah keep "
           "them, as current BuildKit (v0.13+) does",
           upstream="tonistiigi/fsutil#168 (moby/buildkit#3920)",
           paths=frozenset({"s", "g"}), cases=frozenset({"copy-chmod-setuid"}),
           only="mode", mode_bits=0o7000),
    Ignore("empty mount-target dirs",
           "this BuildKit leaves the empty directories it created as RUN --mount targets "
           "(/mc, /md, /mt, /run/secrets) in the layer (it removes file targets); BuildKit "
           "v0.11+ removes them too, as nbcontainer does",
           upstream="moby/buildkit#3307, moby/buildkit#3314",
           paths=frozenset({"mc", "md", "mt", "run"}),
           cases=frozenset({"mount-cache", "mount-bind-context", "mount-tmpfs",
                            "mount-secret"})),
)


def docker_result(daemon: Dockerd, work: Path, ctx: Path, name: str,
                  flags: Sequence[str] = ()) -> tuple[dict[str, tuple], dict]:
    """``docker build`` of ``ctx``, read back through ``docker save``: (tree, config)."""
    tag = f"localhost/diff-{name}:latest"
    daemon.build(ctx, tag, *flags)
    saved = work / f"docker-save-{name}"
    shutil.rmtree(saved, ignore_errors=True)
    layers, config = daemon.save_layers(tag, saved)
    return flatten(layers, work / f"flat-docker-{name}"), config
