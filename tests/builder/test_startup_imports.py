"""What a command line start loads: the structure that keeps the CLI fast (asserted on the
modules imported, never on a time). ``--version`` loads no engine package at all; a fully
cached build loads neither the sandbox nor the registry client nor the notebook skin."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.builds import write
from tests.support.marks import needs_root


def _imported(*args: str, prefix: str = "nbcontainer") -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "nbcontainer.cli", *args],
                          capture_output=True, text=True, check=True)
    return set(re.findall(rf"\|\s*({prefix}[\w.]*)\s*$", proc.stderr, re.M))


def _packages(modules: set[str]) -> set[str]:
    return {m.split(".")[1] for m in modules if m.count(".") >= 1}


def test_version_loads_no_engine_package() -> None:
    loaded = _packages(_imported("--version"))
    assert loaded <= {"cli", "version"}, sorted(loaded)
    # nor the parser, typing or the dataclass machinery: the version is answered before them
    stdlib = _imported("--version", prefix="")
    assert not {"argparse", "typing", "dataclasses"} & stdlib, sorted(stdlib)


@needs_root
def test_a_cached_build_loads_no_sandbox_registry_or_notebook(do_build, bstore, ctx: Path) -> None:
    dockerfile = "FROM busybox\nRUN echo hi > /hi\nCOPY a /a\nENV X=1\nCMD [\"sh\"]\n"
    write(ctx, {"a": "a\n", "Dockerfile": dockerfile})
    do_build(dockerfile, tags=["cached:1"])  # the first build runs the RUN in the sandbox
    loaded = _imported("--root", str(bstore.home), "build", "-q", "-t", "cached:1", str(ctx))
    packages = _packages(loaded)
    assert {"builder", "dockerfile", "store"} <= packages  # it did build (from the cache)
    assert not packages & {"sandbox", "registry", "notebook", "analysis"}, sorted(loaded)
