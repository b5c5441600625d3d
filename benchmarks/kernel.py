#!/usr/bin/env python3
"""Kernel start time: a kernel from an image (``nbcontainer kernel install``) beside a kernel
started from the host's Python, launch to ``kernel_info`` reply, and the ratio.

    .venv/bin/python benchmarks/kernel.py [--runs 5] [--isolation auto|full|reduced|ptrace]

Builds (once per run, in a temporary store) 05-kernel-in-image's environment: the
debootstrap Debian, apt's python3, ipykernel from the notebooks' local wheelhouse in
/opt/venv. Each run starts a kernel with jupyter_client's KernelManager (what the Jupyter
server does), waits for its ``kernel_info`` reply over the relayed channels, then interrupts a running ``time.sleep(60)`` (SIGINT to
the launcher, forwarded to the kernel in the sandbox) and shuts it down. Reports the median
and best of each. Needs root (debootstrap, the sandbox). A report, not a test: exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


# notebooks/05-kernel-in-image.ipynb's environment
DOCKERFILE = """FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \\
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN --mount=type=bind,source=wheels,target=/wheels pip install --no-cache-dir --no-index \\
    --find-links /wheels ipykernel tabulate
"""


def _one(kernel: str, cwd: Path) -> tuple[float, float]:
    """(seconds to the kernel_info reply, seconds from interrupt to the execute reply)."""
    from jupyter_client.manager import KernelManager

    start = time.monotonic()
    km = KernelManager(kernel_name=kernel)
    km.start_kernel(cwd=str(cwd))
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=120)  # sends kernel_info requests until one is answered
        ready = time.monotonic() - start
        msg_id = kc.execute("import time; time.sleep(60)")
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and \
                    msg["msg_type"] == "execute_input":
                break
        time.sleep(0.3)
        t0 = time.monotonic()
        km.interrupt_kernel()
        while kc.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
            pass
        return ready, time.monotonic() - t0
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--isolation", default=None)
    ap.add_argument("--allow", action="append", default=[],
                    help="network.host (the ptrace rung has no network of its own)")
    a = ap.parse_args()
    from nbcontainer import api
    from nbcontainer.rootfs import cached_debian_rootfs
    from nbcontainer.store import Store
    from scripts.notebook_env import DEBIAN_CACHE, wheelhouse

    work = Path(tempfile.mkdtemp(prefix="nbbench-kernel-"))
    os.environ["JUPYTER_DATA_DIR"] = str(work / "jupyter")
    st = Store(work / "store")
    api.import_image(cached_debian_rootfs(DEBIAN_CACHE), "debian:bookworm", store=st)
    ctx = work / "ctx"
    shutil.copytree(wheelhouse(), ctx / "wheels")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    t = time.monotonic()
    api.build(ctx / "Dockerfile", ctx, tags=["bench-kernel:1"], store=st)
    print(f"image built in {time.monotonic() - t:.1f}s; load average "
          f"{os.getloadavg()[0]:.2f}; {a.runs} runs each")
    api.install_kernel("bench-kernel:1", name="bench-image", store=st, isolation=a.isolation,
                       allow=a.allow)
    results: dict[str, list[tuple[float, float]]] = {}
    for label, kernel in (("host Python (ipykernel)", "python3"),
                          ("kernel from an image", "bench-image")):
        results[label] = [_one(kernel, work) for _ in range(a.runs)]
    print(f"{'':28} {'start median':>13} {'start best':>11} {'interrupt median':>17}")
    for label, rows in results.items():
        starts = [r[0] for r in rows]
        interrupts = [r[1] for r in rows]
        print(f"{label:28} {statistics.median(starts):12.2f}s {min(starts):10.2f}s "
              f"{statistics.median(interrupts):16.3f}s")
    host, image = (statistics.median(r[0] for r in rows) for rows in results.values())
    print(f"ratio (image / host, median start): {image / host:.2f}x")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
