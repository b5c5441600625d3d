"""Rich display of the engine's values in IPython, which the engine itself knows nothing of:
``import nbcontainer`` inside a running IPython registers the formatters, and so does
``%load_ext nbcontainer`` when nbcontainer was imported first. Each case runs in a fresh
interpreter: the suite's own shell has the extension loaded already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
from pathlib import Path

tmp, mode = Path(sys.argv[1]), sys.argv[2]
out = {}


def images(api):
    st = api.get_store(tmp / "store")
    for n in (1, 2):
        root = tmp / f"root{n}"
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc" / "hostname").write_text("box\n" * n)
        (root / f"only-{n}").write_text("x")
        api.import_image(root, f"shown:{n}", store=st)
    return api.image("shown:1", store=st), api.image("shown:2", store=st)


def show(ip, obj):
    return ip.display_formatter.format(obj)[0]


if mode == "plain":
    from nbcontainer import api
    from nbcontainer.errors import NbcontainerError

    a, _ = images(api)
    try:
        a.layer_view()
    except NbcontainerError as e:
        out["error"], out["hint"] = str(e), e.hint
    out["modules"] = sorted(m for m in sys.modules
                            if m.startswith(("IPython", "nbcontainer.notebook")))
else:
    from IPython.core.interactiveshell import InteractiveShell

    if mode == "import":
        ip = InteractiveShell.instance()
        from nbcontainer import api  # IPython is running: the displays are registered
    else:
        from nbcontainer import api  # no shell yet: nothing to register with

        ip = InteractiveShell.instance()
        out["before"] = sorted(show(ip, images(api)[0]))
        out["before_view"] = ""
        try:
            images(api)[0].layer_view()
        except Exception as e:
            out["before_view"] = type(e).__name__
        ip.run_line_magic("load_ext", "nbcontainer")
    from nbcontainer.image import ImageIndex

    a, b = images(api)
    out["image"] = show(ip, a)
    out["diff"] = show(ip, a.diff(b))
    out["index_formatter"] = ip.display_formatter.mimebundle_formatter.lookup_by_type(
        ImageIndex).__name__
    view = a.layer_view()
    out["layer_view"] = [type(view).__name__, view.tree.size, sorted(show(ip, view))]
    out["manifest_view"] = sorted(show(ip, a.manifest_view()))
    out["widget"] = type(a.widget()).__name__
print(json.dumps(out))
"""


def run(tmp_path: Path, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBCONTAINER")}
    env["NBCONTAINER_HOME"] = str(tmp_path / "home")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), mode], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def check_shown(out: dict) -> None:
    image = out["image"]
    assert set(image) == {"text/plain", "text/html"}
    assert image["text/plain"].startswith("shown:1: 1 layer, ")
    assert '<div class="nbc nbc-image">' in image["text/html"]
    assert "efficiency" in image["text/html"] and "hostname" in image["text/html"]
    diff = out["diff"]
    assert diff["text/plain"].startswith("shown:1 → shown:2: 1 added, 1 changed, 1 removed")
    assert "only-2" in diff["text/html"] and "nbc-diff" in diff["text/html"]
    assert out["index_formatter"] == "nbcontainer_index_bundle"
    assert out["layer_view"] == ["LayersView", 4 + 1, ["text/html", "text/plain"]]
    assert out["manifest_view"] == ["application/json", "text/plain"]
    assert out["widget"] == "LayerTreeWidget"


def test_import_inside_ipython_shows_images_without_load_ext(tmp_path: Path) -> None:
    check_shown(run(tmp_path, "import"))


def test_load_ext_registers_the_displays_when_imported_before_the_shell(tmp_path: Path) -> None:
    out = run(tmp_path, "load_ext")
    assert out["before"] == ["text/plain"]  # a plain repr until the extension is loaded
    assert out["before_view"] == "NbcontainerError"
    check_shown(out)


def test_without_ipython_the_notebook_views_say_what_they_need(tmp_path: Path) -> None:
    out = run(tmp_path, "plain")
    assert out["modules"] == []  # nothing of IPython or the notebook skin was loaded
    assert "layer_view() is a notebook view" in out["error"]
    assert "IPython" in out["hint"] and "Image.tree()" in out["hint"]
