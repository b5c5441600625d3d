import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/imagefactory.py and friends


@pytest.fixture
def store(tmp_path):
    from nbcontainer.store import Store

    return Store(tmp_path / "store")
