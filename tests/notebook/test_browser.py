"""JupyterLab 4 in Debian's chromium (Playwright, no browser download): run the quickstart
and check from the DOM that the layer tree, the pictures and the live explorer rendered
(live search opens and highlights a deep match, the image-at-a-layer view shows a file of a
lower layer), with no error outputs and no JavaScript console errors; then a build with a
silent ``RUN sleep 3`` whose timers must move while it runs. Screenshots are kept under
``out/notebook-browser/``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer.localregistry import free_port
from scripts.notebook_env import REPO, copy_notebooks
from tests.support.marks import needs_services

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.browser, needs_services,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install "
                                                 "chromium)"),
]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

ERRORS_JS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
  const out = {errors: [], pending: 0, code: 0};
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    out.code++;
    if (!c.executionCount) out.pending++;
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      if (o.output_type === 'error') out.errors.push(o.ename + ': ' + o.evalue);
    }
  }
  return out;
}"""


@pytest.fixture
def lab(nbenv, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with _lab(nbenv, tmp_path, ["01-quickstart.ipynb"]) as found:
        yield found


@contextlib.contextmanager
def _lab(nbenv, tmp_path: Path, notebooks: list[str]) -> Iterator[tuple[str, Path]]:
    """JupyterLab on 127.0.0.1 over a copy of ``notebooks``, with the notebooks' world."""
    pytest.importorskip("jupyterlab")
    pytest.importorskip("playwright")
    root = tmp_path / "lab"
    copy_notebooks(root, notebooks)
    port = free_port()
    env = {**os.environ, **nbenv.env, "JUPYTER_CONFIG_DIR": str(tmp_path / "jcfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jrun")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
           "--port", str(port), "--ServerApp.port_retries=0", "--IdentityProvider.token=",
           "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/api/status", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" +
                                       (tmp_path / "lab.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_quickstart_runs_in_jupyterlab(lab: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, _root = lab
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.goto(f"{url}/lab/tree/01-quickstart.ipynb?reset")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                "window.jupyterapp.shell.currentWidget.sessionContext?.session?.kernel"
                "?.status === 'idle'", timeout=60_000)
            page.evaluate("() => window.jupyterapp.commands.execute("
                          "'notebook:run-all-cells')")
            page.wait_for_function(
                f"() => {{ const s = ({ERRORS_JS})(); return s.pending === 0 || "
                "s.errors.length > 0; }", timeout=600_000, polling=500)
            page.wait_for_function(
                "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                ".status === 'idle'", timeout=120_000)
            state = page.evaluate(ERRORS_JS)
            assert state["errors"] == [] and state["pending"] == 0, state

            # the static layer tree (%layers) and the image view rendered as HTML
            page.wait_for_selector(".nbc-layers-view details.nbc-layer", timeout=30_000)
            titles = page.locator(".nbc-layers-view details.nbc-layer > summary")
            # the DOM's text: JupyterLab skips rendering cells out of view (innerText empty)
            texts = titles.all_text_contents()
            assert any("RUN apt-get update" in t for t in texts), texts
            assert any("COPY my-app.py /app/" in t for t in texts), texts
            last = page.locator(".nbc-layers-view details.nbc-layer").nth(2)
            last.scroll_into_view_if_needed()
            last.locator("summary").first.click()
            assert "my-app.py" in last.inner_text()

            # the live widget, not its fallback: a layer list and the selected layer's tree
            widget = page.locator(".nbc-widget")
            widget.wait_for(state="attached", timeout=30_000)
            widget.scroll_into_view_if_needed()
            options = [o.replace("\xa0", " ")  # ipywidgets pads with no-break spaces
                       for o in widget.locator("select option").all_inner_texts()]
            assert len(options) == 3 and "COPY my-app.py" in options[2], options
            assert "my-app.py" in widget.locator(".nbc-widget-tree").inner_text()
            widget.locator("select").select_option(index=1)
            page.wait_for_function(
                "() => document.querySelector('.nbc-widget .nbc-widget-tree')"
                ".innerText.includes('usr/')", timeout=10_000)

            # the run output streamed into its cell
            assert "hello from (3, 11)" in page.locator(".jp-Notebook").text_content()

            shot = tmp_path / "01-quickstart.png"
            widget.scroll_into_view_if_needed()
            page.screenshot(path=str(shot), full_page=False)
            keep(shot)
            assert shot.stat().st_size > 10_000

            _pictures(page, tmp_path)
            _live_search(page, widget, tmp_path)
            _image_at_a_layer(page, widget, tmp_path)
        finally:
            browser.close()
    assert console == [], console


def keep(shot: Path) -> None:
    """A screenshot kept as a test artifact."""
    dest = REPO / "out" / "notebook-browser"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, dest / shot.name)


def _pictures(page, tmp_path: Path) -> None:
    """The layer bars and the treemap of the build's result, drawn with real sizes."""
    image = page.locator(".nbc-image").first
    treemap = image.locator(".nbc-treemap")
    treemap.scroll_into_view_if_needed()
    box = treemap.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    tiles = treemap.locator("div[title]")
    assert tiles.count() >= 5
    assert all((b := tiles.nth(i).bounding_box()) and b["width"] > 0 and b["height"] > 0
               for i in range(3))
    bars = image.locator(".nbc-bar")
    assert bars.count() == 3
    widths = [bars.nth(i).locator("div").first.locator("div").first.bounding_box()["width"]
              for i in range(3)]
    assert widths[0] > widths[2] > 0  # the Debian base's bar is the longest
    shot = tmp_path / "01-quickstart-pictures.png"
    image.screenshot(path=str(shot))
    keep(shot)


def _type(page, widget, text: str) -> None:
    box = widget.locator("input[type=text]").first
    box.fill("")
    box.click()
    page.keyboard.type(text, delay=60)  # key by key, no Enter: the search runs as you type


def _live_search(page, widget, tmp_path: Path) -> None:
    """Search as you type: a deep match in the apt layer opens its directories and is
    highlighted; the scroll area keeps its height."""
    widget.locator("select").select_option(index=1)
    _type(page, widget, "python3.11")
    mark = widget.locator(".nbc-widget-tree mark", has_text="python3.11").first
    mark.wait_for(state="visible", timeout=20_000)
    assert mark.inner_text().lower() == "python3.11"
    row = mark.locator("xpath=ancestor::li[1]")
    assert "/usr/" in (row.get_attribute("title") or "")  # the full path on hover
    assert row.evaluate("e => e.closest('details') === null || e.closest('details').open")
    area = widget.locator(".nbc-widget-tree").locator("xpath=ancestor::div[contains(@class,"
                                                        "'widget-box')][1]")
    height = area.bounding_box()["height"]
    assert 300 < height < 600  # a fixed-height scroll area, not a 2,000 px output
    shot = tmp_path / "01-quickstart-search.png"
    widget.screenshot(path=str(shot))
    keep(shot)


def _image_at_a_layer(page, widget, tmp_path: Path) -> None:
    """The top layer (the COPY) as the image stands there: the base's /etc/os-release is
    in it, unmarked (a lower layer's file)."""
    widget.locator("select").select_option(index=2)
    widget.locator("button", has_text="the image at this layer").click()
    widget.locator(".widget-html", has_text="the image at #2").first.wait_for(timeout=30_000)
    widget.locator("input[type=text]").first.fill("os-release")  # one change, no keys
    mark = widget.locator(".nbc-widget-tree mark", has_text="os-release").first
    try:
        mark.wait_for(state="visible", timeout=60_000)
    finally:
        shot = tmp_path / "01-quickstart-image-at-layer.png"
        widget.screenshot(path=str(shot))
        keep(shot)
    titles = widget.locator(".nbc-widget-tree").evaluate(
        "t => [...t.querySelectorAll('mark')].map(m => m.closest('li').title)")
    assert "/etc/os-release" in titles or "/usr/lib/os-release" in titles, titles


TICKING = {"cells": [
    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
     "source": "%load_ext nbcontainer"},
    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
     "source": "%%dockerfile --no-cache -t ticking\nFROM debian:bookworm\nRUN sleep 3\n"},
    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
     # the notebooks' store is shared with the nbval run: leave no tag behind
     "source": "import nbcontainer.api\nnbcontainer.api.rmi(['ticking'])"},
], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def test_timers_tick_during_a_silent_step(lab: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, root = lab
    (root / "ticking.ipynb").write_text(json.dumps(TICKING))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"{url}/lab/tree/ticking.ipynb?reset")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                "window.jupyterapp.shell.currentWidget.sessionContext?.session?.kernel"
                "?.status === 'idle'", timeout=60_000)
            # not awaited: the command's promise ends with the last cell
            page.evaluate("() => { window.jupyterapp.commands.execute("
                          "'notebook:run-all-cells'); }")
            running = page.locator("div.nbc-progress pre").filter(has_text="sleep 3")
            running.first.wait_for(state="attached", timeout=120_000)
            seen = set()
            shot = tmp_path / "ticking.png"
            for i in range(6):  # three seconds of a step that prints nothing
                text = running.first.text_content() if running.count() else ""
                row = next((line for line in text.split("\n") if "sleep 3" in line), "")
                if re.search(r"\d+\.\ds$", row.strip()):
                    seen.add(row.strip().rsplit(" ", 1)[-1])
                if i == 2:
                    page.screenshot(path=str(shot))
                page.wait_for_timeout(400)
            keep(shot)
            assert len(seen) >= 3, seen  # the row's timer moved while the RUN was silent
            summary = page.locator("details.nbc-progress summary")
            summary.first.wait_for(state="attached", timeout=60_000)
            assert re.search(r"FINISHED: 2 steps, 0 cached, \d+\.\d s",
                             summary.first.text_content() or "")
        finally:
            browser.close()
