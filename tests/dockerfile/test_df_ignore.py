"""``.dockerignore`` matching. Tables ported from moby/patternmatcher ``patternmatcher_test.go``
(TestMatches, the matchTests of TestMatch, TestWildcardMatches, TestPatternMatches, the
exclusion tests, TestCleanPatterns*) and ``ignorefile/ignorefile_test.go`` (TestReadAll)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcontainer.dockerfile import DockerfileError, IgnoreMatcher, find_ignore_file
from nbcontainer.dockerfile.ignore import go_clean, read_ignore_patterns

EXACT, INEXACT, FAIL = "exact", "inexact", "fail"

MATCHES = [
    ("**", "file", EXACT), ("**", "file/", EXACT), ("**/", "file", EXACT), ("**/", "file/", EXACT),
    ("**", "/", EXACT), ("**/", "/", EXACT), ("**", "dir/file", EXACT), ("**/", "dir/file", EXACT),
    ("**", "dir/file/", EXACT), ("**/", "dir/file/", EXACT), ("**/**", "dir/file", EXACT),
    ("**/**", "dir/file/", EXACT), ("dir/**", "dir/file", EXACT), ("dir/**", "dir/file/", EXACT),
    ("dir/**", "dir/dir2/file", EXACT), ("dir/**", "dir/dir2/file/", EXACT), ("**/dir", "dir", EXACT),
    ("**/dir", "dir/file", INEXACT), ("**/dir2/*", "dir/dir2/file", EXACT),
    ("**/dir2/*", "dir/dir2/file/", INEXACT), ("**/dir2/**", "dir/dir2/dir3/file", EXACT),
    ("**/dir2/**", "dir/dir2/dir3/file/", EXACT), ("**file", "file", EXACT),
    ("**file", "dir/file", EXACT), ("**/file", "dir/file", EXACT), ("**file", "dir/dir/file", EXACT),
    ("**/file", "dir/dir/file", EXACT), ("**/file*", "dir/dir/file", EXACT),
    ("**/file*", "dir/dir/file.txt", EXACT), ("**/file*txt", "dir/dir/file.txt", EXACT),
    ("**/file*.txt", "dir/dir/file.txt", EXACT), ("**/file*.txt*", "dir/dir/file.txt", EXACT),
    ("**/**/*.txt", "dir/dir/file.txt", EXACT), ("**/**/*.txt2", "dir/dir/file.txt", FAIL),
    ("**/*.txt", "file.txt", EXACT), ("**/**/*.txt", "file.txt", EXACT), ("a**/*.txt", "a/file.txt", EXACT),
    ("a**/*.txt", "a/dir/file.txt", EXACT), ("a**/*.txt", "a/dir/dir/file.txt", EXACT),
    ("a/*.txt", "a/dir/file.txt", FAIL), ("a/*.txt", "a/file.txt", EXACT), ("a/*.txt**", "a/file.txt", EXACT),
    ("a[b-d]e", "ae", FAIL), ("a[b-d]e", "ace", EXACT), ("a[b-d]e", "aae", FAIL), ("a[^b-d]e", "aze", EXACT),
    (".*", ".foo", EXACT), (".*", "foo", FAIL), ("abc.def", "abcdef", FAIL), ("abc.def", "abc.def", EXACT),
    ("abc.def", "abcZdef", FAIL), ("abc?def", "abcZdef", EXACT), ("abc?def", "abcdef", FAIL),
    ("**/foo/bar", "foo/bar", EXACT), ("**/foo/bar", "dir/foo/bar", EXACT),
    ("**/foo/bar", "dir/dir2/foo/bar", EXACT), ("abc/**", "abc", FAIL), ("abc/**", "abc/def", EXACT),
    ("abc/**", "abc/def/ghi", EXACT), ("**/.foo", ".foo", EXACT), ("**/.foo", "bar.foo", FAIL),
    ("a(b)c/def", "a(b)c/def", EXACT), ("a(b)c/def", "a(b)c/xyz", FAIL),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", EXACT),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", EXACT),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", EXACT),
    ("a\\\\", "a\\", EXACT), ("a\\*b", "a*b", EXACT),
]  # fmt: skip

MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", FAIL),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", EXACT),
    (
        ["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        FAIL,
    ),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", FAIL),
]

# Go's filepath.Match table (patternmatcher's TestMatch): (pattern, path, match, bad pattern)
MATCH_TESTS = [
    ("abc", "abc", True, False), ("*", "abc", True, False), ("*c", "abc", True, False),
    ("a*", "a", True, False), ("a*", "abc", True, False), ("a*", "ab/c", True, False),
    ("a*/b", "abc/b", True, False), ("a*/b", "a/c/b", False, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True, False), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False, False), ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False, False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True, False), ("a*b?c*x", "abxbbxdbxebxczzy", False, False),
    ("ab[c]", "abc", True, False), ("ab[b-d]", "abc", True, False), ("ab[e-g]", "abc", False, False),
    ("ab[^c]", "abc", False, False), ("ab[^b-d]", "abc", False, False), ("ab[^e-g]", "abc", True, False),
    ("a\\*b", "a*b", True, False), ("a\\*b", "ab", False, False), ("a?b", "a☺b", True, False),
    ("a[^a]b", "a☺b", True, False), ("a???b", "a☺b", False, False), ("a[^a][^a][^a]b", "a☺b", False, False),
    ("[a-ζ]*", "α", True, False), ("*[a-ζ]", "A", False, False), ("a?b", "a/b", False, False),
    ("a*b", "a/b", False, False), ("[\\]a]", "]", True, False), ("[\\-]", "-", True, False),
    ("[x\\-]", "x", True, False), ("[x\\-]", "-", True, False), ("[x\\-]", "z", False, False),
    ("[\\-x]", "x", True, False), ("[\\-x]", "-", True, False), ("[\\-x]", "a", False, False),
    ("[]a]", "]", False, True), ("[-]", "-", False, True), ("[x-]", "x", False, True),
    ("[x-]", "-", False, True), ("[x-]", "z", False, True), ("[-x]", "x", False, True),
    ("[-x]", "-", False, True), ("[-x]", "a", False, True), ("\\", "a", False, True),
    ("[a-b-c]", "a", False, True), ("[", "a", False, True), ("[^", "a", False, True),
    ("[^bc", "a", False, True), ("a[", "a", False, True), ("a[", "ab", False, True),
    ("*x", "xxx", True, False),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "text", "kind"), MATCHES)
def test_matches_or_parent_matches(pattern: str, text: str, kind: str) -> None:
    assert IgnoreMatcher([pattern]).matches(text) is (kind != FAIL)


@pytest.mark.parametrize(("patterns", "text", "kind"), MULTI)
def test_multi_pattern(patterns: list[str], text: str, kind: str) -> None:
    assert IgnoreMatcher(patterns).matches(text) is (kind != FAIL)


@pytest.mark.parametrize(("pattern", "text", "match", "bad"), MATCH_TESTS)
def test_go_filepath_match_table(pattern: str, text: str, match: bool, bad: bool) -> None:
    if bad:
        with pytest.raises(DockerfileError):
            IgnoreMatcher([pattern])
        return
    assert IgnoreMatcher([pattern]).matches(text) is match


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        (["*"], "fileutils.go", True),
        (["*.go"], "fileutils.go", True),
        (["!fileutils.go", "*.go"], "fileutils.go", True),
        (["docs", "!docs/README.md"], "docs/README.md", False),
        (["docs/", "!docs/README.md"], "docs/README.md", False),
        (["docs/*", "!docs/README.md"], "docs/README.md", False),
        (["*.go", "!fileutils.go"], "fileutils.go", False),
        (["*.go"], ".", False),
        ([], "/any/path/there", False),
    ],
)
def test_exclusion_rules(patterns: list[str], path: str, expected: bool) -> None:
    assert IgnoreMatcher(patterns).matches(path) is expected


def test_single_exclamation_is_an_error() -> None:
    with pytest.raises(DockerfileError, match="illegal exclusion pattern"):
        IgnoreMatcher(["!"])


def test_clean_patterns() -> None:
    assert len(IgnoreMatcher(["docs", "config"]).patterns) == 2
    assert len(IgnoreMatcher(["docs", "config", ""]).patterns) == 2
    assert IgnoreMatcher(["docs", "!docs/README.md"]).has_exclusions
    assert IgnoreMatcher(["docs", "  !docs/README.md"]).has_exclusions
    assert IgnoreMatcher(["docs", "!docs/README.md  "]).has_exclusions


def test_read_all() -> None:
    content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! \n"
    assert read_ignore_patterns(content) == [
        "test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!",
    ]  # fmt: skip


def test_read_all_bom_and_comment_column() -> None:
    assert read_ignore_patterns(b"\xef\xbb\xbf# c\n  # not a comment\r\n./a/../b\n") == ["# not a comment", "b"]


@pytest.mark.parametrize(
    ("path", "clean"),
    [("", "."), ("a//b", "a/b"), ("a/./b/..", "a"), ("/../a", "/a"), ("../a", "../a"), ("a/", "a")],
)
def test_go_clean(path: str, clean: str) -> None:
    assert go_clean(path) == clean


def _tree(root: Path, files: list[str]) -> None:
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")


def test_walk_context_always_sends_dockerfile_and_ignore_file(tmp_path: Path) -> None:
    _tree(tmp_path, ["Dockerfile", "app/main.py", "app/cache/x.pyc", "docs/README.md", "docs/a.md", "x.log"])
    (tmp_path / ".dockerignore").write_text("*\n!app\napp/cache\n!docs/README.md\n")
    m = IgnoreMatcher.for_context(tmp_path)
    assert list(m.walk(tmp_path)) == [
        ".dockerignore", "Dockerfile", "app", "app/main.py", "docs", "docs/README.md",
    ]  # fmt: skip


def test_dockerfile_specific_ignore_file(tmp_path: Path) -> None:
    _tree(tmp_path, ["build/app.Dockerfile", "a.txt", "b.txt"])
    (tmp_path / ".dockerignore").write_text("a.txt\n")
    (tmp_path / "build" / "app.Dockerfile.dockerignore").write_text("b.txt\n")
    assert find_ignore_file(tmp_path, "build/app.Dockerfile") == (
        tmp_path / "build" / "app.Dockerfile.dockerignore"
    )
    assert find_ignore_file(tmp_path, "Dockerfile") == tmp_path / ".dockerignore"
    m = IgnoreMatcher.for_context(tmp_path, "build/app.Dockerfile")
    assert m.excluded("b.txt") and not m.excluded("a.txt")
    assert not m.excluded("build/app.Dockerfile")


def test_no_ignore_file(tmp_path: Path) -> None:
    _tree(tmp_path, ["Dockerfile", "a"])
    assert find_ignore_file(tmp_path) is None
    assert list(IgnoreMatcher.for_context(tmp_path).walk(tmp_path)) == ["Dockerfile", "a"]
