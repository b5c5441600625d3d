"""A private Docker engine for the benchmarks: Debian's docker.io 20.10 (``dockerd`` with its
embedded BuildKit) on its own socket, data root and exec root, with no bridge, iptables rules,
masquerading or ip_forward change, driven by Debian's client (``/usr/bin/docker``: the
``docker`` first on PATH on these machines has no buildx and refuses BuildKit builds).

The test suite has its own copy of this start/stop logic with the leftover checks
(tests/support/docker.py); benchmarks import nothing from ``tests``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
# What dockerd/containerd create outside their directories whatever the flags say.
SYSTEM_DIRS = ("/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd")


def available() -> bool:
    return os.geteuid() == 0 and os.path.isfile(DOCKER) and os.path.isfile(DOCKERD)


class PrivateDockerd:
    """``with PrivateDockerd(home, "--registry-mirror", URL) as d: d.docker("build", …)``"""

    def __init__(self, home: Path, *extra_args: str) -> None:
        self.home = home
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{home / 'docker.sock'}",
                    "DOCKER_BUILDKIT": "1", "DOCKER_CONFIG": str(home / "client")}
        self._existed = [d for d in SYSTEM_DIRS if os.path.exists(d)]

    @property
    def data_root(self) -> Path:
        return self.home / "root"

    def __enter__(self) -> PrivateDockerd:
        h = self.home
        h.mkdir(parents=True, exist_ok=True)
        (h / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(h / "key.json")}))
        argv = [DOCKERD, "--host", f"unix://{h / 'docker.sock'}", "--data-root",
                str(self.data_root), "--exec-root", str(h / "exec"), "--pidfile",
                str(h / "docker.pid"), "--iptables=false", "--ip-masq=false", "--bridge=none",
                "--ip-forward=false", "--config-file", str(h / "daemon.json"), *self.extra_args]
        with open(h / "dockerd.log", "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        for _ in range(600):
            if self.proc.poll() is None and (h / "docker.sock").exists() and \
                    self.docker("version", check=False).returncode == 0:
                return self
            time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"dockerd did not start; see {h / 'dockerd.log'}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for d in SYSTEM_DIRS:
            if d not in self._existed:
                with contextlib.suppress(OSError):
                    os.rmdir(d)

    def docker(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([DOCKER, *map(str, args)], env=self.env, capture_output=True)
        if check and proc.returncode != 0:
            raise SystemExit(f"docker {' '.join(map(str, args))}: {proc.stderr.decode()[-2000:]}")
        return proc

    def timed(self, *args: str | Path) -> float:
        start = time.perf_counter()
        self.docker(*args)
        return time.perf_counter() - start
