"""An exception nbcontainer did not expect (a bug) reaches the user as one line — what failed,
that it is a bug, how to see the details — and exit code 70 (EX_SOFTWARE); the traceback
only with --debug or NBCONTAINER_DEBUG=1. Our own errors stay one line and a hint, exit 1.
The bug is made on purpose by the API's test hook (``api.INTERNAL_ERROR_HOOK``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nbcontainer import api
from nbcontainer.cli import main
from nbcontainer.cli.app import EX_SOFTWARE


def cli(home, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "NBCONTAINER_DEBUG"}
    return subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(home), *args],
                          capture_output=True, text=True, env={**environ, **env})


@pytest.mark.parametrize("argv", [["images"], ["build", "."], ["pull", "busybox"],
                                  ["run", "busybox", "true"], ["prune", "--cache"]])
def test_a_bug_is_one_line_and_exit_70(tmp_path, argv: list[str]) -> None:
    res = cli(tmp_path / "s", *argv, **{api.INTERNAL_ERROR_HOOK: "1"})
    assert res.returncode == EX_SOFTWARE == 70
    assert "Traceback" not in res.stderr and res.stdout == ""
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"Error: nbcontainer {argv[0]} failed with RuntimeError: ")
    assert "this is a bug in nbcontainer" in line
    assert "--debug" in line and "NBCONTAINER_DEBUG=1" in line


@pytest.mark.parametrize(("flag", "env"), [(["--debug"], {}), ([], {"NBCONTAINER_DEBUG": "1"})])
def test_a_bug_with_debug_shows_the_traceback(tmp_path, flag: list[str], env: dict) -> None:
    res = cli(tmp_path / "s", *flag, "images", **{api.INTERNAL_ERROR_HOOK: "1"}, **env)
    assert res.returncode == 70
    assert res.stderr.startswith("Traceback (most recent call last):")
    assert "in get_store" in res.stderr  # the frames of the real cause
    last = res.stderr.splitlines()[-1]
    assert last.startswith("Error: nbcontainer images failed with RuntimeError: ")
    assert "this is a bug in nbcontainer (the traceback is above)" in last


def test_our_errors_stay_exit_1(tmp_path) -> None:
    res = cli(tmp_path / "s", "inspect", "nope:1")
    assert res.returncode == 1
    assert res.stderr.splitlines() == ["Error: no such image: nope:1",
                                       "hint: `nbcontainer images` lists what the store holds"]


def test_in_process_too(tmp_path, monkeypatch, capsys) -> None:
    """``main()`` called from Python returns the code instead of raising."""
    monkeypatch.setenv(api.INTERNAL_ERROR_HOOK, "1")
    monkeypatch.delenv("NBCONTAINER_DEBUG", raising=False)
    assert main(["--root", str(tmp_path / "s"), "images"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "this is a bug in nbcontainer" in err


def test_the_hook_needs_exactly_1(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(api.INTERNAL_ERROR_HOOK, "0")
    assert api.images(store=api.get_store(tmp_path / "s")) == []
