#!/usr/bin/env python3
"""The image view with a 30,000-file layer: time to first HTML and its size.

    .venv/bin/python benchmarks/html_view.py [--files 30000] [--runs 3]

A real image: a directory of ``--files`` files (a Python site-packages-like shape, 30 top
directories × 300 subdirectories) imported as one layer, plus a layer that overwrites and
deletes some of them (so the efficiency pass has work). Phases, median of ``--runs``:

- read: the layer's tar entries (strict reader, from the gzip blob);
- model: the dive tree (marking, per-directory sizes, efficiency);
- html: the ``<details>`` rendering;
- bundle: all of the above, cold, as the notebook shows an ``Image``;
- warm: the bundle again (entries and the tree of that layer stack cached in-process, as for
  another image with the same layers; an image with more layers on top reads only those but
  builds its tree again: about the model time).

Reading is bounded below by gunzip of the whole layer (the tar has no index): ``gunzip`` is
printed too, so the part that is ours (parse + model + html) can be read off.

For comparison, dive reads the same layer from a docker-archive (when ``dive`` is installed).
Target (issue 6): the bundle in < 1 s and < 2 MB. A report, not a test: always exits 0.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nbcontainer import analysis, api  # noqa: E402
from nbcontainer.notebook import views  # noqa: E402
from nbcontainer.notebook.views import html  # noqa: E402


def make_tree(root: Path, n: int) -> None:
    for i in range(n):
        d = root / "usr/lib/python3/site-packages" / f"pkg{i % 30}" / f"mod{i % 300}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file_{i:06d}.py").write_bytes(b"x" * (200 + i % 5000))


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=30_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nbc-htmlbench-"))
    try:
        os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
        st = api.get_store(tmp / "store")
        t0 = time.perf_counter()
        make_tree(tmp / "rootfs", a.files)
        img = api.import_image(tmp / "rootfs", "bench/big:1", store=st)
        print(f"setup: {a.files} files imported in {time.perf_counter() - t0:.1f}s "
              f"({html.size(img.size)} compressed)")
        read, model, render, bundle, warm, gunzip, sizes = [], [], [], [], [], [], []
        from nbcontainer.layers import open_layer

        for _ in range(a.runs):
            analysis.ENTRIES.clear()
            analysis.TREES.clear()
            t0 = time.perf_counter()
            for layer in img.layers:
                layer.entries()
            t1 = time.perf_counter()
            tree = img.tree()
            t2 = time.perf_counter()
            text = html.render_image(img, tree)
            t3 = time.perf_counter()
            read.append(t1 - t0)
            model.append(t2 - t1)
            render.append(t3 - t2)
            analysis.ENTRIES.clear()
            analysis.TREES.clear()
            t0 = time.perf_counter()
            data = views.image_bundle(img)
            bundle.append(time.perf_counter() - t0)
            sizes.append(len(data["text/html"].encode()))
            t0 = time.perf_counter()
            views.image_bundle(img)
            warm.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with open_layer(st.blobs.path(img.layers[0].digest)) as stream:
                stream.drain()
            gunzip.append(time.perf_counter() - t0)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average {load} on {os.cpu_count()} CPUs (timings scale with it)")
        print(f"gunzip {median(gunzip) * 1000:7.1f} ms   (floor of read: the whole layer)")
        print(f"read   {median(read) * 1000:7.1f} ms")
        print(f"model  {median(model) * 1000:7.1f} ms")
        print(f"html   {median(render) * 1000:7.1f} ms   ({len(text.encode()) / 1000:.1f} kB)")
        print(f"warm   {median(warm) * 1000:7.1f} ms   (same layers: entries and tree cached)")
        b, s = median(bundle), max(sizes)
        ok = b < 1.0 and s < 2_000_000
        print(f"bundle {b * 1000:7.1f} ms   html {s / 1000:.1f} kB   "
              f"target < 1000 ms and < 2000 kB: {'OK' if ok else 'MISSED'}")
        if shutil.which("dive"):
            import subprocess

            arch = tmp / "img.tar"
            api.save(["bench/big:1"], arch, store=st)
            t0 = time.perf_counter()
            subprocess.run(["dive", "--source", "docker-archive", str(arch), "--ci"],
                           capture_output=True, env={**os.environ, "CI": "true"})
            dt = time.perf_counter() - t0
            print(f"dive --ci on the same image: {dt * 1000:.0f} ms "
                  f"(ratio nbcontainer/dive {b / dt:.2f})")
        else:
            print("dive: not installed (no comparison)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
