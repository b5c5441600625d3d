"""The flags the magics share with the CLI (``options.py``) work in a notebook too:
``%%dockerfile --progress plain|quiet``, ``--iidfile``, ``--output``; ``%images -q``,
``--digests``, ``--no-trunc``; ``%inspect -f``; ``%container_run --rm``."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from nbcontainer import api
from nbcontainer.notebook.results import ImageList, Message
from tests.support.marks import needs_root_busybox as needs_root


@needs_root
def test_build_flags(ip, bb_store, capsys) -> None:
    r = ip.run_cell("%%dockerfile --progress plain -t flags:1 --iidfile iid "
                    "-o type=oci,dest=flags.tar\nFROM busybox\nRUN echo hello-plain\n")
    assert r.error_in_exec is None, r.error_in_exec
    out = capsys.readouterr().out
    assert "[+] Building" not in out  # BuildKit's plain log instead of the live area
    assert "#2 [2/2] RUN /bin/sh -c echo hello-plain" in out and " hello-plain\n" in out
    assert "#2 DONE " in out
    img = r.result
    assert Path("iid").read_text() == str(img.id)
    with tarfile.open("flags.tar") as tar:
        index = json.load(tar.extractfile("index.json"))
    assert index["manifests"][0]["digest"] == str(img.digest)

    r = ip.run_cell("%%dockerfile --progress quiet -t flags:2\nFROM busybox\nRUN echo quiet\n")
    assert r.error_in_exec is None
    assert capsys.readouterr().out.startswith("Out[")  # the image only, no progress


@needs_root
def test_images_inspect_run_flags(ip, bb_store, capsys) -> None:
    img = api.image("busybox")
    ids = ip.run_cell("%images -q").result
    assert isinstance(ids, Message) and str(ids) == img.id.short
    assert str(ip.run_cell("%images -q --no-trunc").result) == str(img.id)
    table = ip.run_cell("%images --digests").result
    assert isinstance(table, ImageList)
    assert table.header == ("REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "SIZE")
    assert table.rows == [("busybox", "latest", str(img.digest), img.id.short,
                           table.rows[0][-1])]
    # IPython's line expansion makes {{ a literal {: both spellings work
    assert str(ip.run_cell("%inspect -f {{.Os}} busybox").result) == "linux"
    assert str(ip.run_cell("%inspect -f {{{{.Os}}}} busybox").result) == "linux"
    assert str(ip.run_cell("%inspect -f '{{json .Config.Cmd}}' busybox").result) == '["sh"]'
    assert ip.run_cell("%container_run --rm busybox echo removed").error_in_exec is None
    assert "removed" in capsys.readouterr().out
