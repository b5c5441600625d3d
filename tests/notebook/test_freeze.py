"""``%freeze_image``'s Dockerfile and requirements (the build itself runs in notebook 04)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nbcontainer.errors import NbcontainerError
from nbcontainer.notebook import freeze


def test_requirements_pin_the_kernels_versions() -> None:
    from importlib.metadata import version

    req = freeze.kernel_requirements(["packaging", "IPython"])
    assert {r.lower() for r in req.pinned} == {f"ipython=={version('ipython')}",
                                                f"packaging=={version('packaging')}"}


def test_everything_by_default_and_editable_installs_are_flagged() -> None:
    req = freeze.kernel_requirements()
    names = {r.split("==")[0].lower() for r in req.pinned + req.unpinnable}
    assert {"ipython", "packaging"} <= names
    assert "pip" not in names
    assert any(r.lower().startswith("nbcontainer==") for r in req.unpinnable)  # editable


def test_unknown_package_is_an_error() -> None:
    with pytest.raises(NbcontainerError, match="no-such-dist"):
        freeze.kernel_requirements(["no-such-dist"])


def test_dockerfile_for_python_and_distribution_bases() -> None:
    req = freeze.Requirements(["packaging==24.0"], ["mine==0.1"])
    text = freeze.dockerfile(freeze.default_base(), req, "analysis.ipynb")
    v = sys.version_info
    assert f"FROM python:{v.major}.{v.minor}-slim" in text
    assert "venv" not in text and "RUN pip install --no-cache-dir -r" in text
    assert 'COPY "analysis.ipynb" ./' in text
    assert "# not reproducible from an index (local or editable install): mine==0.1" in text
    deb = freeze.dockerfile("debian:bookworm", req, None, wheels=True)
    assert "python3-venv" in deb and "ENV PATH=/opt/venv/bin:/usr/local/sbin:" in deb
    assert "--no-index --find-links /tmp/wheels" in deb and "COPY wheels/" in deb


def test_freeze_writes_the_context(tmp_path: Path) -> None:
    nb = tmp_path / "work.ipynb"
    nb.write_text("{}")
    out = tmp_path / "freeze"
    result = freeze.freeze(packages=["packaging"], notebook=str(nb), output=out, build=False)
    assert (out / "Dockerfile").read_text() == result.dockerfile
    assert (out / "requirements.txt").read_text().startswith("packaging==")
    assert (out / "work.ipynb").exists()
    data = result._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html"} and "FROM python:" in data["text/plain"]
