"""``nbcontainer layers``, ``history`` and ``check`` on hand-made images: the same analysis
as the notebook, in a terminal; ``check``'s table and exit codes, with dive's ``.dive-ci``."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcontainer.cli import main
from nbcontainer.store import Store
from tests.support.images import make_image

BASE = {"etc": None, "etc/os-release": b"ID=test\n", "bin": None, "bin/sh": b"s" * 1000}
JUNK = {"var": None, "var/cache": None, "var/cache/apt": None,
        "var/cache/apt/pkgcache.bin": b"p" * 2_000_000, "tmp": None,
        "tmp/build.log": b"l" * 20_000, "app": None, "app/main.py": b"m" * 500_000}
CLEAN = {"app": None, "app/main.py": b"m" * 500_000}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "store"
    st = Store(home)
    make_image(st, [BASE, JUNK], tag="t/junk:1")
    make_image(st, [BASE, CLEAN], tag="t/clean:1")
    return home


def run(capsys, home: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(home), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_layers_shows_the_junk_and_its_fix(home: Path, capsys) -> None:
    code, out, _ = run(capsys, home, "layers", "t/junk:1")
    assert code == 0
    assert "efficiency 19.8% · reclaimable 2.02MB · dive's score 100.0%" in out
    assert "[base]" in out.splitlines()[4]  # layer 0: the base image's (dive's convention)
    assert "▒" in out  # the reclaimable part of the layer's bar
    assert "2MB  apt package cache" in out and "fix: end the RUN that installs with" in out
    assert "20kB  temporary files" in out
    assert "Largest files:" in out and "/var/cache/apt/pkgcache.bin  (layer 1)" in out


def test_check_fails_a_junk_image_with_exit_code_1(home: Path, capsys) -> None:
    code, out, _ = run(capsys, home, "check", "t/junk:1")
    assert code == 1
    lines = out.splitlines()
    assert "  efficiency: 19.8% (dive's score 100.0%)" in lines
    assert any(line.split()[:2] == ["FAIL", "lowestEfficiency"] for line in lines)
    assert any(line.split()[:2] == ["FAIL", "junk:apt-cache"] for line in lines)
    assert any(line.split()[:2] == ["FAIL", "junk:tmp"] for line in lines)
    assert any(line.split()[:2] == ["SKIP", "highestWastedBytes"] for line in lines)
    assert lines[-1].startswith("Result: FAIL")
    assert run(capsys, home, "check", "t/clean:1")[0] == 0
    assert run(capsys, home, "layers", "--check", "t/junk:1")[0] == 1  # the same, via layers


def test_check_reads_dive_ci(home: Path, capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dive-ci").write_text(
        "rules:\n  lowestEfficiency: disabled\n  highestWastedBytes: 5MB\n"
        "  highestUserWastedPercent: disabled\n")
    code, out, _ = run(capsys, home, "check", "t/junk:1", "--ignore", "apt-cache",
                       "--ignore", "tmp")
    assert code == 0, out
    assert "rules: .dive-ci" in out
    assert any(line.split()[:2] == ["PASS", "highestWastedBytes"] for line in out.splitlines())
    # the command line wins over the file
    assert run(capsys, home, "check", "t/junk:1", "--ignore", "apt-cache", "--ignore", "tmp",
               "--highest-wasted-bytes", "1MB")[0] == 1
    strict = tmp_path / "strict.yml"
    strict.write_text("rules:\n  lowestEfficiency: 0.9999\n")
    code, out, _ = run(capsys, home, "check", "t/clean:1", "--ci-config", str(strict))
    assert code == 0  # the clean image wastes nothing: 100%
    strict.write_text("rules:\n  lowestEfficiency: lots\n")
    code, _, err = run(capsys, home, "check", "t/clean:1", "--ci-config", str(strict))
    assert code == 1 and "strict.yml: not a ratio between 0 and 1: 'lots'" in err
    code, _, err = run(capsys, home, "check", "t/clean:1", "--ignore", "nope")
    assert code == 1 and "unknown junk rule: nope" in err


def test_bad_thresholds_are_usage_errors(home: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--root", str(home), "check", "t/junk:1", "--lowest-efficiency", "2"])
    assert e.value.code == 2 and "not a ratio" in capsys.readouterr().err


def test_history_is_dockers(home: Path, capsys) -> None:
    code, out, _ = run(capsys, home, "history", "t/junk:1")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE",
                                              "COMMENT"]
    assert len(lines) == 3 and lines[2].startswith("<missing>")
    assert "2.52MB" in lines[1] and "1kB" in lines[2]  # newest first, unpacked sizes
    code, out, _ = run(capsys, home, "history", "-q", "t/junk:1")
    assert len(out.split()) == 1 and len(out.strip()) == 12

