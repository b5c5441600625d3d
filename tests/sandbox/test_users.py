"""USER resolution follows Docker's GetExecUser rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcontainer.sandbox._users import ExecUser, UserLookupError, resolve_user

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\nextra:x:2000:app,other\nstaff:x:50:\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "passwd").write_text(PASSWD)
    (tmp_path / "group").write_text(GROUP)
    return str(tmp_path / "passwd"), str(tmp_path / "group")


@pytest.mark.parametrize(("spec", "expected"), [
    ("", ExecUser(0, 0, (), "/root", "root")),
    ("root", ExecUser(0, 0, (), "/root", "root")),
    ("app", ExecUser(1000, 1000, (2000,), "/home/app", "app")),
    ("1000", ExecUser(1000, 1000, (2000,), "/home/app", "app")),
    ("app:staff", ExecUser(1000, 50, (), "/home/app", "app")),   # explicit group: no sgids
    ("app:4242", ExecUser(1000, 4242, (), "/home/app", "app")),
    ("4242", ExecUser(4242, 0, (), "/", None)),                   # numeric, no passwd entry
    ("4242:extra", ExecUser(4242, 2000, (), "/", None)),
])
def test_resolve(files: tuple[str, str], spec: str, expected: ExecUser) -> None:
    assert resolve_user(spec, *files) == expected


@pytest.mark.parametrize("spec", ["ghost", "app:ghosts"])
def test_unknown_names_fail(files: tuple[str, str], spec: str) -> None:
    with pytest.raises(UserLookupError, match="unable to find"):
        resolve_user(spec, *files)


def test_missing_files_mean_numeric_only(tmp_path: Path) -> None:
    assert resolve_user("12:34", str(tmp_path / "no"), str(tmp_path / "no")) == ExecUser(12, 34)
    with pytest.raises(UserLookupError):
        resolve_user("app", str(tmp_path / "no"), str(tmp_path / "no"))


def test_setup_errors_name_the_kernel_feature() -> None:
    from nbcontainer.errors import BuildError
    from nbcontainer.sandbox.errors import setup_error as _setup_error

    err = _setup_error({"ev": "error", "step": "overlay", "errno": 19, "type": "OSError",
                        "message": "mount overlay: No such device"})
    assert isinstance(err, BuildError) and err.feature == "overlayfs"
    assert "overlayfs not available" in str(err) and "modprobe overlay" in str(err)
    err = _setup_error({"ev": "error", "step": "userns", "errno": 1, "type": "OSError",
                        "message": "unshare: not permitted"})
    assert "user namespaces not available" in str(err) and "unprivileged_userns_clone" in str(err)
    err = _setup_error({"ev": "error", "step": "idmap", "errno": None, "type": "OSError",
                        "message": "newuidmap: write failed"})
    assert "subordinate id mapping" in str(err) and "/etc/subuid" in str(err)
