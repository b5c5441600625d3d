"""What a kernelspec from ``nbcontainer kernel install`` runs:
``python -m nbcontainer.kernel.launcher SPECDIR -f CONNECTION_FILE``.

1. Read the kernel's record (``SPECDIR/kernel.json``) and the server's connection file.
2. Make a private directory (0700) with a ``k`` subdirectory for the kernel's unix sockets
   and a copy of the connection file that says ``"transport": "ipc"``; bind-mount the
   subdirectory at ``/run/nbcontainer-kernel``.
3. Listen on the connection file's TCP ports and relay each connection to the kernel's
   socket of the same channel (``relay.py``).
4. Run ``python3 -m ipykernel_launcher -f …`` from the pinned image in the sandbox, under an
   init (pid 1 reaps and forwards signals), with the notebook's directory mounted at the same
   path as the working directory; its output goes to our stderr (the server's log).

Signals: Jupyter interrupts with SIGINT to our process group; we forward it (and SIGTERM,
SIGHUP, SIGQUIT) through the sandbox's control socket to the kernel. A SIGTERM that the
kernel does not obey within ``TERM_GRACE`` seconds becomes SIGKILL of the whole sandbox. If
the server dies (our parent changes), the kernel is stopped the same way. When the kernel
exits, the relay stops and the directory is removed; the sandbox leaves no process or mount
(its pid namespace ends with its init; a killed launcher is noticed by the sandbox helper,
which kills the tree, and by the cleaner process, which removes the directory).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import KernelError, NbcontainerError
from ..sandbox.spec import BindMount, Control
from ..sandbox.volumes import parse_volume
from .relay import CHANNELS, Relay
from .spec import CONTAINER_DIR, KernelRecord, read

if TYPE_CHECKING:
    from ..image import Image

TERM_GRACE = 3.0
PARENT_POLL = 0.5
TAIL = 8192
# A kernel without ``--allow network.host`` gets a network namespace with only its own
# loopback: the kernel talks to Jupyter through unix sockets, and nothing of the host's
# network (the Jupyter server's own port included) is in reach.
PRIVATE_NETWORK = "none"
MISSING = ("No module named ipykernel", "No module named 'ipykernel")
PASSED_ENV = ("JPY_SESSION_NAME",)


def pinned_reference(record: KernelRecord) -> str:
    """``name@sha256:…``: the kernel's image by digest, under its name (tag dropped)."""
    name = record.image.split("@")[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return f"{name}@{record.digest}"


def network_mode(record: KernelRecord) -> str:
    return "host" if "network.host" in record.allow else PRIVATE_NETWORK


class Launch:
    """One kernel's life: directory, relay, sandbox, signals, cleanup."""

    def __init__(self, specdir: Path, connection_file: Path) -> None:
        found = read(specdir)
        if found is None:
            raise KernelError(f"{specdir}/kernel.json is not an nbcontainer kernelspec",
                              hint="run `nbcontainer kernel install IMAGE` again")
        self.name, self.record = found.name, found.record
        self.conn: dict[str, Any] = json.loads(connection_file.read_text())
        self.control = Control()
        self.tail = bytearray()
        self.stopping = threading.Event()
        self.tmp: Path | None = None
        self.sockdir = Path()
        self.relay: Relay | None = None
        self.cleaner: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ setup
    def _prepare(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="nbcontainer-kernel-"))
        self.sockdir = self.tmp / "k"
        self.sockdir.mkdir()
        os.chmod(self.sockdir, 0o777)  # any USER of the image binds here; the parent is 0700
        conn = dict(self.conn, transport="ipc", ip=f"{CONTAINER_DIR}/k")
        path = self.sockdir / "connection.json"
        path.write_text(json.dumps(conn))
        os.chmod(path, 0o644)
        self.cleaner = _cleaner(self.tmp)
        if self.conn.get("transport", "tcp") != "tcp":
            raise KernelError(f"the server asked for transport {self.conn.get('transport')!r}",
                              hint="kernels from images relay the server's tcp channels")
        ports = [int(self.conn[c]) for c in CHANNELS]
        self.relay = Relay(str(self.conn.get("ip", "127.0.0.1")), ports, self.sockdir)
        self.relay.start()

    def _mounts(self) -> list[BindMount]:
        mounts = [BindMount(self.sockdir, CONTAINER_DIR, readonly=False)]
        mounts += [parse_volume(v) for v in self.record.volumes]
        cwd = self._cwd()
        if cwd is not None:
            mounts.append(BindMount(Path(cwd), cwd, readonly=False))
        return mounts

    def _cwd(self) -> str | None:
        """The notebook's directory (Jupyter starts us there), mounted at the same path."""
        if not self.record.workdir_mount:
            return None
        cwd = os.getcwd()
        return None if cwd == "/" else cwd

    def _env(self) -> dict[str, str]:
        env = dict(self.record.env)
        env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
        # what %freeze_image starts from in this kernel: the image it runs, by digest
        env["NBCONTAINER_IMAGE"] = pinned_reference(self.record)
        env["NBCONTAINER_KERNEL"] = self.name
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    # ------------------------------------------------------------------ signals
    def _forward(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGINT:
            self.control.signal(signal.SIGINT)
            return
        self.stop(signum)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask the kernel to go; kill the sandbox if it is still there after the grace."""
        self.control.signal(signum)
        if not self.stopping.is_set():
            self.stopping.set()
            timer = threading.Timer(TERM_GRACE, self.control.signal, args=(signal.SIGKILL,))
            timer.daemon = True
            timer.start()

    def _watch_parent(self, parent: int) -> None:
        while not self.stopping.wait(PARENT_POLL):
            if os.getppid() != parent:
                self.stop()
                return

    def _output(self, chunk: bytes) -> None:
        self.tail += chunk
        del self.tail[:-TAIL]
        sys.stderr.buffer.write(chunk)
        sys.stderr.buffer.flush()

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        from ..image import Image
        from ..store import Store

        try:
            img = Image.load(Store(self.record.store), self.record.digest)
        except OSError as exc:  # e.g. installed by another user, whose store is private
            raise KernelError(
                f"kernel {self.name}: cannot open the store {self.record.store} "
                f"({exc.strerror})", hint="install the kernel as the user who runs Jupyter "
                "(nbcontainer kernel install --user)") from None
        except NbcontainerError:
            raise KernelError(
                f"kernel {self.name}: its image {self.record.image} "
                f"({self.record.digest}) is no longer in the store {self.record.store}",
                hint=f"build or pull it again, then `nbcontainer kernel install "
                     f"{self.record.image} --name {self.name}`") from None
        self._prepare()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, self._forward)
        threading.Thread(target=self._watch_parent, args=(os.getppid(),), daemon=True).start()
        argv = [self.record.python, "-m", "ipykernel_launcher", "-f",
                f"{CONTAINER_DIR}/connection.json"]
        network = network_mode(self.record)
        if network != "host" and self._rung(img) == "ptrace":
            # (proot has no network namespace: there the only network is the host's)
            raise KernelError(f"kernel {self.name}: the ptrace rung has no network of its own "
                              "for the kernel", hint=(
                "here a kernel can only share the host's network: install it with "
                "--allow network.host (it then reaches this machine's loopback)"))
        try:
            code = img.run(argv, env=self._env(), network=network, workdir=self._cwd(),
                           mounts=self._mounts(), init=True, control=self.control,
                           output=self._output, isolation=self.record.isolation,
                           allow=list(self.record.allow))
        except NbcontainerError as exc:
            if network == "host" or "network" not in exc.message:
                raise
            raise KernelError(f"kernel {self.name}: {exc.message}", hint=(
                "here a kernel can only share the host's network: install it with "
                "--allow network.host (it then reaches this machine's loopback)")) from None
        if code and not self.stopping.is_set():
            self._explain(code)
        return code

    def _rung(self, img: Image) -> str:
        """The isolation rung the kernel will run on (the probe is cached on disk)."""
        from ..sandbox.ladder import choose
        from ..sandbox.probe import probe
        from ..store.snapshots import build_area

        return choose(probe(build_area(img.store)), self.record.isolation).rung

    def _explain(self, code: int) -> None:
        text = self.tail.decode(errors="replace")
        if any(m in text for m in MISSING) or "executable file not found" in text:
            sys.stderr.write(
                f"nbcontainer kernel {self.name}: the image {self.record.image} has no "
                f"ipykernel for {self.record.python}.\nAdd this line to its Dockerfile and "
                f"run `nbcontainer kernel install` again:\n"
                f"    RUN {self.record.python} -m pip install ipykernel\n")
        else:
            sys.stderr.write(f"nbcontainer kernel {self.name}: the kernel exited with "
                             f"code {code}\n")
        sys.stderr.flush()

    def close(self) -> None:
        self.stopping.set()
        if self.relay is not None:
            self.relay.close()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.cleaner is not None and self.cleaner.stdin is not None:
            self.cleaner.stdin.close()  # it finds nothing left to remove
            self.cleaner.wait()


def _cleaner(path: Path) -> subprocess.Popen[bytes]:
    """A process that removes ``path`` once we are gone, however we went (it waits for EOF
    on a pipe only we hold)."""
    code = ("import shutil,sys\nsys.stdin.buffer.read()\n"
            "shutil.rmtree(sys.argv[1], ignore_errors=True)\n")
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", code, str(path)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            close_fds=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nbcontainer.kernel.launcher")
    p.add_argument("specdir", type=Path)
    p.add_argument("-f", "--connection-file", type=Path, required=True)
    a = p.parse_args(argv)
    launch = None
    try:
        launch = Launch(a.specdir, a.connection_file)
        return launch.run()
    except NbcontainerError as exc:
        sys.stderr.write(f"nbcontainer kernel: {exc}\n")
        return 1
    finally:
        if launch is not None:
            launch.close()


if __name__ == "__main__":
    sys.exit(main())