def _kernel_image(nbenv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """05-kernel-in-image's environment (its own Dockerfile cell, so a run of the notebooks
    in this session has cached it), installed as a kernel with a name of this test's."""
    import json

    from nbcontainer import api
    from scripts.notebook_env import NOTEBOOKS, wheelhouse

    for key, value in nbenv.env.items():
        monkeypatch.setenv(key, value)
    api._stores.clear()
    cell = next(c for c in json.loads((NOTEBOOKS / "05-kernel-in-image.ipynb").read_text())[
        "cells"] if "".join(c["source"]).startswith("%%dockerfile"))
    ctx = tmp_path / "ctx"
    shutil.copytree(wheelhouse(), ctx / "wheels")
    (ctx / "Dockerfile").write_text("".join(cell["source"]).split("\n", 1)[1] + "\n")
    api.build(ctx / "Dockerfile", ctx, tags=["analysis:1"])
    api.install_kernel("analysis:1", name="lab-analysis", display_name="Analysis in the launcher")
    api._stores.clear()
    return "Analysis in the launcher"


def test_a_kernel_from_an_image_in_the_launcher(nbenv, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """JupyterLab's launcher lists the kernel from an image; a notebook started from its card
    runs a cell in the image."""

    display = _kernel_image(nbenv, tmp_path, monkeypatch)
    try:
        _launch_from_the_launcher(nbenv, tmp_path, display)
    finally:
        # the notebooks' environment is shared with the nbval run, whose saved outputs list
        # the images and kernels: leave neither behind
        from nbcontainer import api

        api.remove_kernel("lab-analysis")
        api.rmi(["analysis:1"])
        api._stores.clear()


def _launch_from_the_launcher(nbenv, tmp_path: Path, display: str) -> None:
    from playwright.sync_api import sync_playwright

    console: list[str] = []
    with _lab(nbenv, tmp_path, []) as (url, root), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.goto(f"{url}/lab?reset")
            card = page.locator(".jp-LauncherCard", has_text=display).first
            card.wait_for(timeout=60_000)
            card.click()
            page.wait_for_function(
                "() => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel"
                "?.status === 'idle'", timeout=120_000)
            assert page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext"
                                 ".kernelDisplayName") == display
            page.evaluate("""() => {
                const nb = window.jupyterapp.shell.currentWidget;
                nb.content.model.sharedModel.getCell(0).setSource(
                    "import sys, tabulate; print('in the image:', sys.prefix)");
                nb.content.activeCellIndex = 0;
                return window.jupyterapp.commands.execute('notebook:run-cell');
            }""")
            page.wait_for_function(
                "() => document.querySelector('.jp-OutputArea-output')?.innerText"
                ".includes('in the image: /opt/venv')", timeout=120_000)
            shot = tmp_path / "kernel-in-image.png"
            page.screenshot(path=str(shot), full_page=False)
            keep = REPO / "out" / "notebook-browser"
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, keep / shot.name)
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext"
                          ".shutdown()")  # before the server goes
        finally:
            browser.close()
    assert console == [], console
