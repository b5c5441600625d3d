"""The example notebooks: strict nbval against their saved outputs, the static HTML of the
saved quickstart (nbconvert, no kernel, no JavaScript), and hygiene of the saved files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.notebook_env import KERNEL_NOTEBOOKS, NOTEBOOKS, PASSWORD, copy_notebooks
from tests.support.marks import needs_services

NAMES = ["01-quickstart.ipynb", "02-multistage-and-cache.ipynb", "03-registry-auth.ipynb",
         "04-reproducible-environment.ipynb", "05-kernel-in-image.ipynb",
         "06-analysis-in-the-image.ipynb"]


def load(name: str) -> dict:
    return json.loads((NOTEBOOKS / name).read_text())


# ---------------------------------------------------------------------- saved files
@pytest.mark.parametrize("name", NAMES)
def test_saved_notebook_hygiene(name: str) -> None:
    text = (NOTEBOOKS / name).read_text()
    nb = json.loads(text)
    assert "widgets" not in nb["metadata"]  # no widget state: nbconvert/GitHub use the HTML
    assert PASSWORD not in text and "Pa55word" not in text
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code), "saved without running every cell"
    errors = [c for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert all("raises-exception" in c["metadata"].get("tags", []) for c in errors)
    assert len(text) < 3_000_000


def test_quickstart_nbconvert_html_has_the_tree_without_js() -> None:
    import nbformat
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(
        nbformat.read(NOTEBOOKS / "01-quickstart.ipynb", as_version=4))
    soup = BeautifulSoup(body, "html.parser")
    views = soup.select("div.nbc-layers-view")
    assert len(views) == 2  # %layers, and the widget cell's static fallback
    for view in views:
        layers = view.select("details.nbc-layer")
        titles = [d.summary.get_text(" ", strip=True) for d in layers]
        assert len(titles) == 3
        assert "nbcontainer import debian-bookworm" in titles[0]
        assert "RUN apt-get update" in titles[1]
        assert "COPY my-app.py /app/" in titles[2]
        top = layers[2].select_one("ul.nbc-tree")
        assert "+ app/" in top.get_text(" ", strip=True)
        assert "my-app.py" in layers[2].get_text()
        assert layers[1].select("details")  # directories are collapsible
        assert view.find("script") is None
        assert "reclaimable" in view.get_text() and "dive" in view.get_text()
    image = soup.select("div.nbc-image")
    assert image and "my-python-image" in image[0].get_text()
    # no output of ours needs JavaScript: the only scripts are nbconvert's own (mathjax,
    # require) and none sits inside an output area
    for area in soup.select(".jp-OutputArea-output"):
        assert area.find("script") is None
    # the manifest is a JSON output with a text fallback: nbconvert shows the text
    assert '"mediaType": "application/vnd.oci.image.manifest.v1+json"' in soup.get_text()


def _code(name: str, source: str) -> dict:
    """The saved code cell of a notebook whose source is ``source`` (first line)."""
    return next(c for c in load(name)["cells"] if c["cell_type"] == "code" and
                "".join(c["source"]).split("\n")[0].strip() == source)


def test_quickstart_outputs_are_light() -> None:
    """A build result is its summary, pictures, junk and the top of the tree (not the whole
    tree again), and HTML is stored in short lines, so a rebuild changes few lines."""
    build = _code("01-quickstart.ipynb", "%%dockerfile -t my-python-image")
    assert len(json.dumps(build["outputs"])) <= 30_000
    layers = _code("01-quickstart.ipynb", "%layers my-python-image")  # over the Debian base
    assert len(json.dumps(layers["outputs"])) <= 60_000
    for name in NAMES:
        for cell in load(name)["cells"]:
            for out in cell.get("outputs", []):
                html = out.get("data", {}).get("text/html")
                if html is None:
                    continue
                lines = html if isinstance(html, list) else [html]
                assert max(len(line) for line in lines) <= 700, (name, cell["source"])


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install "
                                             "chromium)")
def test_static_html_shows_the_pictures_and_the_junk_without_javascript(tmp_path: Path
                                                                       ) -> None:
    """``nbconvert --to html`` of the saved notebooks, opened in chromium with JavaScript
    off: the layer bars, the treemap and the junk list are drawn (non-zero boxes).
    Screenshots are kept under out/notebook-browser/."""
    import nbformat
    from nbconvert import HTMLExporter
    from playwright.sync_api import sync_playwright

    from scripts.notebook_env import REPO

    keep = REPO / "out" / "notebook-browser"
    keep.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000},
                                    java_script_enabled=False)
            for name, junk in (("01-quickstart.ipynb", "in the base image"),
                               ("02-multistage-and-cache.ipynb", "apt package cache")):
                body, _ = HTMLExporter().from_notebook_node(
                    nbformat.read(NOTEBOOKS / name, as_version=4))
                html = tmp_path / name.replace(".ipynb", ".html")
                html.write_text(body)
                page.goto(html.as_uri())
                treemap = page.locator(".nbc-treemap").first
                treemap.scroll_into_view_if_needed()
                box = treemap.bounding_box()
                assert box and box["width"] > 300 and box["height"] > 100
                tiles = treemap.locator("div[title]")
                assert tiles.count() >= 3
                tile = tiles.first.bounding_box()
                assert tile and tile["width"] > 0 and tile["height"] > 0
                bars = page.locator(".nbc-bar")
                assert bars.count() >= 2
                bar = bars.nth(1).locator("div").first.bounding_box()
                assert bar and bar["width"] > 0 and bar["height"] > 0
                junk = page.locator(".nbc-junk, .nbc-base").filter(has_text=junk).first
                assert junk.is_visible(), name
                shot = keep / f"nbconvert-nojs-{name.replace('.ipynb', '')}.png"
                treemap.screenshot(path=str(shot))
                assert shot.stat().st_size > 2_000
            red = page.locator(".nbc-bar div[style*='background:#d62728']")
            assert red.count() >= 1  # 02's junk: the reclaimable part of a bar
        finally:
            browser.close()


def test_sanitize_file_covers_progress_states() -> None:
    """nbval compares a progress area's first state with the saved last state."""
    from nbval.plugin import get_sanitize_patterns

    from nbcontainer.notebook.progress import ProgressArea
    from nbcontainer.progress import ProgressEvent

    patterns = get_sanitize_patterns((NOTEBOOKS / "sanitize.cfg").read_text())

    def clean(s: str) -> str:
        import re

        for regex, replace in patterns:
            s = re.sub(regex, replace, s)
        return s

    area = ProgressArea("Building", enabled=False)
    first = area.bundle()
    area(ProgressEvent("start", "#1", "[1/2] FROM debian:bookworm"))
    area(ProgressEvent("log", "#1", "output"))
    area(ProgressEvent("done", "#1", "DONE 0.1s"))
    area.__exit__(None, None, None)
    last = area.bundle(final=True)
    for mime in ("text/plain", "text/html"):
        assert clean(first[mime]) == clean(last[mime])
    assert clean("a 143.2MB b") == clean("a    12kB b")


# ---------------------------------------------------------------------- nbval, strict
@needs_services
def test_notebooks_pass_nbval_strict(nbenv, tmp_path: Path) -> None:
    nbs = copy_notebooks(tmp_path)
    env = {**os.environ, **nbenv.env}
    env.pop("PYTEST_CURRENT_TEST", None)
    on_host = [p.name for p in nbs if p.name not in KERNEL_NOTEBOOKS]
    # first the notebooks on this Python's kernel (05 installs the kernel "analysis"), then
    # the ones saved with that kernel: nbval starts the kernel their metadata names
    for names, current_env in ((on_host, ["--nbval-current-env"]), (KERNEL_NOTEBOOKS, [])):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--nbval", *current_env,
             "--nbval-sanitize-with", "sanitize.cfg", "--nbval-cell-timeout", "600",
             "-p", "no:cacheprovider", "-o", "addopts=", "-o", "timeout=0", "--rootdir",
             str(tmp_path), "-q", *names],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
        report = proc.stdout[-6000:] + proc.stderr[-2000:]
        assert proc.returncode == 0, report
        assert " failed" not in proc.stdout.splitlines()[-1], report
    assert (tmp_path / "from-the-image.txt").read_text() == "written by the kernel in the image\n"
