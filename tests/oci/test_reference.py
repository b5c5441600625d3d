"""Reference normalization, checked against Docker's own table (distribution/reference
normalize_test.go cases, plus the issue's examples)."""

import pytest

from nbcontainer.errors import ReferenceFormatError
from nbcontainer.oci.reference import Reference

H = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
        ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
        ("library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
        ("docker.io/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
        ("index.docker.io/foo/bar", "docker.io/foo/bar:latest", "foo/bar:latest"),
        ("user/app:1.0", "docker.io/user/app:1.0", "user/app:1.0"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/a/b", "localhost:5000/a/b:latest", "localhost:5000/a/b:latest"),
        (f"localhost:5000/a/b@{H}", f"localhost:5000/a/b@{H}", f"localhost:5000/a/b@{H}"),
        (f"host:5000/ns/repo:tag@{H}", f"host:5000/ns/repo:tag@{H}", f"host:5000/ns/repo:tag@{H}"),
        ("ghcr.io/org/img:v1", "ghcr.io/org/img:v1", "ghcr.io/org/img:v1"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest"),
        ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
        ("a__b/c--d.e_f", "docker.io/a__b/c--d.e_f:latest", "a__b/c--d.e_f:latest"),
        (f"ubuntu@{H}", f"docker.io/library/ubuntu@{H}", f"ubuntu@{H}"),
    ],
)
def test_normalizes_like_docker(text, full, familiar):
    ref = Reference.parse(text)
    assert str(ref) == full
    assert ref.familiar == familiar
    assert Reference.parse(str(ref)) == ref  # normalized form is a fixed point


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("UPPER/case", ""),  # an upper-case first component is a host, the path is fine...
        ("Ubuntu", "must be lowercase"),
        ("ubuntu:", "tag"),
        ("ubuntu:-bad", "tag"),
        ("ubuntu:" + "x" * 129, "tag"),
        ("a" * 64, "64-byte hexadecimal"),
        ("ubuntu@sha256:abc", "digest"),
        ("ubuntu@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("-leading/dash", "component"),
        ("a//b", "component"),
        ("a/b/", "component"),
        ("has space", "whitespace"),
        ("host:port/x", "registry host"),
        ("localhost:5000/" + "a" * 300, "more than 255"),
        ("a..b", "component"),
    ],
)
def test_rejects_invalid_names_with_a_clear_message(text, why):
    if text == "UPPER/case":
        assert Reference.parse(text).domain == "UPPER"
        return
    with pytest.raises(ReferenceFormatError) as exc:
        Reference.parse(text)
    assert "invalid reference format" in str(exc.value)
    assert why in str(exc.value)
    assert exc.value.hint


def test_identifier_prefers_digest_and_helpers():
    ref = Reference.parse(f"localhost:5000/a/b:1@{H}")
    assert ref.identifier == H
    assert ref.repository == "localhost:5000/a/b"
    assert ref.without_digest().identifier == "1"
    assert str(ref.with_tag("2")) == "localhost:5000/a/b:2"
    assert Reference.parse("busybox", default_tag=False).tag is None
