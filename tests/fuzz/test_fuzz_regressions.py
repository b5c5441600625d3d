"""Every crash the fuzzers (or hostile-input review) found, with its minimal input, and the
cases issue 18 names. Each used to end in a Python exception other than the parser's own
error (or in a hang, or a multi-line or misleading message); each must now be a clear
NbcontainerError."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from nbcontainer.dockerfile import DockerfileError, Lexer, parse
from nbcontainer.errors import (
    BuildError,
    ImageFormatError,
    NbcontainerError,
    ReferenceFormatError,
    RegistryError,
    UnsafeLayerError,
)
from nbcontainer.layers import apply_layer
from nbcontainer.oci import Digest, ImageConfig, Platform, Reference, parse_manifest
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.reference import valid_tag
from nbcontainer.registry import responses
from nbcontainer.registry.errors import response_error
from nbcontainer.registry.transport import header_int, parse_retry_after
from nbcontainer.store import Store, fsck
from nbcontainer.store.docker_archive import import_archive
from nbcontainer.timestamps import parse_epoch

D = "sha256:" + "a" * 64
CONFIG_DESC = {"mediaType": mt.OCI_CONFIG, "digest": D, "size": 2}
GOOD_CONFIG = {"architecture": "amd64", "os": "linux", "config": {},
               "rootfs": {"type": "layers", "diff_ids": []}}


def config_error(**changes: object) -> str:
    doc = {**GOOD_CONFIG, **changes}
    with pytest.raises(ImageFormatError) as err:
        ImageConfig.from_bytes(json.dumps(doc).encode())
    assert "\n" not in err.value.message
    return err.value.message


def manifest_error(**changes: object) -> str:
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": CONFIG_DESC,
           "layers": [], **changes}
    with pytest.raises(ImageFormatError) as err:
        parse_manifest(json.dumps(doc).encode())
    assert "\n" not in err.value.message
    return err.value.message


# ---------------------------------------------------------------------------- issue 18's cases
def test_onbuild_onbuild_in_the_cli_gives_buildkits_message(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nONBUILD ONBUILD RUN echo test\n")
    res = subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root",
                          str(tmp_path / "store"), "build", str(tmp_path)],
                         capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    assert "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed" in res.stderr
    assert "Traceback" not in res.stderr


def test_history_entry_that_is_a_string() -> None:
    message = config_error(history=[{"created_by": "a"}] * 3 + ["oops"])
    assert message == "config.history[3]: expected an object, got str"


def test_healthcheck_that_is_a_string() -> None:
    message = config_error(config={"Healthcheck": "CMD true"})
    assert message == "config.config.Healthcheck: expected an object, got str"


def test_env_that_is_a_number_is_refused() -> None:
    assert config_error(config={"Env": 5}) == \
        "config.config.Env: expected a list of strings, got int"


def test_manifest_media_type_that_is_a_list() -> None:
    assert manifest_error(mediaType=[mt.OCI_MANIFEST]) == \
        "manifest.mediaType: expected a string, got list"


def test_manifest_annotations_that_are_a_list() -> None:
    assert manifest_error(annotations=["a=b"]) == \
        "manifest.annotations: expected an object of strings, got list"


@pytest.mark.parametrize(("doc", "where"), [
    ({"schemaVersion": 2, "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": D, "size": 1,
                                         "platform": {"os": "linux", "architecture": 5}}]},
     "index.manifests[0].platform.architecture: expected a string, got int"),
    ({"schemaVersion": 2, "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": D, "size": 1,
                                         "platform": "linux/amd64"}]},
     "index.manifests[0].platform: expected an object, got str"),
    ({"schemaVersion": 2, "config": {**CONFIG_DESC, "size": "2"}, "layers": []},
     "manifest.config.size: expected an integer, got str"),
    ({"schemaVersion": 2, "config": {**CONFIG_DESC, "digest": 7}, "layers": []},
     "manifest.config.digest: expected a digest string, got int"),
    ({"schemaVersion": 2, "config": CONFIG_DESC, "layers": "x"},
     "manifest.layers: expected a list, got str"),
    ({"schemaVersion": 2, "config": {**CONFIG_DESC, "urls": "http://x"}, "layers": []},
     "manifest.config.urls: expected a list of strings, got str"),
    ({"schemaVersion": 2.0, "config": CONFIG_DESC, "layers": []},
     "manifest.schemaVersion: unsupported schemaVersion 2.0"),
    ([1], "manifest: expected an object, got list"),
    (b"[" * 100_000, "manifest is not valid JSON: nested too deeply"),
])
def test_malformed_manifests_and_indexes_name_the_field(doc: object, where: str) -> None:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with pytest.raises(ImageFormatError) as err:
        parse_manifest(data)
    assert err.value.message == where


def test_unknown_fields_are_kept() -> None:
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "x-vendor": {"a": 1},
           "config": {**CONFIG_DESC, "x-desc": [1]}, "layers": []}
    parsed = parse_manifest(json.dumps(doc).encode())
    assert parsed.to_dict() == doc


# ---------------------------------------------------------------------------- names and values
@pytest.mark.parametrize("value", [5, None, b"sha256:" + b"a" * 64, "sha256:" + "a" * 64 + "\n"])
def test_digest_of_the_wrong_type_or_with_a_newline(value: object) -> None:
    """Digest.parse(5) was a TypeError; a trailing newline was accepted (``$``)."""
    with pytest.raises(ReferenceFormatError):
        Digest.parse(value)  # type: ignore[arg-type]


def test_tags_are_ascii_and_whole() -> None:
    """``\\w`` matched any letter and ``$`` a trailing newline: ``täg`` and ``t\\n`` passed."""
    assert not valid_tag("täg") and not valid_tag("t\n") and valid_tag("v1.2-rc_3")
    with pytest.raises(ReferenceFormatError):
        Reference.parse("busybox:täg")


@pytest.mark.parametrize("text", [5, None, "linux/am d64", "linux/amd64/v7/x", "linux/\u00e4"])
def test_platforms_of_the_wrong_type_or_shape(text: object) -> None:
    with pytest.raises(ReferenceFormatError):
        Platform.parse(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["18446744073709551611", "²", "١٧٠٠", "9" * 5000])
def test_source_date_epoch_out_of_range(value: str) -> None:
    """Accepted, then an OverflowError in the created stamp (or int() of "²")."""
    with pytest.raises(NbcontainerError, match="SOURCE_DATE_EPOCH"):
        parse_epoch(value)


def test_chmod_with_a_trailing_newline() -> None:
    from nbcontainer.builder.copyplan import parse_chmod

    with pytest.raises(BuildError) as err:
        parse_chmod("u+x\n")
    assert "\n" not in err.value.message


def test_substitutions_nested_deeper_than_any_stack() -> None:
    """``${a:-${a:-…}}`` recursed once per level into a RecursionError."""
    word = "${a:-" * 500 + "x" + "}" * 500
    with pytest.raises(DockerfileError, match="nested more than"):
        Lexer().process_word(word, {})
    with pytest.raises(DockerfileError, match="nested more than"):
        parse(f"FROM scratch\nENV x={word}\n", build_platform="linux/amd64")


# ---------------------------------------------------------------------------- registry data
@pytest.mark.parametrize("value", [":1 Oct 2222222415 8:0", "Wed, 21 Oct 99999 07:28:00 GMT",
                                   "²", "9" * 5000])
def test_retry_after_that_overflows(value: str) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("value", ["²", "9" * 5000, "-1", "1 2", ""])
def test_content_length_that_is_no_number(value: str) -> None:
    assert header_int(value) is None


@pytest.mark.parametrize(("reader", "value"), [
    (lambda v: responses.location(v, "http://r/v2/a/blobs/uploads/"), "http://[::1"),
    (lambda v: responses.location(v, "http://r/v2/a/blobs/uploads/"), "file:///etc/passwd"),
    (lambda v: responses.location(v, "http://r/v2/a/blobs/uploads/"), "/x y"),
    (lambda v: responses.location(v, "http://r/v2/a/blobs/uploads/"), "http://r:99999/x"),
    (lambda v: responses.next_page(v, "http://r/v2/_catalog"), "<http://[::1>; rel=next"),
    (lambda v: responses.next_page(v, "http://r/v2/_catalog"),
     '<https://elsewhere.example/v2/_catalog?n=1>; rel="next"'),
    (lambda v: responses.content_digest(v, "x"), "sha256:zz"),
])
def test_hostile_headers_are_registry_errors(reader, value: str) -> None:  # noqa: ANN001
    """urljoin raised ValueError; a Link to another host would have received credentials."""
    with pytest.raises(RegistryError) as err:
        reader(value)
    assert "\n" not in err.value.message


@pytest.mark.parametrize("value", ["0-" + "9" * 5000, "bytes=0-x", "5-9"])
def test_upload_range_that_is_no_range(value: str) -> None:
    assert responses.upload_range(value) is None


@pytest.mark.parametrize("body", [
    b"[]", b'{"token": 5}', b'{"token": "a\\r\\nX-Injected: 1"}', b'{"token": "a b"}',
    b"[" * 100_000, b'{"token": ""}',
])
def test_malformed_token_responses(body: bytes) -> None:
    """A token with CR/LF would have split the Authorization header (ValueError in
    http.client); a list body was an AttributeError."""
    with pytest.raises(RegistryError):
        responses.token_response(body, "r")


def test_token_lifetime_is_clamped() -> None:
    assert responses.token_response(b'{"token":"t","expires_in":1e999}', "r").expires_in == \
        responses.MAX_TOKEN_LIFETIME
    assert responses.token_response(b'{"token":"t","expires_in":-5}', "r").expires_in == 60
    assert responses.token_response(b'{"token":"t","expires_in":"x"}', "r").expires_in == 60


@pytest.mark.parametrize("body", [b'["a"]', b'{"tags": "latest"}', b'{"tags": [1]}', b"x"])
def test_tag_lists_that_are_no_lists(body: bytes) -> None:
    with pytest.raises(RegistryError):
        responses.name_list(body, "tags", "listing tags")


def test_error_bodies_become_one_clean_line() -> None:
    body = json.dumps({"errors": [{"code": "DENIED\n", "message": "no\x1b[31m\nway\r\n"}]})
    err = response_error(403, body.encode(), action="pushing", registry="r")
    assert "\n" not in err.message and "\x1b" not in err.message and "no [31m way" in err.message


@pytest.mark.parametrize("doc", [
    [], "x", {"predicateType": "https://slsa.dev/provenance/v1", "predicate": {
        "buildDefinition": "x", "runDetails": {"metadata": []}}},
    {"predicateType": "https://slsa.dev/provenance/v1", "predicate": {"buildDefinition": {
        "resolvedDependencies": ["x", {"digest": "y"}],
        "externalParameters": {"request": {"args": ["a"]}, "configSource": {"path": 5}}}}},
])
def test_pulled_provenance_of_the_wrong_shape(doc: object) -> None:
    """A statement pulled with an image is anyone's JSON: ``inspect`` raised AttributeError
    (``str.get``) on these."""
    from nbcontainer.store.referrers import summary

    out = summary(Digest.parse(D), doc)
    assert out["Digest"] == D and all(isinstance(v, str | dict | list) for v in out.values())


# ---------------------------------------------------------------------------- layers
def _pax_layer(**pax: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("f")
        info.size, info.pax_headers = 1, pax
        tar.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


@pytest.mark.parametrize("pax", [{"mtime": "9" * 30}, {"mtime": "-" + "9" * 30},
                                 {"uid": "99999999999"}, {"gid": "-5"}])
def test_layer_numbers_no_file_system_can_store(tmp_path: Path, pax: dict[str, str]) -> None:
    """os.utime/os.chown raised OverflowError on these (found by the extract target)."""
    with pytest.raises(UnsafeLayerError, match="out of range"):
        apply_layer(tmp_path / "t", io.BytesIO(gzip.compress(_pax_layer(**pax))))


# ---------------------------------------------------------------------------- archives
def _load(tmp_path: Path, data: bytes) -> tuple[Store, ImageFormatError]:
    store = Store(tmp_path / "store")
    path = tmp_path / "in.tar"
    path.write_bytes(data)
    with pytest.raises(ImageFormatError) as err:
        import_archive(store, path)
    assert "\n" not in err.value.message
    assert not store.refs.read().tags and fsck(store).ok
    return store, err.value


def test_empty_archive_is_one_line(tmp_path: Path) -> None:
    """The message used to list each decompressor's complaint on its own line."""
    _, err = _load(tmp_path, b"")
    assert "not a tar archive" in err.message


