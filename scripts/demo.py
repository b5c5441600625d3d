"""The main job: a root filesystem becomes an image; export it; show its layers and manifest.

Everything is written under out/demo/ (a fresh store each run), so running it twice is safe.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from nbcontainer import api, humanize
from nbcontainer.rootfs import make_busybox_rootfs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "demo"


def cli(*args: str) -> str:
    cmd = [sys.executable, "-m", "nbcontainer.cli", "--root", str(OUT / "store"), *args]
    print("$ nbcontainer " + " ".join(args))
    res = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(res.stdout)
    if res.returncode:
        sys.stderr.write(res.stderr)
        raise SystemExit(res.returncode)
    return res.stdout


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    rootfs = make_busybox_rootfs(OUT / "rootfs")
    cli("import", str(rootfs), "demo/busybox:1.0", "--change", 'CMD ["/bin/sh"]',
        "--change", "ENV LANG=C.UTF-8")
    cli("images")
    cli("save", "--format", "oci-archive", "-o", str(OUT / "busybox.oci.tar"), "demo/busybox:1.0")
    cli("save", "-o", str(OUT / "busybox.docker.tar"), "demo/busybox:1.0")
    cli("save", "--format", "oci-dir", "-o", str(OUT / "busybox.oci"), "demo/busybox:1.0")

    img = api.image("demo/busybox:1.0", store=api.get_store(OUT / "store"))
    print(f"\n{img.name}: {len(img.layers)} layer(s), {humanize.size(img.size)}, {img.digest}")
    for layer in img.layers:
        files = list(layer.files())
        print(f"  layer {layer.index}: {layer.digest}  {humanize.size(layer.size)} compressed, "
              f"{len(files)} entries  ({layer.created_by})")
        for name, size in files[:8]:
            print(f"      {name}  {size}")
        if len(files) > 8:
            print(f"      … {len(files) - 8} more")
    print("\nmanifest:")
    print(json.dumps(img.manifest.to_dict(), indent=2))
    print("\nconfig:")
    print(json.dumps(img.config.to_dict(), indent=2))
    print(f"\nwritten: {OUT}/busybox.oci.tar, busybox.docker.tar, busybox.oci/ (store: {OUT}/store)")


if __name__ == "__main__":
    main()
