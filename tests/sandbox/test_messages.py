"""The sandbox's process-boundary messages and the helper's import discipline."""

from __future__ import annotations

import marshal
import subprocess
import sys
from pathlib import Path

import pytest

from nbcontainer.layers.info import LayerInfo
from nbcontainer.oci.digest import Digest
from nbcontainer.sandbox import messages
from nbcontainer.sandbox.fileops import layer_info, layer_record
from nbcontainer.sandbox.namespaced import BOOT

ARGS: list[messages.BootArgs] = [
    {"mode": "serve", "sock": 5, "userns": "parent", "uid": 1000, "gid": 1000, "net": True,
     "cgroups": ["/sys/fs/cgroup/pids/nbcontainer/b-1/cgroup.procs", "/x y/cgroup.procs"]},
    {"mode": "serve", "sock": 5, "userns": None, "uid": 0, "gid": 0, "nsflags": 0x20000},
    {"mode": "ptrace", "status_fd": 7, "confine_fd": -1, "argv": ["proot", "-r", "/a b"]},
    {"mode": "run", "ctl": 3, "specfd": 4},
    {"mode": "probe", "scratch": "/tmp/x y", "userns": True, "uid": 1000, "gid": 1000},
    {"mode": "userns", "ctl": 3, "userns": "self", "uid": 1000, "gid": 1000,
     "argv": ["rm", "-rf", "--", "/tmp/a b"]},
]


@pytest.mark.parametrize("args", ARGS, ids=lambda a: str(a["mode"]))
def test_helper_command_lines_round_trip(args: messages.BootArgs) -> None:
    to_argv = {"serve": messages.serve_argv, "run": messages.run_argv,
               "probe": messages.probe_argv, "userns": messages.userns_argv,
               "ptrace": messages.ptrace_argv}[args["mode"]]
    assert messages.parse_argv(to_argv(args)) == args


def test_bad_command_lines_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown helper mode"):
        messages.parse_argv(["dance"])
    with pytest.raises(ValueError, match="user namespace mode"):
        messages.parse_argv(["userns", "3", "none", "0", "0", "true"])


def test_control_messages_and_end_of_file() -> None:
    event: messages.Event = {"ev": "exit", "status": -9}
    assert messages.decode_event(messages.encode(event)) == event
    assert messages.decode_op(b"") == {"op": "kill"}  # the caller vanished
    assert messages.decode_answer(b"") == {"op": "abort"}  # nobody wrote the map
    assert messages.decode_spare_event(b"") == {"ev": "failed"}
    with pytest.raises(ValueError, match="not a sandbox message"):
        messages.decode_event(marshal.dumps([1, 2]))


def test_layer_record_round_trip() -> None:
    info = LayerInfo(Digest.parse("sha256:" + "a" * 64), Digest.parse("sha256:" + "b" * 64),
                     123, 456, "application/vnd.oci.image.layer.v1.tar+gzip")
    data = messages.encode(layer_record(info))
    assert layer_info(messages.decode_layer(data)) == info


def test_helper_imports_only_the_stdlib_it_needs() -> None:
    """The helper starts per build and serves every RUN: it must load without nbcontainer,
    site-packages, or the slow-to-import typing/dataclasses/platform modules."""
    code = f"""
import sys, types
package = types.ModuleType("_nbsandbox")
package.__path__ = [{str(BOOT.parent)!r}]
sys.modules["_nbsandbox"] = package
from _nbsandbox import _helper
bad = sorted(m for m in sys.modules
             if m.split(".")[0] in ("nbcontainer", "typing", "dataclasses", "platform", "json"))
print(",".join(bad))
"""
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True, cwd=Path(BOOT).parent.parent.parent)
    assert out.stdout.strip() == ""