def test_archive_with_a_bad_gnu_sparse_record(tmp_path: Path) -> None:
    """tarfile raised ValueError (int('nan')) from inside tarfile.open."""
    _load(tmp_path, _pax_layer(**{"GNU.sparse.map": "nan"}))


def test_archive_member_claiming_an_exabyte_is_read(tmp_path: Path) -> None:
    """Reading it raised tarfile.ReadError past the error handling."""
    info = tarfile.TarInfo("manifest.json")
    info.size = 2**60
    _load(tmp_path, info.tobuf(tarfile.GNU_FORMAT) + b"[]" + bytes(1022))


def test_archive_member_claiming_an_exabyte_is_skipped(tmp_path: Path) -> None:
    """A blob already stored is skipped: in stream mode tarfile skipped the claimed 2**60
    bytes block by block, so this 3 KiB file kept ``load`` busy for years."""
    name = "blobs/sha256/" + hashlib.sha256(b"{}").hexdigest()
    first = tarfile.TarInfo(name)
    first.size = 2
    second = tarfile.TarInfo(name)
    second.size = 2**60
    data = first.tobuf(tarfile.GNU_FORMAT) + b"{}" + bytes(510)
    _load(tmp_path, data + second.tobuf(tarfile.GNU_FORMAT) + bytes(1024))


def test_archive_json_of_the_wrong_shape(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = json.dumps([{"Config": ["x.json"], "Layers": "a.tar"}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    _, err = _load(tmp_path, buf.getvalue())
    assert err.message.endswith("manifest.json[0].Config: expected a string, got list")
