"""A PEP 503 package index on 127.0.0.1 for builds that run pip without the internet: a
pure-Python wheel made with zipfile (``pip wheel`` of a local project needs setuptools' wheel
package or PyPI), the index over a directory, and the test venv's pip as a zipapp that a
``RUN --mount=type=bind`` hands to a base without python3-pip."""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import threading
import zipfile
from pathlib import Path

import pip


def make_wheel(dest: Path, payload: int = 0) -> Path:
    """tinypkg 0.1: a pure-Python wheel (PEP 427) with a correct RECORD; ``payload`` bytes
    of random data ride along in ``tinypkg/data.bin`` (a wheel of a realistic size)."""
    name = "tinypkg-0.1-py3-none-any.whl"
    files = {
        "tinypkg/__init__.py": b"VALUE = 42\n",
        "tinypkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
        "tinypkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\n"
                                       b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if payload:
        files["tinypkg/data.bin"] = os.urandom(payload)
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append("tinypkg-0.1.dist-info/RECORD,,")
    files["tinypkg-0.1.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    out = dest / name
    with zipfile.ZipFile(out, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data, compress_type=zipfile.ZIP_STORED)
    return out


def make_pip_zipapp(dest: Path) -> Path:
    """The venv's pip as a zipapp: ``python3 pip.pyz install …`` inside the image."""
    out = dest / "pip.pyz"
    src = Path(pip.__file__).parent
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("__main__.py", "import sys\nfrom pip._internal.cli.main import main\n"
                                   "sys.exit(main())\n")
        for p in src.rglob("*"):
            if p.is_file() and "__pycache__" not in p.parts:
                zf.write(p, f"pip/{p.relative_to(src)}")
    return out


class Index:
    """A PEP 503 simple index over one directory, counting wheel downloads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.downloads = 0
        index = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw) -> None:
                super().__init__(*a, directory=str(root), **kw)

            def end_headers(self) -> None:
                if self.path.endswith(".whl"):
                    index.downloads += 1
                    # like PyPI: files are immutable, so pip's HTTP cache may keep them
                    self.send_header("Cache-Control", "max-age=365000000, immutable, public")
                super().end_headers()

            def log_message(self, *a) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def serve_wheel(root: Path, payload: int = 0) -> Index:
    """An index at ``root`` serving tinypkg (see :func:`make_wheel`); stop it with
    ``index.server.shutdown()``."""
    pkg = root / "simple" / "tinypkg"
    pkg.mkdir(parents=True, exist_ok=True)
    wheel = make_wheel(pkg, payload)
    (pkg / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    (root / "simple" / "index.html").write_text('<a href="tinypkg/">tinypkg</a>\n')
    return Index(root)
