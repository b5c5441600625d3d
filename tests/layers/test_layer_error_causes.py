"""A layer error keeps the system or decoder error behind it, for ``--debug``."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from nbcontainer.errors import LayerError
from nbcontainer.layers.extract import apply_layer


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = os.urandom(50_000)
        info = tarfile.TarInfo("a.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_corrupt_gzip_keeps_the_decoder_error(tmp_path: Path) -> None:
    raw = gzip.compress(_tar())
    bad = raw[:20] + bytes(b ^ 0xFF for b in raw[20:60]) + raw[60:]
    with pytest.raises(LayerError) as info:
        apply_layer(tmp_path / "t", io.BytesIO(bad))
    assert "corrupt gzip layer" in info.value.message
    chain = []
    exc: BaseException | None = info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__
    assert not isinstance(chain[-1], LayerError)  # the decoder's own exception is last


def test_unusable_target_keeps_the_os_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(LayerError) as info:
        apply_layer(tmp_path / "file" / "t", io.BytesIO(_tar()))
    assert "as a target" in info.value.message
    assert isinstance(info.value.__cause__, OSError)
