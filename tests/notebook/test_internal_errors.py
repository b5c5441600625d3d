"""An exception nbcontainer did not expect, inside a magic: the cell fails with one short
line — what failed, that it is a bug in nbcontainer, how to see the traceback — and no
traceback, unless NBCONTAINER_DEBUG is set. The bug is made on purpose by the API's test hook
(``api.INTERNAL_ERROR_HOOK``)."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from nbcontainer import api
from nbcontainer.notebook import errors


@pytest.mark.parametrize(("cell", "what"), [
    ("%images", "%images"),
    ("%pull busybox", "%pull"),
    ("%%dockerfile -q\nFROM scratch\n", "%%dockerfile"),
    ("%container_run busybox true", "%container_run"),
])
def test_a_bug_is_a_short_error(ip, monkeypatch, capsys, cell: str, what: str) -> None:
    monkeypatch.setenv(api.INTERNAL_ERROR_HOOK, "1")
    r = ip.run_cell(cell)
    exc = r.error_in_exec
    assert isinstance(exc, errors.InternalError)
    assert isinstance(exc.__cause__, RuntimeError)  # kept for %debug
    (line,) = exc._render_traceback_()
    assert f"InternalError\x1b[0m: {what} failed with RuntimeError: " in line
    assert "this is a bug in nbcontainer" in line and "NBCONTAINER_DEBUG=1" in line
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err


def test_debug_keeps_the_traceback(ip, monkeypatch) -> None:
    monkeypatch.setenv(api.INTERNAL_ERROR_HOOK, "1")
    monkeypatch.setenv("NBCONTAINER_DEBUG", "1")
    exc = ip.run_cell("%images").error_in_exec
    assert type(exc) is RuntimeError and not errors.is_short(exc)


def test_usage_errors_are_not_bugs(ip, monkeypatch) -> None:
    monkeypatch.setenv(api.INTERNAL_ERROR_HOOK, "1")
    from IPython.core.error import UsageError

    assert isinstance(ip.run_cell("%images --bogus").error_in_exec, UsageError)


def test_a_notebook_cell_shows_the_short_message(home, tmp_path, monkeypatch) -> None:
    """In a real kernel: the cell's error output is the one line, no frames."""
    monkeypatch.setenv(api.INTERNAL_ERROR_HOOK, "1")  # the kernel inherits the environment
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext nbcontainer"),
        nbformat.v4.new_code_cell("%images"),
    ])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert nb.cells[0].outputs == []
    (out,) = nb.cells[1].outputs
    assert out.output_type == "error" and out.ename == "InternalError"
    assert "%images failed with RuntimeError" in out.evalue
    assert "this is a bug in nbcontainer" in out.evalue
    text = "\n".join(out.traceback)
    assert "Traceback" not in text and "File " not in text and "get_store" not in text
    assert len(out.traceback) == 1 and "NBCONTAINER_DEBUG=1" in text
