"""The main job: run ``notebooks/01-quickstart.ipynb`` end to end and write its HTML.

Starts what the notebook needs (a local registry that serves a debootstrap Debian as
``debian:bookworm`` through the docker.io mirror setting, a password-protected TLS registry
for 03), executes the notebook in a fresh kernel under ``out/notebook/``, renders it with
nbconvert (static HTML: the layer tree is there without a kernel or JavaScript) and prints
where everything is. Needs root (debootstrap, the build sandbox).

    .venv/bin/python -m scripts.notebook_demo            # 01-quickstart
    .venv/bin/python -m scripts.notebook_demo --all      # all four notebooks
    .venv/bin/python -m scripts.notebook_demo --refresh  # all four, outputs saved back into
                                                         # notebooks/ (after editing them)

(from the repository's root; ``bash scripts/demo.sh [--all]`` sets up and runs it.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from scripts.notebook_env import NOTEBOOKS, REPO, NotebookEnv, copy_notebooks, execute

OUT = REPO / "out" / "notebook"


def to_html(nb_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(nb_path, as_version=4))
    dest = nb_path.with_suffix(".html")
    dest.write_text(body)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true", help="run all four notebooks")
    ap.add_argument("--refresh", action="store_true",
                    help="run all four and save their outputs into notebooks/")
    a = ap.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    names = None if a.all or a.refresh else ["01-quickstart.ipynb"]
    env = NotebookEnv(OUT / "services")
    print("starting a local registry with debian:bookworm (debootstrap, cached daily) …",
          flush=True)
    env.start(auth=names is None)
    try:
        env.apply()
        for nb in copy_notebooks(OUT, names):
            t0 = time.monotonic()
            print(f"executing {nb.name} …", flush=True)
            execute(nb)
            html = to_html(nb)
            print(f"  done in {time.monotonic() - t0:.0f}s: {nb}\n  HTML: {html}", flush=True)
            if a.refresh:
                shutil.copy(nb, NOTEBOOKS / nb.name)
                print(f"  saved outputs into {NOTEBOOKS / nb.name}")
    finally:
        env.stop()
    print(f"\nOpen {OUT / '01-quickstart.html'} in a browser: the build summary, the layer "
          "tree (click the layers), the manifest, the push, pull and run outputs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
