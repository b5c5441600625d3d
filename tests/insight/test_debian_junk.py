"""Acceptance: an environment built as a data scientist writes it (apt without cleanup, pip
with its cache) against the same one cleaned up. The analysis flags the apt cache, the apt
lists and the pip cache with their sizes, the instruction (Dockerfile line) that made them
and the fix; the first scores below 80 %, the second above 95 % and flags nothing.
``nbcontainer check`` fails the first and passes the second, with and without a .dive-ci."""

from __future__ import annotations

from pathlib import Path

from nbcontainer import api
from nbcontainer.analysis import Source
from nbcontainer.cli import main


def test_the_junk_image_flags_apt_and_pip_with_sizes_and_fixes(debian_images) -> None:
    img = api.image(debian_images.junk, store=debian_images.store)
    tree = img.tree()
    flagged = {f.rule.id: f for f in tree.insight.flagged}
    assert {"apt-cache", "apt-lists", "pip-cache"} <= set(flagged), tree.insight.findings
    apt_cache, lists, pip = flagged["apt-cache"], flagged["apt-lists"], flagged["pip-cache"]
    # pkgcache.bin and srcpkgcache.bin are ~40 MB each, the .deb files a few MB
    assert apt_cache.size > 20_000_000 and apt_cache.layer == 1
    assert any(p == "var/cache/apt/pkgcache.bin" for p, _ in apt_cache.examples)
    assert lists.size > 1_000_000 and lists.layer == 1
    assert pip.size > 1_000_000 and pip.layer == 2  # the 2 MB wheel it downloaded
    assert all(p.startswith("root/.cache/pip/") for p, _ in pip.examples)
    # each points at the instruction, by its Dockerfile line, with the fix
    assert tree.layers[1].source == Source("Dockerfile", 2, 2)
    assert tree.layers[2].source == Source("Dockerfile", 3, 5)
    assert "apt-get clean" in apt_cache.rule.fix
    assert "rm -rf /var/lib/apt/lists/*" in lists.rule.fix
    assert "--no-cache-dir" in pip.rule.fix
    assert tree.efficiency < 0.80
    assert tree.dive_efficiency > 0.95  # what dive said: the cache is written only once
    text = api.image(debian_images.junk, store=debian_images.store).summary()
    assert text.startswith("insight/junk: 3 layers, ")


def test_the_cleaned_image_flags_nothing(debian_images) -> None:
    tree = api.image(debian_images.clean, store=debian_images.store).tree()
    assert tree.insight.flagged == (), tree.insight.flagged
    assert tree.efficiency > 0.95
    # the base image's lists, deleted by the RUN, are the base's waste: reported apart
    base = {f.rule.id: f for f in tree.insight.findings if f.base}
    assert base["apt-lists"].size > 10_000_000 and base["apt-lists"].by == 1
    assert tree.dive_efficiency < 0.9  # dive charges them to the image


def test_check_exit_codes_and_dive_ci(debian_images, capsys, tmp_path: Path,
                                      monkeypatch) -> None:
    root = str(debian_images.root)
    monkeypatch.chdir(tmp_path)
    assert main(["--root", root, "check", debian_images.junk]) == 1
    out = capsys.readouterr().out
    failed = [line.split()[1] for line in out.splitlines() if line.strip().startswith("FAIL")]
    assert {"lowestEfficiency", "junk:apt-cache", "junk:apt-lists", "junk:pip-cache"} <= \
        set(failed), out
    assert "(Dockerfile:2)" in out and "apt-get clean" in out
    assert main(["--root", root, "check", debian_images.clean]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("Result: PASS")
    # dive's file: an absolute cap the cleaned image passes and the junk image does not
    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0.95\n"
                                       "  highestWastedBytes: 20MB\n"
                                       "  highestUserWastedPercent: disabled\n")
    assert main(["--root", root, "check", debian_images.clean]) == 0
    assert "rules: .dive-ci" in capsys.readouterr().out
    assert main(["--root", root, "check", debian_images.junk, "--ignore", "apt-cache",
                 "--ignore", "apt-lists", "--ignore", "pip-cache"]) == 1
    out = capsys.readouterr().out
    assert any(line.split()[:2] == ["FAIL", "highestWastedBytes"] for line in out.splitlines())


def test_layers_and_history_in_the_terminal(debian_images, capsys) -> None:
    root = str(debian_images.root)
    assert main(["--root", root, "layers", debian_images.junk]) == 0
    out = capsys.readouterr().out
    assert "apt package cache" in out and "pip cache" in out and "(Dockerfile:2)" in out
    assert "In the base image (not counted" in out  # the debootstrap base's own apt lists
    assert main(["--root", root, "history", debian_images.clean]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "buildkit.dockerfile.v0 Dockerfile:4-6" in out[1]  # the pip RUN, newest first
    assert "buildkit.dockerfile.v0 Dockerfile:2-3" in out[2]
