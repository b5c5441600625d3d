"""One kernel from an image, exercised the way Jupyter uses it (nbclient and jupyter_client's
KernelManager): run by the root tests in-process and, as the unprivileged user, as
``python -m tests.kernel.session KERNEL WORKDIR TOKEN`` printing its findings as JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

NOTEBOOK = [
    "import sys; print(sys.executable); print(sys.prefix)",
    "import tinypkg; print(tinypkg.VALUE)",
    "open('written-by-kernel.txt', 'w').write('hello from the image'); print('written')",
    "print(open('/marker').read().strip())",
]


def run_notebook(kernel: str, workdir: Path) -> list[str]:
    """Execute NOTEBOOK with nbclient on ``kernel``; each cell's stdout."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK]
    NotebookClient(nb, kernel_name=kernel, timeout=120, startup_timeout=120,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return ["".join(o.get("text", "") for o in cell.outputs) for cell in nb.cells]


def run_code(kernel: str, code: str, workdir: Path) -> str:
    """Start ``kernel``, run ``code``, shut it down; its stdout (and error name, if any)."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=kernel)
    km.start_kernel(cwd=str(workdir))
    kc = km.client()
    out: list[str] = []
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=120)

        def hook(msg: dict[str, Any]) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] == "error":
                out.append(content["ename"])

        kc.execute_interactive(code, output_hook=hook, timeout=60)
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    return "".join(out)


def interrupt_restart_shutdown(kernel: str, workdir: Path) -> dict[str, Any]:
    """Interrupt a ``time.sleep(60)``, restart, run a cell, shut down; what happened."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=kernel)
    km.start_kernel(cwd=str(workdir))
    launcher = km.provisioner.process.pid  # type: ignore[union-attr]
    kc = km.client()
    found: dict[str, Any] = {"launcher": launcher}
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        msg_id = kc.execute("import time; time.sleep(60)")
        while True:  # the cell runs once the kernel says busy for it
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and \
                    msg["msg_type"] == "execute_input":
                break
        time.sleep(0.5)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=50)
        while reply["parent_header"].get("msg_id") != msg_id:  # wait_for_ready's extras
            reply = kc.get_shell_msg(timeout=50)
        found["interrupt_reply"] = reply["content"].get("ename") or reply["content"]["status"]
        km.restart_kernel()
        kc.wait_for_ready(timeout=120)
        found["after_restart"] = kc.execute_interactive("print(6 * 7)", timeout=60)[
            "content"]["status"]
        found["launcher_after_restart"] = km.provisioner.process.pid  # type: ignore[union-attr]
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    return found


def serve(kernel: str, workdir: Path) -> None:
    """A stand-in for a Jupyter server: start the kernel, run a cell, say so, wait to be
    killed (the kernel's stderr is this process's: the server log)."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=kernel)
    km.start_kernel(cwd=str(workdir))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    kc.execute_interactive("import sys; print('to the server log', file=sys.__stderr__)",
                           timeout=60)
    print(f"ready {km.provisioner.process.pid}", flush=True)  # type: ignore[union-attr]
    time.sleep(600)


def leftovers(token: str) -> list[str]:
    """Processes whose environment carries ``token`` (launcher, sandbox, kernel), temp dirs
    of the launcher and host mounts naming it."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if token.encode() in f.read():
                    found.append(f"process {pid}: " + Path(f"/proc/{pid}/cmdline")
                                 .read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    found += [f"temp dir {p}" for p in tmp.glob("nbcontainer-kernel-*")]
    found += [f"mount {line}" for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if "nbcontainer-kernel" in line]
    return found


def exercise(kernel: str, workdir: Path, token: str) -> dict[str, Any]:
    os.environ["NBC_KERNEL_TEST"] = token  # the launcher and its sandbox inherit it
    result: dict[str, Any] = {"cells": run_notebook(kernel, workdir)}
    result["written"] = (workdir / "written-by-kernel.txt").read_text() \
        if (workdir / "written-by-kernel.txt").exists() else None
    result.update(interrupt_restart_shutdown(kernel, workdir))
    deadline = time.monotonic() + 10  # processes may take a moment to be reaped
    while (left := leftovers(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    result["leftovers"] = left
    return result


def as_user(archive: Path, image: str, kernel: str, workdir: Path, token: str) -> dict[str, Any]:
    """The unprivileged user's whole story: load the image into its own store, install the
    kernel (its own Jupyter data dir), exercise it."""
    from nbcontainer import api

    api.load(archive)
    installed = api.install_kernel(image, name=kernel, env={"NBC_KERNEL_TEST": token})
    spec = json.loads((installed.path / "kernel.json").read_text())
    return {"argv": spec["argv"], **exercise(kernel, workdir, token)}


if __name__ == "__main__" and sys.argv[1] == "serve":
    serve(sys.argv[2], Path(sys.argv[3]))
elif __name__ == "__main__":
    print(json.dumps(as_user(Path(sys.argv[1]), *sys.argv[2:4], Path(sys.argv[4]),
                             sys.argv[5])))
