"""Property tests of strict validation, with generated OCI/Docker documents: a valid
manifest, index or config parses and serializes back to exactly the same JSON (unknown fields
kept, as the image-spec requires); one wrong field anywhere gives an ImageFormatError whose
message starts with that field's path (``config.history[3]: …``), never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from nbcontainer.errors import ImageFormatError
from nbcontainer.oci import ImageConfig, Index, Manifest, parse_manifest
from tests.support.fuzz import settings as fuzz_settings
from tests.support.fuzz import strategies as s

CASES = {
    "manifest": (s.manifests(), s.MANIFEST, lambda b: parse_manifest(b)),
    "index": (s.indexes(), s.INDEX, lambda b: parse_manifest(b)),
    "config": (s.configs(), s.CONFIG, ImageConfig.from_bytes),
}
BOUNDED = settings(max_examples=300, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", list(CASES))
@seed(fuzz_settings.SEED)
@BOUNDED
@given(data=st.data())
def test_valid_documents_round_trip(name: str, data: st.DataObject) -> None:
    valid, _, parse = CASES[name]
    doc = data.draw(valid)
    parsed = parse(json.dumps(doc).encode())
    assert isinstance(parsed, ImageConfig | Manifest | Index)
    assert json.loads(json.dumps(parsed.to_dict())) == doc


@pytest.mark.parametrize("name", list(CASES))
@seed(fuzz_settings.SEED)
@BOUNDED
@given(data=st.data())
def test_one_wrong_field_is_named(name: str, data: st.DataObject) -> None:
    valid, schema, parse = CASES[name]
    bad = data.draw(s.broken(valid, schema, name))
    with pytest.raises(ImageFormatError) as err:
        parse(json.dumps(bad.doc).encode())
    message = err.value.message
    assert message.startswith(bad.where), f"{bad.why}: {message!r} should name {bad.where!r}"
    assert "\n" not in message
